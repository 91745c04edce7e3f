"""Loading the published detector weights, and seeded random weights when there are none.

Two published layouts carry the same names: the detectron2-converted pickle of the Visual
Genome model (`{"model": {name: ndarray}}`) and the HuggingFace `pytorch_model.bin` of
unc-nlp/frcnn-vg-finetuned (a flat state dict of tensors). `published_key_map` spells out,
for a given `DetectorConfig`, which published name fills which parameter of
`RegionDetector`; anything missing, unexpected or of the wrong shape is an error listing it.
"""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from geovision.errors import WeightsError
from geovision.features.config import DetectorConfig
from geovision.features.detector import FrozenBatchNorm, RegionDetector, cell_anchors

NORM_STATS = ("running_mean", "running_var")
ANCHORS_KEY = "proposal_generator.anchor_generator.cell_anchors.0"
LIST_LIMIT = 25
STEM_SCALE = 1 / 64  # caffe-mean-subtracted pixels have a spread of tens
CLS_LOGIT_STD = 3.0  # of random class logits for unit-scale region features


def published_key_map(config: DetectorConfig) -> dict[str, str]:
    """{published name: RegionDetector state-dict name} for every weight of the detector."""
    key_map: dict[str, str] = {}

    def conv_norm(published: str, conv: str, norm: str) -> None:
        key_map[f"{published}.weight"] = f"{conv}.weight"
        for name in ("weight", "bias", *NORM_STATS):
            key_map[f"{published}.norm.{name}"] = f"{norm}.{name}"

    conv_norm("backbone.stem.conv1", "backbone.stem.conv", "backbone.stem.bn")
    stages = [(f"backbone.res{i + 2}", f"backbone.res{i + 2}", n)
              for i, n in enumerate(config.stage_blocks)]
    stages.append(("roi_heads.res5", "roi_head.res5", config.res5_blocks))
    for published, ours, num_blocks in stages:
        for b in range(num_blocks):
            for j in (1, 2, 3):
                conv_norm(f"{published}.{b}.conv{j}", f"{ours}.{b}.conv{j}", f"{ours}.{b}.bn{j}")
            if b == 0:  # every stage changes the channel count in its first block
                conv_norm(f"{published}.0.shortcut", f"{ours}.0.shortcut",
                          f"{ours}.0.shortcut_bn")
    pairs = [("proposal_generator.rpn_head.conv", "rpn.conv"),
             ("proposal_generator.rpn_head.objectness_logits", "rpn.objectness"),
             ("proposal_generator.rpn_head.anchor_deltas", "rpn.deltas"),
             ("roi_heads.box_predictor.cls_score", "roi_head.cls_score"),
             ("roi_heads.box_predictor.bbox_pred", "roi_head.bbox_pred"),
             ("roi_heads.box_predictor.fc_attr", "roi_head.attr_hidden"),
             ("roi_heads.box_predictor.attr_score", "roi_head.attr_score")]
    for published, ours in pairs:
        key_map[f"{published}.weight"] = f"{ours}.weight"
        key_map[f"{published}.bias"] = f"{ours}.bias"
    key_map["roi_heads.box_predictor.cls_embedding.weight"] = "roi_head.attr_class_embed.weight"
    key_map[ANCHORS_KEY] = "rpn.cell_anchors"
    return key_map


def _is_optional(key: str) -> bool:
    return key.endswith(NORM_STATS) or key == ANCHORS_KEY


def expected_shapes(config: DetectorConfig) -> dict[str, tuple[int, ...]]:
    """{RegionDetector state-dict name: shape}, without allocating the weights."""
    with torch.device("meta"):
        model = RegionDetector(config)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into {name: tensor}, whatever its container.

    `.pkl`/`.pickle`: a detectron2 pickle (only open files you trust: pickles run code).
    `.bin`/`.pt`/`.pth`: a torch state dict. `.safetensors`: a safetensors file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Detector weights not found: {path}. Pass the path of the "
                           "downloaded checkpoint, or no weights for random ones.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".pkl", ".pickle"):
            with open(path, "rb") as f:
                data = pickle.load(f, encoding="latin1")
        elif suffix in (".bin", ".pt", ".pth"):
            data = torch.load(path, map_location="cpu", weights_only=True)
        elif suffix == ".safetensors":
            from safetensors.torch import load_file

            data = load_file(str(path))
        else:
            raise WeightsError(f"Unsupported weights file {path}: use a detectron2 pickle "
                               "(.pkl), a torch state dict (.bin, .pt, .pth) or .safetensors.")
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"Cannot read detector weights {path}: {exc}. The file is corrupt "
                           "or not a checkpoint.") from exc
    if isinstance(data, dict):
        for container in ("model", "state_dict"):
            if isinstance(data.get(container), dict):
                data = data[container]
                break
    if not isinstance(data, dict) or not data:
        raise WeightsError(f"{path} holds no state dict (found {type(data).__name__}).")
    if "blobs" in data or any(k.endswith("_w") and "." not in k for k in data):
        raise WeightsError(f"{path} uses Caffe2 blob names; convert it to detectron2 names "
                           "first (detectron2's checkpoint converter) and pass that pickle.")
    state = {}
    for name, value in data.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.ascontiguousarray(value))
        if isinstance(value, torch.Tensor):
            state[name] = value
    return state


