"""Faster R-CNN, ResNet C4, caffe-style, with Visual Genome object and attribute heads.

Built from torch and torchvision ops only (conv, RoIPool/RoIAlign, nms). The model returns,
for every proposal of every image, the class probabilities, per-class boxes, attribute
probabilities and the mean-pooled res5 feature; choosing which regions to keep is
`selection.select_regions`' job. Weight names are this module's own; `weights.py` maps the
published checkpoints onto them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms, roi_align, roi_pool

from geovision.features.config import DetectorConfig

FEATURE_STRIDE = 16  # res4
BOX_SCALE_CLAMP = math.log(1000.0 / 16)  # no box grows more than a 16 px box into 1000 px


class FrozenBatchNorm(nn.Module):
    """Batch norm with fixed statistics and affine terms (the detector is never trained here)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(channels))
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=False, eps=self.eps)


class Bottleneck(nn.Module):
    """1x1 (carries the stride, as in the original MSRA models) -> 3x3 (dilated) -> 1x1."""

    def __init__(self, in_channels: int, width: int, out_channels: int, stride: int = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 1, stride=stride, bias=False)
        self.bn1 = FrozenBatchNorm(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = FrozenBatchNorm(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = FrozenBatchNorm(out_channels)
        self.shortcut: nn.Conv2d | None = None
        self.shortcut_bn: FrozenBatchNorm | None = None
        if in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            self.shortcut_bn = FrozenBatchNorm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.bn1(self.conv1(x)))
        out = F.relu_(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.shortcut is None else self.shortcut_bn(self.shortcut(x))
        return F.relu_(out + identity)


def make_stage(num_blocks: int, in_channels: int, width: int, out_channels: int, stride: int,
               dilation: int = 1) -> nn.Sequential:
    blocks = [Bottleneck(in_channels, width, out_channels, stride, dilation)]
    blocks += [Bottleneck(out_channels, width, out_channels, 1, dilation)
               for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


class Stem(nn.Module):
    """7x7/2 conv, then the caffe max pool (3x3/2, no padding, rounding up)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 7, stride=2, padding=3, bias=False)
        self.bn = FrozenBatchNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.bn(self.conv(x)))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=0, ceil_mode=True)


class Backbone(nn.Module):
    """Stem + res2, res3, res4: the stride-16 feature map that proposals are pooled from."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        c = config
        self.stem = Stem(c.stem_channels)
        self.res2 = make_stage(c.stage_blocks[0], c.stem_channels, c.bottleneck_width,
                               c.res2_channels, stride=1)
        self.res3 = make_stage(c.stage_blocks[1], c.res2_channels, c.bottleneck_width * 2,
                               c.res2_channels * 2, stride=2)
        self.res4 = make_stage(c.stage_blocks[2], c.res2_channels * 2, c.bottleneck_width * 4,
                               c.res2_channels * 4, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res4(self.res3(self.res2(self.stem(x))))


def cell_anchors(sizes: tuple[float, ...], ratios: tuple[float, ...]) -> torch.Tensor:
    """(A, 4) anchors centred on 0: for each size, for each ratio (height / width)."""
    anchors = []
    for size in sizes:
        for ratio in ratios:
            w = math.sqrt(size * size / ratio)
            h = ratio * w
            anchors.append([-w / 2, -h / 2, w / 2, h / 2])
    return torch.tensor(anchors, dtype=torch.float32)


def decode_boxes(deltas: torch.Tensor, boxes: torch.Tensor,
                 weights: tuple[float, float, float, float]) -> torch.Tensor:
    """Apply (dx, dy, dw, dh) deltas, (N, K*4), to boxes (N, 4): returns (N, K, 4) x1y1x2y2."""
    deltas = deltas.float().reshape(deltas.shape[0], -1, 4)
    boxes = boxes.float()
    widths = (boxes[:, 2] - boxes[:, 0])[:, None]
    heights = (boxes[:, 3] - boxes[:, 1])[:, None]
    ctr_x = boxes[:, 0, None] + 0.5 * widths
    ctr_y = boxes[:, 1, None] + 0.5 * heights
    wx, wy, ww, wh = weights
    dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
    dw = (deltas[..., 2] / ww).clamp(max=BOX_SCALE_CLAMP)
    dh = (deltas[..., 3] / wh).clamp(max=BOX_SCALE_CLAMP)
    cx, cy = dx * widths + ctr_x, dy * heights + ctr_y
    half_w, half_h = 0.5 * torch.exp(dw) * widths, 0.5 * torch.exp(dh) * heights
    return torch.stack((cx - half_w, cy - half_h, cx + half_w, cy + half_h), dim=-1)


def clip_boxes(boxes: torch.Tensor, height: float, width: float) -> torch.Tensor:
    """Clamp x to [0, width] and y to [0, height]; any leading shape, last dim 4."""
    x = boxes[..., 0::2].clamp(0, width)
    y = boxes[..., 1::2].clamp(0, height)
    return torch.stack((x[..., 0], y[..., 0], x[..., 1], y[..., 1]), dim=-1)


class RegionProposalNetwork(nn.Module):
    """3x3 conv + objectness and box deltas per anchor; per-image top-k, NMS, top-k."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        in_channels = config.res2_channels * 4
        self.conv = nn.Conv2d(in_channels, config.rpn_channels, 3, padding=1)
        self.objectness = nn.Conv2d(config.rpn_channels, config.num_anchors, 1)
        self.deltas = nn.Conv2d(config.rpn_channels, config.num_anchors * 4, 1)
        # Part of the weights: a published checkpoint may carry its own anchors.
        self.register_buffer("cell_anchors",
                             cell_anchors(config.anchor_sizes, config.anchor_ratios))

    def grid_anchors(self, height: int, width: int) -> torch.Tensor:
        """(height * width * A, 4) anchors, location-major, in input-image pixels."""
        device = self.cell_anchors.device
        ys = torch.arange(height, device=device, dtype=torch.float32) * FEATURE_STRIDE
        xs = torch.arange(width, device=device, dtype=torch.float32) * FEATURE_STRIDE
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        shifts = torch.stack((xx, yy, xx, yy), dim=-1).reshape(-1, 1, 4)
        return (shifts + self.cell_anchors.float()[None]).reshape(-1, 4)

    def forward(self, features: torch.Tensor,
                image_sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        c = self.config
        batch, _, height, width = features.shape
        hidden = F.relu(self.conv(features))
        logits = self.objectness(hidden).float().permute(0, 2, 3, 1).reshape(batch, -1)
        deltas = self.deltas(hidden).float().view(batch, c.num_anchors, 4, height, width)
        deltas = deltas.permute(0, 3, 4, 1, 2).reshape(batch, -1, 4)
        anchors = self.grid_anchors(height, width)
        k = min(c.rpn_pre_nms_topk, logits.shape[1])
        top_logits, top_idx = logits.topk(k, dim=1)
        proposals = []
        for i, (img_h, img_w) in enumerate(image_sizes):
            idx = top_idx[i]
            boxes = decode_boxes(deltas[i, idx], anchors[idx], (1.0, 1.0, 1.0, 1.0))[:, 0]
            boxes = clip_boxes(boxes, img_h, img_w)
            scores = top_logits[i]
            sides = torch.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
            valid = sides > c.rpn_min_box_size
            boxes, scores = boxes[valid], scores[valid]
            keep = nms(boxes, scores, c.rpn_nms_thresh)[: c.rpn_post_nms_topk]
            proposals.append(boxes[keep])
        return proposals


class RegionHead(nn.Module):
    """res5 on pooled regions, mean-pooled to one vector; class, box and attribute heads."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        dilation = 2 if c.res5_dilated else 1
        stride = 1 if c.res5_dilated else 2
        self.res5 = make_stage(c.res5_blocks, c.res2_channels * 4, c.bottleneck_width * 8,
                               c.feature_dim, stride=stride, dilation=dilation)
        dim = c.feature_dim
        num_box_classes = 1 if c.class_agnostic_boxes else c.num_classes
        self.cls_score = nn.Linear(dim, c.num_classes + 1)  # background is the last column
        self.bbox_pred = nn.Linear(dim, num_box_classes * 4)
        # Attributes are predicted from the feature and an embedding of the predicted class.
        self.attr_class_embed = nn.Embedding(c.num_classes + 1, dim // 8)
        self.attr_hidden = nn.Linear(dim + dim // 8, dim // 4)
        self.attr_score = nn.Linear(dim // 4, c.num_attributes + 1)  # "no attribute" last

    def pool(self, features: torch.Tensor, proposals: list[torch.Tensor]) -> torch.Tensor:
        c = self.config
        rois = torch.cat([torch.cat((torch.full_like(p[:, :1], i), p), dim=1)
                          for i, p in enumerate(proposals)])  # float32 coordinates
        size = (c.pooler_resolution, c.pooler_resolution)
        features = features.float()  # pool in float32 on every device and precision
        if c.pooler == "roialign":
            return roi_align(features, rois, size, 1.0 / FEATURE_STRIDE, sampling_ratio=0,
                             aligned=True)
        return roi_pool(features, rois, size, 1.0 / FEATURE_STRIDE)

    def forward(self, features: torch.Tensor, proposals: list[torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        pooled = self.pool(features, proposals)
        if features.is_contiguous(memory_format=torch.channels_last):
            pooled = pooled.contiguous(memory_format=torch.channels_last)
        region = self.res5(pooled).mean(dim=(2, 3)).float()
        with torch.autocast(region.device.type, enabled=False):
            cls_logits = self.cls_score(region)
            box_deltas = self.bbox_pred(region)
            embed = self.attr_class_embed(cls_logits.argmax(dim=1))
            hidden = F.relu(self.attr_hidden(torch.cat((region, embed), dim=1)))
            attr_logits = self.attr_score(hidden)
        return region, cls_logits, box_deltas, attr_logits


@dataclass
class RegionOutputs:
    """Everything the detector says about one image's proposals, in input (resized) pixels.

    boxes: (R, K, 4) per-class boxes, or (R, 4) with class-agnostic regression; probs:
    (R, K + 1), background last; attr_probs: (R, A + 1), "no attribute" last.
    """

    proposals: torch.Tensor
    boxes: torch.Tensor
    probs: torch.Tensor
    attr_probs: torch.Tensor
    features: torch.Tensor
    image_size: tuple[int, int]


class RegionDetector(nn.Module):
    """The whole detector; `forward(images, image_sizes)` runs it on a padded batch."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = Backbone(config)
        self.rpn = RegionProposalNetwork(config)
        self.roi_head = RegionHead(config)

    @torch.inference_mode()
    def forward(self, images: torch.Tensor,
                image_sizes: list[tuple[int, int]]) -> list[RegionOutputs]:
        """images: (B, 3, H, W) preprocessed and padded; image_sizes: each image's (h, w)."""
        if images.shape[0] != len(image_sizes):
            raise ValueError(f"Got {images.shape[0]} images but {len(image_sizes)} sizes.")
        features = self.backbone(images)
        proposals = self.rpn(features, image_sizes)
        region, cls_logits, box_deltas, attr_logits = self.roi_head(features, proposals)
        probs = cls_logits.softmax(dim=1)
        attr_probs = attr_logits.softmax(dim=1)
        counts = [len(p) for p in proposals]
        outputs = []
        for i, chunks in enumerate(zip(proposals, region.split(counts), probs.split(counts),
                                       box_deltas.split(counts), attr_probs.split(counts),
                                       strict=True)):
            props, feats, p, deltas, attrs = chunks
            img_h, img_w = image_sizes[i]
            boxes = clip_boxes(decode_boxes(deltas, props, self.config.box_reg_weights),
                               img_h, img_w)
            if self.config.class_agnostic_boxes:
                boxes = boxes[:, 0]
            outputs.append(RegionOutputs(proposals=props, boxes=boxes, probs=p,
                                         attr_probs=attrs, features=feats,
                                         image_size=(img_h, img_w)))
        return outputs
