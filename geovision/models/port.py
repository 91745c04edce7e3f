"""Port torchvision and timm weights onto our architectures, once, verified, with a manifest.

Each `Port` names a source constructor, its published weights, and how its state-dict keys
become ours (explicit renaming rules, no guessing by order). `port_weights` takes the published
checkpoint from the library's own cache (`source_checkpoint`: torch.hub's
`$TORCH_HOME/hub/checkpoints/` for torchvision, the Hugging Face hub cache for timm), downloading
it there when missing, or a weights file given; seeded random source weights only when asked
(`random_source=True`). It maps the state dict, loads it into our model strictly, compares the
two models' outputs on seeded random input in eval mode, and writes `weights.safetensors` +
`manifest.json` (a `WeightsSpec` recording the source file, URL and sha256) under
`port_folder(name)` (`Layout.weights(name)`), where `read_port` finds them.
A port that exists for the same source version, port version and source file is not made again.

On an offline server, pre-seed the cache: copy the `.pth` the weights enum's URL names into
`$TORCH_HOME/hub/checkpoints/` (default `~/.cache/torch/hub/checkpoints/`), or a timm repo's
hub cache folder (`hf download timm/<model>.<tag> model.safetensors` elsewhere) into
`$HF_HUB_CACHE` and set `HF_HUB_OFFLINE=1`.

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

PORT_VERSION = "2"  # bump when a key map, the verification or the source changes (2: published)
WEIGHTS_FILE = "weights.safetensors"
HF_FILE = "model.safetensors"  # what timm loads from a Hugging Face repo
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
    # The published weights: torchvision's weights enum member (`ResNet50_Weights.<this>`),
    # or timm's pretrained tag (`resnet50.<this>`, whose hf_hub_id holds the file).
    weights: str
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
VGG = {"vgg11": (1, 1, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3)}
PORTS: dict[str, Port] = {p.name: p for p in (
    Port("resnet18.torchvision", "resnet18", "torchvision", "resnet18", "IMAGENET1K_V1",
         RESNET_RULES),
    Port("resnet34.torchvision", "resnet34", "torchvision", "resnet34", "IMAGENET1K_V1",
         RESNET_RULES),
    Port("resnet50.torchvision", "resnet50", "torchvision", "resnet50", "IMAGENET1K_V2",
         RESNET_RULES),
    Port("resnet101.torchvision", "resnet101", "torchvision", "resnet101", "IMAGENET1K_V2",
         RESNET_RULES),
    Port("resnet50.timm", "resnet50", "timm", "resnet50", "a1_in1k", RESNET_RULES),
    Port("densenet121.torchvision", "densenet121", "torchvision", "densenet121",
         "IMAGENET1K_V1", DENSENET_RULES),
    Port("densenet121.timm", "densenet121", "timm", "densenet121", "ra_in1k", DENSENET_RULES),
    Port("efficientnet_b0.torchvision", "efficientnet_b0", "torchvision", "efficientnet_b0",
         "IMAGENET1K_V1", EFFICIENTNET_TORCHVISION_RULES),
    Port("efficientnet_b0.timm", "efficientnet_b0", "timm", "efficientnet_b0", "ra_in1k",
         EFFICIENTNET_TIMM_RULES),
    *(Port(f"{n}.torchvision", n, "torchvision", n, "IMAGENET1K_V1",
           _vgg_rules(VGG[n.removesuffix("_bn")], n.endswith("_bn")), first_conv=VGG_FIRST_CONV)
      for n in ("vgg11", "vgg11_bn", "vgg16", "vgg16_bn")),
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


def port_command(name: str, home: str | os.PathLike | None = None) -> str:
    """How a user makes the port `name` under `home`: the asset's materialization, or Python."""
    from geovision.layout import Layout

    root = str(Layout(home).home)
    return (f"`GEOVISION_HOME={root} dagster asset materialize -m geovision_assets.definitions "
            f"--select ported_weights --partition {name}`, or in Python with "
            f"`geovision.models.port.port_weights({name!r}, {root!r})`")


def read_port(name: str, home: str | os.PathLike | None = None) -> WeightsSpec:
    """The spec of the weights `port_weights(name, home)` wrote; a `MissingWeightsError`
    saying how to make them when they were never ported there."""
    from geovision.layout import Layout
    from geovision.models.weights import MANIFEST, WeightsSpec

    folder = port_folder(name, home)
    if not (folder / MANIFEST).is_file():
        raise MissingWeightsError(f"Port {name} has no ported weights under {folder}. Make them "
                                  f"with {port_command(name, home)}.")
    spec = WeightsSpec.read(folder)
    if not spec.path.is_file():
        raise MissingWeightsError(
            f"Port {name}'s manifest in {folder} names {spec.path}, which is missing; port it "
            f"again: `geovision.models.port.port_weights({name!r}, "
            f"{str(Layout(home).home)!r}, force=True)`.")
    return spec