def _listing(title: str, items: list[str]) -> str:
    shown = "\n  ".join(items[:LIST_LIMIT])
    more = f"\n  ... and {len(items) - LIST_LIMIT} more" if len(items) > LIST_LIMIT else ""
    return f"{title} ({len(items)}):\n  {shown}{more}"


def map_checkpoint(state: dict[str, torch.Tensor],
                   config: DetectorConfig) -> dict[str, torch.Tensor]:
    """Rename a published state dict to RegionDetector names, checking every key and shape.

    Optional: norm running statistics (caffe conversions fold them into weight and bias;
    they default to mean 0, variance 1) and the anchors (the HuggingFace file stores them,
    the detectron2 pickle does not; they default to the ones `config` generates). Ignored:
    `num_batches_tracked` counters.
    """
    key_map = published_key_map(config)
    shapes = expected_shapes(config)
    missing = [k for k in key_map if k not in state and not _is_optional(k)]
    unexpected = [k for k in state
                  if k not in key_map and not k.endswith(".num_batches_tracked")]
    mismatched = [f"{k}: checkpoint {tuple(state[k].shape)}, model {shapes[ours]}"
                  for k, ours in key_map.items()
                  if k in state and tuple(state[k].shape) != shapes[ours]]
    if missing or unexpected or mismatched:
        parts = ["The checkpoint does not match the detector configuration."]
        if missing:
            parts.append(_listing("Missing keys", missing))
        if unexpected:
            parts.append(_listing("Unexpected keys", unexpected))
        if mismatched:
            parts.append(_listing("Shape mismatches", mismatched))
        objectness = state.get("proposal_generator.rpn_head.objectness_logits.weight")
        if objectness is not None and objectness.shape[0] != config.num_anchors:
            parts.append(f"The checkpoint's RPN predicts {objectness.shape[0]} anchors per "
                         f"location, the configuration {config.num_anchors}: set "
                         "DetectorConfig.anchor_sizes and anchor_ratios to match.")
        parts.append("Check that the file is the Visual Genome Faster R-CNN (ResNet-101 C4, "
                     "1600 objects, 400 attributes) and that DetectorConfig matches it.")
        raise WeightsError("\n".join(parts))
    mapped = {}
    for key, ours in key_map.items():
        if key in state:
            mapped[ours] = state[key].float()
        elif key == ANCHORS_KEY:
            mapped[ours] = cell_anchors(config.anchor_sizes, config.anchor_ratios)
        elif key.endswith("running_mean"):
            mapped[ours] = torch.zeros(shapes[ours])
        else:
            mapped[ours] = torch.ones(shapes[ours])
    return mapped


def to_published_state_dict(model: RegionDetector) -> dict[str, torch.Tensor]:
    """The model's weights under the published names (the inverse of `map_checkpoint`)."""
    ours = model.state_dict()
    return {published: ours[name].detach().clone()
            for published, name in published_key_map(model.config).items()}


def load_weights(model: RegionDetector, path: str | os.PathLike) -> RegionDetector:
    """Fill `model` from a published checkpoint file; strict, see `map_checkpoint`."""
    mapped = map_checkpoint(read_checkpoint(path), model.config)
    model.load_state_dict(mapped, strict=True)
    return model


@torch.no_grad()
def init_random_weights(model: RegionDetector, seed: int = 0) -> RegionDetector:
    """Deterministic random weights (same seed, same weights on every machine).

    Chosen so the random detector costs what the real one does: He-normal convolutions, a
    stem norm that brings pixel-scale inputs to unit scale and a small last norm scale in
    each residual branch keep activations bounded through 30-odd blocks (fp16 does not
    overflow, RPN deltas stay small, so NMS leaves the full 300 proposals), and class logits
    spread enough that some regions pass the score threshold.
    """
    generator = torch.Generator().manual_seed(seed)
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
            head = name.startswith("rpn.")
            std = 0.01 if head else math.sqrt(2.0 / fan_in)
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, FrozenBatchNorm):
            scale = {"backbone.stem.bn": STEM_SCALE}.get(name, 0.2 if name.endswith("bn3") else 1)
            module.weight.fill_(scale)
            module.bias.zero_()
            module.running_mean.zero_()
            module.running_var.fill_(1.0)
        elif isinstance(module, nn.Linear):
            std = {"roi_head.bbox_pred": 0.001,
                   "roi_head.cls_score": CLS_LOGIT_STD / math.sqrt(module.in_features)
                   }.get(name, 0.01)
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
            module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.01)
    return model


def build_detector(config: DetectorConfig | None = None, weights: str | os.PathLike | None = None,
                   seed: int = 0) -> RegionDetector:
    """The detector in eval mode on the CPU: published weights from `weights`, or, when it is
    None, seeded random weights (useful only to exercise the pipeline)."""
    model = RegionDetector(config or DetectorConfig())
    if weights is None:
        init_random_weights(model, seed)
    else:
        load_weights(model, weights)
    return model.eval()
