"""Port torchvision and timm weights onto our architectures, once, verified, with a manifest.

Each `Port` names a source constructor and how its state-dict keys become ours (explicit
renaming rules, no guessing by order). `port_weights` builds the source model, with the
weights file given (e.g. torchvision's published checkpoint, placed by hand) or with seeded
random weights where there is none, maps its state dict, loads it into our model strictly,
compares the two models' outputs on seeded random input in eval mode, and writes
`weights.safetensors` + `manifest.json` (a `WeightsSpec`) under `port_folder(name)`
(`Layout.weights(name)`), where `read_port` finds them.
A port that exists for the same source version and port version is not made again.

This module imports no torch at import time: the `ported_weights` asset's partitions are
`list_ports()`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geovision.errors import MissingWeightsError, UnknownNameError, WeightsError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from geovision.models.weights import WeightsSpec

PORT_VERSION = "1"  # bump when a key map or the verification changes
WEIGHTS_FILE = "weights.safetensors"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RGB = ("red", "green", "blue")
TOLERANCE = 1e-4  # refuse a port whose outputs differ more (tests demand 1e-5)
CHECK_SIZE = 64  # pixels of the verification input
Rule = tuple[str, str | Callable[[re.Match[str]], str]]


@dataclass(frozen=True)
class Port:
    """How one source model's weights become one of ours."""

    name: str  # partition key, "<our model>.<source>"
    model: str
    source: str  # "torchvision" or "timm"
    source_model: str
    rules: tuple[Rule, ...]  # (regex on the source key, replacement): the first match wins
    first_conv: str = "stem.conv"
    classifier: str = "head.fc"

    def map_key(self, key: str) -> str:
        for pattern, replacement in self.rules:
            mapped, count = re.subn(pattern, replacement, key, count=1)
            if count:
                return mapped
        raise WeightsError(f"Port {self.name}: no rule maps the source key {key!r}; add one "
                           "to its rules in geovision/models/port.py.")


def _stage(m: re.Match[str], group: int = 1) -> int:
    return int(m[group]) - 1


RESNET_RULES: tuple[Rule, ...] = (
    (r"^conv1\.", "stem.conv."),
    (r"^bn1\.", "stem.norm."),
    (r"^layer(\d+)\.(\d+)\.conv(\d)\.",
     lambda m: f"stages.{_stage(m)}.blocks.{m[2]}.conv{m[3]}.conv."),
    (r"^layer(\d+)\.(\d+)\.bn(\d)\.",
     lambda m: f"stages.{_stage(m)}.blocks.{m[2]}.conv{m[3]}.norm."),
    (r"^layer(\d+)\.(\d+)\.downsample\.0\.",
     lambda m: f"stages.{_stage(m)}.blocks.{m[2]}.downsample.conv."),
    (r"^layer(\d+)\.(\d+)\.downsample\.1\.",
     lambda m: f"stages.{_stage(m)}.blocks.{m[2]}.downsample.norm."),
    (r"^fc\.", "head.fc."),
)

DENSENET_RULES: tuple[Rule, ...] = (  # torchvision's and timm's names agree
    (r"^features\.conv0\.", "stem.conv."),
    (r"^features\.norm0\.", "stem.norm."),
    (r"^features\.denseblock(\d+)\.denselayer(\d+)\.",
     lambda m: f"stages.{_stage(m)}.blocks.{0 if m[1] == '1' else 1}.layers.{_stage(m, 2)}."),
    (r"^features\.transition(\d+)\.", lambda m: f"stages.{m[1]}.blocks.0."),
    (r"^features\.norm5\.", "head.norm."),
    (r"^classifier\.", "head.fc."),
)


