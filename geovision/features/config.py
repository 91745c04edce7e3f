"""Settings of the region-feature detector: architecture sizes, proposal and selection knobs.

The defaults describe the published Visual Genome Faster R-CNN (ResNet-101 C4, caffe-style),
so a checkpoint of that model loads without changes; `tiny()` keeps the same structure at a
size that runs on a CPU in tests and demos.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from geovision.errors import ConfigError

CAFFE_BGR_MEAN = (102.9801, 115.9465, 122.7717)


@dataclass(frozen=True)
class DetectorConfig:
    """Architecture and inference settings; every size that shapes a weight lives here."""

    # Backbone: caffe ResNet (stride in the 1x1 conv, 3x3/2 max pool with ceil), res2..res4.
    stem_channels: int = 64
    res2_channels: int = 256
    bottleneck_width: int = 64
    stage_blocks: tuple[int, int, int] = (3, 4, 23)
    # Box head: res5 on pooled res4 regions. The VG model runs it at stride 1 with dilation 2
    # (14x14 output); False gives the usual stride-2 res5 (7x7).
    res5_blocks: int = 3
    res5_dilated: bool = True
    # Region proposals on res4 (stride 16).
    rpn_channels: int = 512
    anchor_sizes: tuple[float, ...] = (64.0, 128.0, 256.0, 512.0)
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_pre_nms_topk: int = 6000
    rpn_post_nms_topk: int = 300
    rpn_nms_thresh: float = 0.7
    rpn_min_box_size: float = 0.0
    # Region heads.
    pooler: Literal["roipool", "roialign"] = "roipool"
    pooler_resolution: int = 14
    num_classes: int = 1600
    num_attributes: int = 400
    class_agnostic_boxes: bool = False
    box_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    # Region selection (see selection.select_regions). For feature extraction
    # py-bottom-up-attention's notebooks replace the detector's ordinary per-class NMS (0.6)
    # with this sweep.
    score_thresh: float = 0.2
    nms_thresholds: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
    # Input: BGR minus the caffe mean, short side `min_size`, long side at most `max_size`.
    min_size: int = 600
    max_size: int = 1000
    pixel_mean: tuple[float, float, float] = field(default=CAFFE_BGR_MEAN)

    def __post_init__(self) -> None:
        if self.pooler not in ("roipool", "roialign"):
            raise ConfigError(f"DetectorConfig.pooler is {self.pooler!r}; use 'roipool' or "
                              "'roialign'.")
        if self.min_size <= 0 or self.max_size < self.min_size:
            raise ConfigError(f"DetectorConfig sizes min_size={self.min_size}, max_size="
                              f"{self.max_size}: need 0 < min_size <= max_size.")
        if not 0.0 <= self.score_thresh < 1.0:
            raise ConfigError(f"DetectorConfig.score_thresh={self.score_thresh} must be in [0, 1).")

    @property
    def feature_dim(self) -> int:
        """Channels of res5, i.e. the length of each region's pooled feature (2048 in full)."""
        return self.res2_channels * 8

    @property
    def num_anchors(self) -> int:
        return len(self.anchor_sizes) * len(self.anchor_ratios)

    @classmethod
    def tiny(cls) -> DetectorConfig:
        """The same architecture, a few thousand times cheaper: for tests and the CPU demo."""
        return cls(stem_channels=8, res2_channels=16, bottleneck_width=4, stage_blocks=(1, 1, 1),
                   res5_blocks=1, rpn_channels=16, anchor_sizes=(16.0, 32.0, 64.0),
                   rpn_pre_nms_topk=300, rpn_post_nms_topk=60, num_classes=20,
                   num_attributes=8, min_size=64, max_size=128)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DetectorConfig:
        """Inverse of `to_dict` (JSON turns tuples into lists)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Unknown DetectorConfig fields {unknown}; known: {sorted(known)}.")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