@dataclass(frozen=True)
class Published:
    """Where a port's published source checkpoint lives: its URL, and the cache path that
    torch.hub (torchvision) or huggingface_hub (timm) downloads it to and reads it from."""

    weights: str  # "torchvision ResNet50_Weights.IMAGENET1K_V2", "timm timm/resnet50.a1_in1k"
    url: str
    cache_path: Path  # the file itself (torch.hub), or the repo's folder in the hub cache
    sha256: str  # published sha256 (torch.hub: its prefix, from the file name)
    hf_repo: str = ""  # timm: the Hugging Face repo, "timm/resnet50.a1_in1k"
    hf_revision: str | None = None


def published(port: Port) -> Published:
    """The published checkpoint `port` names, resolved the way its library resolves it."""
    if port.source == "torchvision":
        from urllib.parse import urlparse

        import torch.hub
        import torchvision

        weights = getattr(torchvision.models.get_model_weights(port.source_model), port.weights)
        file_name = os.path.basename(urlparse(weights.url).path)
        match = torch.hub.HASH_REGEX.search(file_name)
        return Published(f"torchvision {weights}", weights.url,
                         Path(torch.hub.get_dir()) / "checkpoints" / file_name,
                         match[1] if match else "")
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(f"{port.source_model}.{port.weights}")
    if cfg is None or not cfg.hf_hub_id:
        raise WeightsError(f"Port {port.name}: timm has no Hugging Face weights for "
                           f"{port.source_model}.{port.weights}; set another tag in "
                           "geovision/models/port.py.")
    repo, _, revision = cfg.hf_hub_id.partition("@")  # timm's "<repo>@<revision>"
    url = f"https://huggingface.co/{repo}/resolve/{revision or 'main'}/{HF_FILE}"
    return Published(f"timm {cfg.hf_hub_id}", url,
                     Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo,
                                                                       repo_type="model"),
                     "", hf_repo=repo, hf_revision=revision or None)


def source_checkpoint(port: Port, download: bool = True,
                      home: str | os.PathLike | None = None) -> Path:
    """The published checkpoint's file in the library's cache: torchvision's in
    `$TORCH_HOME/hub/checkpoints/<file name of the URL>` (what `torch.hub.load_state_dict_from_url`
    reads), timm's as `model.safetensors` of its repo in the Hugging Face hub cache
    (`$HF_HUB_CACHE`, `$HF_HOME/hub`). Downloaded there when missing and `download`; else a
    `MissingWeightsError` naming the URL, where to place the file and how to retry (the
    port under `home`)."""
    source = published(port)
    if port.source == "torchvision":
        if source.cache_path.is_file():
            return source.cache_path
        if download:
            import torch.hub

            try:  # writes a temporary file beside the target, moved there once complete
                source.cache_path.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(source.url, str(source.cache_path),
                                               source.sha256 or None, progress=False)
                return source.cache_path
            except (OSError, RuntimeError, ValueError) as exc:
                failure = f"downloading it failed ({type(exc).__name__}: {exc})"
        else:
            failure = "downloads are off"
        place = (f"download it on a machine with internet and copy it to {source.cache_path} "
                 "(torch.hub's cache, $TORCH_HOME/hub/checkpoints/)")
    else:
        from huggingface_hub import hf_hub_download

        try:
            return Path(hf_hub_download(source.hf_repo, HF_FILE, revision=source.hf_revision,
                                        local_files_only=not download))
        except (OSError, ValueError) as exc:
            failure = (f"it is not in the Hugging Face cache and downloading it failed "
                       f"({type(exc).__name__}: {exc})" if download else
                       "it is not in the Hugging Face cache and downloads are off")
        place = (f"run `hf download {source.hf_repo} {HF_FILE}` on a machine with internet "
                 f"and copy its hub cache folder {source.cache_path.name} into "
                 f"{source.cache_path.parent} ($HF_HUB_CACHE; set HF_HUB_OFFLINE=1 to read it "
                 "without network)")
    raise MissingWeightsError(
        f"Port {port.name} needs the published {source.weights} checkpoint, {source.url}, "
        f"and {failure}. To port it offline, {place}; then port it again with "
        f"{port_command(port.name, home)}.")


