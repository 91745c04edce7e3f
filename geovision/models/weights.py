"""Weights for our architectures: what a weights file is (`WeightsSpec`, its manifest) and
loading it into a model of any band count.

`load_weights` reads the file (checking its sha256), strips a wrapper prefix (a Lightning
checkpoint's `model.`, DDP's `module.`), adapts the first convolution to the model's band count,
drops a classifier of another class count, and refuses, by name, every missing, unexpected or
misshapen key. What it loaded is recorded on the model, so `init.init_model` never overwrites
it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geovision.errors import WeightsError
from geovision.hashing import sha256_file

MANIFEST = "manifest.json"
LOADED_ATTRIBUTE = "geovision_loaded_parameters"
WRAPPER_PREFIXES = ("model.", "module.", "_orig_mod.")
LIST_LIMIT = 20


@dataclass(frozen=True)
class WeightsSpec:
    """One weights file for one of our architectures, as its manifest describes it.

    `file` is relative to the manifest's folder (or absolute). `first_conv` and `classifier`
    are module names (`stem.conv`, `head.fc`): the weights adapted to another band count and
    dropped for another class count. `bands` names the input bands the first conv was trained
    on, in order, with their `mean`/`std`. `verified_max_abs_diff` is the largest difference
    from the source model's output measured when the weights were ported (None if never)."""

    name: str
    model: str
    file: str
    sha256: str = ""
    source: str = ""  # "torchvision", "timm", "geovision"
    source_model: str = ""
    source_version: str = ""  # the source package's version
    source_weights: str = ""  # which of the source's weights (a tag, or "random, seed N")
    bands: tuple[str, ...] = ("red", "green", "blue")
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    num_classes: int | None = None
    first_conv: str | None = None
    classifier: str | None = None
    verified_max_abs_diff: float | None = None
    port_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    folder: str = ""  # where the manifest was read from (not written)

    @property
    def path(self) -> Path:
        file = Path(self.file)
        return file if file.is_absolute() or not self.folder else Path(self.folder) / file

    def to_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k != "folder"}
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def read(cls, path: str | os.PathLike) -> WeightsSpec:
        """The spec in a manifest file, or in the manifest of a weights folder."""
        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST
        if not path.is_file():
            raise WeightsError(f"No weights manifest at {path}. Port the weights first "
                               "(`geovision.models.port.port_weights`, or materialize the "
                               "ported_weights asset), or pass the weights file itself.")
        try:
            data = json.loads(path.read_text())
            for key in ("bands", "mean", "std"):
                data[key] = tuple(data.get(key, ()))
            return cls(**data, folder=str(path.parent))
        except (ValueError, TypeError) as exc:
            raise WeightsError(f"Weights manifest {path} is not valid: {exc}.") from exc


@dataclass(frozen=True)
class LoadReport:
    """What `load_weights` did, by parameter name."""

    loaded: tuple[str, ...]
    adapted: tuple[str, ...]  # first-conv weights remade for the model's band count
    dropped: tuple[str, ...]  # classifier weights of another class count, left at init


def resolve_spec(weights: WeightsSpec | str | os.PathLike) -> WeightsSpec:
    """A spec as given; a manifest or weights folder read; a bare weights file wrapped."""
    if isinstance(weights, WeightsSpec):
        return weights
    path = Path(weights)
    if path.is_dir() or path.suffix == ".json":
        return WeightsSpec.read(path)
    if (path.parent / MANIFEST).is_file():
        spec = WeightsSpec.read(path.parent)
        if spec.path.resolve() == path.resolve():
            return spec
    return WeightsSpec(name=path.stem, model="", file=str(path.resolve()))