def _efficientnet_torchvision(m: re.Match[str]) -> str:
    from geovision.models.efficientnet import B0

    stage = int(m[1]) - 1
    parts = (["conv_pw"] if B0[stage].expand_ratio != 1 else []) + ["conv_dw", "se", "conv_pwl"]
    part = parts[int(m[3])]
    rest = m[4]
    if part != "se":
        rest = {"0.": "conv.", "1.": "norm."}[rest[:2]] + rest[2:]
    return f"stages.{stage}.blocks.{m[2]}.{part}.{rest}"


EFFICIENTNET_TORCHVISION_RULES: tuple[Rule, ...] = (
    (r"^features\.0\.0\.", "stem.conv."),
    (r"^features\.0\.1\.", "stem.norm."),
    (r"^features\.8\.0\.", "head.conv.conv."),
    (r"^features\.8\.1\.", "head.conv.norm."),
    (r"^features\.(\d+)\.(\d+)\.block\.(\d+)\.(.+)$", _efficientnet_torchvision),
    (r"^classifier\.1\.", "head.fc."),
)

# timm's first stage is a depthwise-separable block, whose `conv_pw` is the projection.
TIMM_DS = {"conv_dw": "conv_dw.conv", "bn1": "conv_dw.norm", "conv_pw": "conv_pwl.conv",
           "bn2": "conv_pwl.norm", "se.conv_reduce": "se.fc1", "se.conv_expand": "se.fc2"}
TIMM_IR = {"conv_pw": "conv_pw.conv", "bn1": "conv_pw.norm", "conv_dw": "conv_dw.conv",
           "bn2": "conv_dw.norm", "conv_pwl": "conv_pwl.conv", "bn3": "conv_pwl.norm",
           "se.conv_reduce": "se.fc1", "se.conv_expand": "se.fc2"}


def _efficientnet_timm(m: re.Match[str]) -> str:
    table = TIMM_DS if m[1] == "0" else TIMM_IR
    return f"stages.{m[1]}.blocks.{m[2]}.{table[m[3]]}.{m[4]}"


EFFICIENTNET_TIMM_RULES: tuple[Rule, ...] = (
    (r"^conv_stem\.", "stem.conv."),
    (r"^bn1\.", "stem.norm."),
    (r"^blocks\.(\d+)\.(\d+)\.(se\.conv_reduce|se\.conv_expand|conv_pwl|conv_pw|conv_dw|bn\d)"
     r"\.(\w+)$", _efficientnet_timm),
    (r"^conv_head\.", "head.conv.conv."),
    (r"^bn2\.", "head.conv.norm."),
    (r"^classifier\.", "head.fc."),
)


def _vgg_rules(convs: tuple[int, ...], batch_norm: bool) -> tuple[Rule, ...]:
    """torchvision's `features.{index}` -> our stage/conv names, walking its layer list."""
    rules: list[Rule] = []
    index = 0
    for stage, num_convs in enumerate(convs):
        for k in range(num_convs):
            ours = f"stages.{stage}.blocks.0.convs.{k}"
            rules.append((rf"^features\.{index}\.", f"{ours}.conv."))
            if batch_norm:
                rules.append((rf"^features\.{index + 1}\.", f"{ours}.norm."))
            index += 3 if batch_norm else 2  # conv, (norm), relu
        index += 1  # max-pool
    rules += [(r"^classifier\.0\.", "head.fc1."), (r"^classifier\.3\.", "head.fc2."),
              (r"^classifier\.6\.", "head.fc.")]
    return tuple(rules)