def build_source(port: Port, source_file: str | os.PathLike | None = None,
                 seed: int = 0) -> nn.Module:
    """The source model: with `source_file`'s weights, loaded strictly as the library loads
    its published checkpoint (torch.hub's loader and torchvision's legacy DenseNet key names;
    timm's own loader and checkpoint filter), else seeded random ones, norms included (random
    affine and running statistics), so that a wrong mapping of any tensor shows in the
    outputs."""
    import torch

    torch.manual_seed(seed)
    if source_file is not None:
        try:
            return _load_source(port, Path(source_file)).eval()
        except (RuntimeError, ValueError, KeyError, OSError) as exc:
            raise WeightsError(f"{source_file} is not a {port.source} {port.source_model} "
                               f"checkpoint: {exc}") from exc
    if port.source == "torchvision":
        import torchvision

        model = getattr(torchvision.models, port.source_model)(weights=None)
    else:
        import timm

        model = timm.create_model(port.source_model, pretrained=False)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)
                module.running_mean.normal_(0.0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
    return model.eval()


# torchvision's published DenseNet checkpoints name `norm.1`, `conv.2`, ...; its builder
# renames them (torchvision.models.densenet._load_state_dict) before loading.
LEGACY_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _load_source(port: Port, path: Path) -> nn.Module:
    if not path.is_file():
        raise OSError(f"no such file: {path}")
    if port.source == "timm":
        import timm

        return timm.create_model(f"{port.source_model}.{port.weights}", pretrained=True,
                                 pretrained_cfg_overlay={"file": str(path)})
    import torch.hub
    import torchvision

    # torch.hub's own loader (legacy zip format included); the file exists, so nothing is
    # downloaded.
    state = torch.hub.load_state_dict_from_url(published(port).url, model_dir=str(path.parent),
                                               file_name=path.name, map_location="cpu",
                                               weights_only=True)
    state = {(f"{m[1]}{m[2]}" if (m := LEGACY_DENSENET_KEY.match(k)) else k): v
             for k, v in state.items()}
    model = getattr(torchvision.models, port.source_model)(weights=None)
    model.load_state_dict(state, strict=True)
    return model


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
                 source_file: str | os.PathLike | None = None, random_source: bool = False,
                 seed: int = 0, download: bool = True, force: bool = False) -> WeightsSpec:
    """Port `name` (see `list_ports()`) into `port_folder(name, home)`; returns its spec.

    The source is the published checkpoint the port names (`source_checkpoint`: the library's
    cache, downloaded there when missing and `download`), or `source_file`; seeded random
    weights only with `random_source=True` (the manifest's `source_weights` then says
    "random, seed N"). Kept as it is when a verified port of the same source version, port
    version and source weights already exists there (unless `force`)."""
    from safetensors.torch import save_file

    from geovision.hashing import sha256_file
    from geovision.io.atomic import atomic_dir
    from geovision.models.registry import create_model
    from geovision.models.weights import WeightsSpec

    port = get_port(name)
    folder = port_folder(name, home)
    if random_source and source_file is not None:
        raise WeightsError(f"Port {name}: give a source_file or random_source=True, not both.")
    extra: dict[str, Any] = {}
    if random_source:
        source_weights = f"random, seed {seed}"
    else:
        source = published(port)
        if source_file is None:
            source_file = source_checkpoint(port, download, home)
        file_sha256 = sha256_file(source_file)
        # torch.hub checks the URL's hash prefix on download only, and huggingface_hub names a
        # cached blob by its sha256: what the file was published as is recorded, not refused.
        expected = source.sha256 or _hub_blob_sha256(Path(source_file))
        extra = {"source_file": Path(source_file).name, "source_sha256": file_sha256,
                 "published_url": source.url, "published_sha256": expected,
                 "sha256_matches_published": bool(expected) and file_sha256.startswith(expected)}
        source_weights = f"{source.weights} {Path(source_file).name} sha256 {file_sha256}"
    if not force and (folder / "manifest.json").is_file():
        existing = WeightsSpec.read(folder)
        if (existing.port_version, existing.source_version, existing.source_weights) == (
                PORT_VERSION, _source_version(port), source_weights) and \
                existing.path.is_file() and sha256_file(existing.path) == existing.sha256:
            return existing
    source_model = build_source(port, None if random_source else source_file, seed)
    state = map_state_dict(port, source_model.state_dict())
    num_classes = state[f"{port.classifier}.weight"].shape[0]
    ours = create_model(port.model, in_channels=3, num_classes=num_classes)
    missing, unexpected = (set(ours.state_dict()) - set(state),
                           set(state) - set(ours.state_dict()))
    if missing or unexpected:
        raise WeightsError(f"Port {name}: missing {sorted(missing)}, unexpected "
                           f"{sorted(unexpected)}.")
    ours.load_state_dict(state, strict=True)
    difference = verify(ours, source_model, seed)
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
            extra={"verified_on": f"2x3x{CHECK_SIZE}x{CHECK_SIZE} normal, seed {seed}, eval",
                   **extra})
        (tmp / "manifest.json").write_text(spec.to_json())
    return replace(spec, folder=str(folder))


def _hub_blob_sha256(path: Path) -> str:
    """The sha256 the Hugging Face cache names a file's blob by (an LFS file's content hash),
    or "" where the file is not a link into a hub cache."""
    blob = path.resolve().name
    return blob if path.is_symlink() and re.fullmatch(r"[0-9a-f]{64}", blob) else ""


def port_summary(spec: WeightsSpec) -> dict[str, Any]:
    """What the asset shows of a port."""
    return {"model": spec.model, "source": f"{spec.source} {spec.source_model} "
            f"{spec.source_version}", "source_weights": spec.source_weights,
            "sha256": spec.sha256, "verified_max_abs_diff": spec.verified_max_abs_diff,
            "num_classes": spec.num_classes, "port_version": spec.port_version,
            **{k: spec.extra[k] for k in ("published_url", "sha256_matches_published")
               if k in spec.extra}}