def read_state_dict(path: str | os.PathLike, sha256: str = "") -> dict[str, torch.Tensor]:
    """{name: tensor} from a .safetensors or torch (.pt/.pth/.bin/.ckpt) file, unwrapping a
    checkpoint's `state_dict`/`model` container; checked against `sha256` when given."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Weights file not found: {path}.")
    if sha256 and (actual := sha256_file(path)) != sha256:
        raise WeightsError(f"Weights file {path} has sha256 {actual}, not {sha256} as its "
                           "manifest says: it is corrupt or was replaced; port it again.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data: Any = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"Cannot read weights {path}: {exc}.") from exc
    if isinstance(data, dict):
        for container in ("state_dict", "model"):
            if isinstance(data.get(container), dict):
                data = data[container]
                break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(f"{path} holds no state dict of tensors.")
    return data


def strip_wrapper(state: dict[str, torch.Tensor],
                  expected: set[str]) -> dict[str, torch.Tensor]:
    """Remove a prefix every key shares (`model.`, `module.`) when the model has no such."""
    for prefix in WRAPPER_PREFIXES:
        while state and all(k.startswith(prefix) for k in state) and not (set(state) & expected):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def adapt_input_conv(weight: torch.Tensor, in_channels: int,
                     source_bands: tuple[str, ...] = (),
                     target_bands: tuple[str, ...] | None = None) -> torch.Tensor:
    """A first-conv weight (out, S, k, k) remade for `in_channels` input bands.

    When bands are named on both sides and some match, the matching ones keep their filters
    and the others start at zero: the model then starts as the source model on the bands they
    share, and learns the rest. Otherwise band i takes source band i % S, divided by how many
    bands take it, so an input whose band i repeats source band i % S gives exactly the source
    response (timm's 3 / C scaling, exact also when C is not a multiple of S); with fewer
    bands than the source, band i sums the source bands j with j % C == i (C = 1: the sum)."""
    dtype = weight.dtype
    w = weight.float()
    source = w.shape[1]
    if target_bands is not None and len(target_bands) != in_channels:
        raise WeightsError(f"{len(target_bands)} band names for a model of {in_channels} "
                           "bands; name every band, in order.")
    matched = ({i: source_bands.index(b) for i, b in enumerate(target_bands or ())
                if b in source_bands} if source_bands else {})
    out = w.new_zeros(w.shape[0], in_channels, *w.shape[2:])
    if matched:
        for i, j in matched.items():
            out[:, i] = w[:, j]
    elif in_channels >= source:
        copies = [math.ceil((in_channels - j) / source) for j in range(source)]
        for i in range(in_channels):
            out[:, i] = w[:, i % source] / copies[i % source]
    else:
        for j in range(source):
            out[:, j % in_channels] += w[:, j]
    return out.to(dtype)


def _names(keys: list[str] | set[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:LIST_LIMIT])
    return shown + (f" and {len(keys) - LIST_LIMIT} more" if len(keys) > LIST_LIMIT else "")


def load_weights(model: nn.Module, weights: WeightsSpec | str | os.PathLike,
                 strict: bool = True, bands: tuple[str, ...] | None = None) -> LoadReport:
    """Load `weights` into `model`; see the module docstring. `bands` names the model's input
    bands, so that those the weights know keep their filters."""
    spec = resolve_spec(weights)
    target = model.state_dict()
    state = strip_wrapper(read_state_dict(spec.path, spec.sha256), set(target))
    adapted: list[str] = []
    dropped: list[str] = []
    if spec.first_conv and (key := f"{spec.first_conv}.weight") in state and key in target:
        have, want = state[key].shape, target[key].shape
        if have[1] != want[1] and have[0] == want[0] and have[2:] == want[2:]:
            state[key] = adapt_input_conv(state[key], want[1], spec.bands, bands)
            adapted.append(key)
    if spec.classifier:
        head = [k for k in state if k.startswith(f"{spec.classifier}.")]
        if any(k not in target or state[k].shape != target[k].shape for k in head):
            for k in head:
                del state[k]
            dropped = [k for k in target if k.startswith(f"{spec.classifier}.")]
    missing = set(target) - set(state) - set(dropped)
    unexpected = set(state) - set(target)
    misshapen = {k for k in set(state) & set(target) if state[k].shape != target[k].shape}
    problems = []
    if missing:
        problems.append(f"missing from the weights: {_names(missing)}")
    if unexpected:
        problems.append(f"not in the model: {_names(unexpected)}")
    if misshapen:
        problems.append("of another shape: " + _names(
            {f"{k} {tuple(state[k].shape)} vs {tuple(target[k].shape)}" for k in misshapen}))
    if problems and strict:
        raise WeightsError(f"Weights {spec.path} do not fit {type(model).__name__}: "
                           + "; ".join(problems) + ". Port them for this architecture, or "
                           "pass strict=False to load what fits.")
    fitting = {k: v for k, v in state.items() if k in target and k not in misshapen}
    model.load_state_dict(fitting, strict=False)
    loaded = getattr(model, LOADED_ATTRIBUTE, frozenset()) | set(fitting)
    setattr(model, LOADED_ATTRIBUTE, frozenset(loaded))
    return LoadReport(tuple(sorted(fitting)), tuple(adapted), tuple(sorted(dropped)))


def loaded_parameters(model: nn.Module) -> frozenset[str]:
    """State-dict names `load_weights` filled (init schemes leave these alone)."""
    return getattr(model, LOADED_ATTRIBUTE, frozenset())