VGG_FIRST_CONV = "stages.0.blocks.0.convs.0.conv"
PORTS: dict[str, Port] = {p.name: p for p in (
    *(Port(f"{n}.torchvision", n, "torchvision", n, RESNET_RULES)
      for n in ("resnet18", "resnet34", "resnet50", "resnet101")),
    Port("resnet50.timm", "resnet50", "timm", "resnet50", RESNET_RULES),
    Port("densenet121.torchvision", "densenet121", "torchvision", "densenet121",
         DENSENET_RULES),
    Port("densenet121.timm", "densenet121", "timm", "densenet121", DENSENET_RULES),
    Port("efficientnet_b0.torchvision", "efficientnet_b0", "torchvision", "efficientnet_b0",
         EFFICIENTNET_TORCHVISION_RULES),
    Port("efficientnet_b0.timm", "efficientnet_b0", "timm", "efficientnet_b0",
         EFFICIENTNET_TIMM_RULES),
    Port("vgg11.torchvision", "vgg11", "torchvision", "vgg11",
         _vgg_rules((1, 1, 2, 2, 2), False), first_conv=VGG_FIRST_CONV),
    Port("vgg11_bn.torchvision", "vgg11_bn", "torchvision", "vgg11_bn",
         _vgg_rules((1, 1, 2, 2, 2), True), first_conv=VGG_FIRST_CONV),
    Port("vgg16.torchvision", "vgg16", "torchvision", "vgg16",
         _vgg_rules((2, 2, 3, 3, 3), False), first_conv=VGG_FIRST_CONV),
    Port("vgg16_bn.torchvision", "vgg16_bn", "torchvision", "vgg16_bn",
         _vgg_rules((2, 2, 3, 3, 3), True), first_conv=VGG_FIRST_CONV),
)}


def list_ports() -> list[str]:
    """Port names, `<our model>.<source>`: the `ported_weights` asset's partitions."""
    return sorted(PORTS)


def get_port(name: str) -> Port:
    try:
        return PORTS[name]
    except KeyError:
        raise UnknownNameError(f"Unknown port {name!r}; known: {', '.join(list_ports())}.") \
            from None


def port_folder(name: str, home: str | os.PathLike | None = None) -> Path:
    """Where `port_weights(name, home)` writes the port's weights and manifest (and where
    everything that uses them looks)."""
    from geovision.layout import Layout

    return Layout(home).weights(get_port(name).name)


def read_port(name: str, home: str | os.PathLike | None = None) -> WeightsSpec:
    """The spec of the weights `port_weights(name, home)` wrote; a `MissingWeightsError`
    saying how to make them when they were never ported there."""
    from geovision.layout import Layout
    from geovision.models.weights import MANIFEST, WeightsSpec

    folder = port_folder(name, home)
    root = str(Layout(home).home)
    if not (folder / MANIFEST).is_file():
        raise MissingWeightsError(
            f"Port {name} has no ported weights under {folder}. Make them with "
            f"`GEOVISION_HOME={root} dagster asset materialize -m geovision_assets.definitions "
            f"--select ported_weights --partition {name}`, or in Python with "
            f"`geovision.models.port.port_weights({name!r}, {root!r})`.")
    spec = WeightsSpec.read(folder)
    if not spec.path.is_file():
        raise MissingWeightsError(
            f"Port {name}'s manifest in {folder} names {spec.path}, which is missing; port it "
            f"again: `geovision.models.port.port_weights({name!r}, "
            f"{root!r}, force=True)`.")
    return spec


def build_source(port: Port, source_file: str | os.PathLike | None = None,
                 seed: int = 0) -> nn.Module:
    """The source model: with `source_file`'s weights (loaded strictly), else seeded random
    ones, norms included (random affine and running statistics), so that a wrong mapping
    of any tensor shows in the outputs."""
    import torch

    torch.manual_seed(seed)
    if port.source == "torchvision":
        import torchvision

        model = getattr(torchvision.models, port.source_model)(weights=None)
    else:
        import timm

        model = timm.create_model(port.source_model, pretrained=False)
    if source_file is not None:
        from geovision.models.weights import read_state_dict

        try:
            model.load_state_dict(read_state_dict(source_file), strict=True)
        except RuntimeError as exc:
            raise WeightsError(f"{source_file} is not a {port.source} {port.source_model} "
                               f"checkpoint: {exc}") from exc
        return model.eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)
                module.running_mean.normal_(0.0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
    return model.eval()


def map_state_dict(port: Port, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The source state dict under our names."""
    mapped = {}
    for key, value in state.items():
        ours = port.map_key(key)
        if ours in mapped:
            raise WeightsError(f"Port {port.name}: two source keys map to {ours!r}.")
        mapped[ours] = value
    return mapped


def verify(ours: nn.Module, source: nn.Module, seed: int = 0,
           size: int = CHECK_SIZE) -> float:
    """Max |difference| of the two models' eval outputs on seeded random input."""
    import torch

    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed))
    ours.eval()
    source.eval()
    with torch.no_grad():
        return float((ours(x) - source(x)).abs().max())


def _source_version(port: Port) -> str:
    return version(port.source)


def port_weights(name: str, home: str | os.PathLike | None = None, *,
                 source_file: str | os.PathLike | None = None, seed: int = 0,
                 force: bool = False) -> WeightsSpec:
    """Port `name` (see `list_ports()`) into `port_folder(name, home)`; returns its spec.

    Kept as it is when a verified port of the same source version, port version and source
    weights already exists there (unless `force`)."""
    from safetensors.torch import save_file

    from geovision.hashing import sha256_file
    from geovision.io.atomic import atomic_dir
    from geovision.models.registry import create_model
    from geovision.models.weights import WeightsSpec

    port = get_port(name)
    folder = port_folder(name, home)
    source_weights = (f"file {Path(source_file).name} sha256 {sha256_file(source_file)}"
                      if source_file is not None else f"random, seed {seed}")
    if not force and (folder / "manifest.json").is_file():
        existing = WeightsSpec.read(folder)
        if (existing.port_version, existing.source_version, existing.source_weights) == (
                PORT_VERSION, _source_version(port), source_weights) and \
                existing.path.is_file() and sha256_file(existing.path) == existing.sha256:
            return existing
    source = build_source(port, source_file, seed)
    state = map_state_dict(port, source.state_dict())
    num_classes = state[f"{port.classifier}.weight"].shape[0]
    ours = create_model(port.model, in_channels=3, num_classes=num_classes)
    missing, unexpected = (set(ours.state_dict()) - set(state),
                           set(state) - set(ours.state_dict()))
    if missing or unexpected:
        raise WeightsError(f"Port {name}: missing {sorted(missing)}, unexpected "
                           f"{sorted(unexpected)}.")
    ours.load_state_dict(state, strict=True)
    difference = verify(ours, source, seed)
    if difference > TOLERANCE:
        raise WeightsError(f"Port {name}: outputs differ from {port.source} {port.source_model} "
                           f"by {difference:.3g} (> {TOLERANCE}); the key map or the "
                           "architecture is wrong.")
    with atomic_dir(folder) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / WEIGHTS_FILE))
        spec = WeightsSpec(
            name=name, model=port.model, file=WEIGHTS_FILE, sha256=sha256_file(tmp / WEIGHTS_FILE),
            source=port.source, source_model=port.source_model,
            source_version=_source_version(port), source_weights=source_weights, bands=RGB,
            mean=IMAGENET_MEAN, std=IMAGENET_STD, num_classes=int(num_classes),
            first_conv=port.first_conv, classifier=port.classifier,
            verified_max_abs_diff=difference, port_version=PORT_VERSION,
            extra={"verified_on": f"2x3x{CHECK_SIZE}x{CHECK_SIZE} normal, seed {seed}, eval"})
        (tmp / "manifest.json").write_text(spec.to_json())
    return replace(spec, folder=str(folder))


def port_summary(spec: WeightsSpec) -> dict[str, Any]:
    """What the asset shows of a port."""
    return {"model": spec.model, "source": f"{spec.source} {spec.source_model} "
            f"{spec.source_version}", "source_weights": spec.source_weights,
            "sha256": spec.sha256, "verified_max_abs_diff": spec.verified_max_abs_diff,
            "num_classes": spec.num_classes, "port_version": spec.port_version}
