"""Preprocessing as the original (BGR, caffe mean, 600/1000) and the detector's outputs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from geovision.features.config import CAFFE_BGR_MEAN, DetectorConfig
from geovision.features.detector import decode_boxes
from geovision.features.preprocess import preprocess_batch, resized_shape, to_rgb_uint8
from geovision.features.weights import build_detector


@pytest.mark.parametrize(("size", "expected"), [
    ((480, 640), (600, 800)),     # short side to 600
    ((640, 480), (800, 600)),
    ((300, 1000), (300, 1000)),   # 600 would push the long side to 2000: capped at 1000
    ((1200, 1600), (600, 800)),   # shrinking works the same way
    ((427, 640), (600, 899)),     # rounding to the nearest pixel
    # 16:9 frames: the scaled short side lands on 562.5 in exact arithmetic and just below it
    # in detectron2's float64 order of operations, which rounds to 562 (not 563).
    ((360, 640), (562, 1000)),
    ((720, 1280), (562, 1000)),
    ((1080, 1920), (562, 1000)),
    ((640, 360), (1000, 562)),    # portrait
    ((600, 600), (600, 600)),     # already the size
    ((100, 2000), (50, 1000)),    # capped by the long side
    ((333, 500), (600, 901)),
])
def test_resized_shape(size, expected):
    assert resized_shape(*size, 600, 1000) == expected


def test_preprocess_is_bgr_minus_caffe_mean_and_pads_with_zero():
    config = DetectorConfig(min_size=20, max_size=40)
    red_ish = torch.tensor([10, 20, 30], dtype=torch.uint8).expand(10, 20, 3)
    tall = torch.full((30, 10, 3), 200, dtype=torch.uint8)
    batch, sizes = preprocess_batch([red_ish, tall], config)
    assert sizes == [(20, 40), (40, 13)]  # (30, 10): 20/10 gives 60 > 40, so 40/30
    assert batch.shape == (2, 3, 40, 40)
    b, g, r = CAFFE_BGR_MEAN
    expected = torch.tensor([30 - b, 20 - g, 10 - r]).view(3, 1, 1)
    assert torch.allclose(batch[0, :, :20, :40], expected.expand(3, 20, 40), atol=1e-4)
    assert torch.count_nonzero(batch[0, :, 20:]) == 0
    assert torch.count_nonzero(batch[1, :, :, 13:]) == 0


def test_to_rgb_uint8_handles_bands_and_dtypes():
    gray = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    rgb = to_rgb_uint8(gray)
    assert rgb.shape == (3, 4, 3) and (rgb[..., 0] == rgb[..., 2]).all()
    rng = np.random.default_rng(0)
    sixteen = rng.integers(0, 4000, size=(4, 8, 8)).astype(np.uint16)
    out = to_rgb_uint8(sixteen, bands=(2, 1, 0))
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    # Band 2 becomes red: its brightest pixel is brightest in red.
    assert np.unravel_index(out[..., 0].argmax(), (8, 8)) == np.unravel_index(
        sixteen[2].argmax(), (8, 8))
    with pytest.raises(ValueError, match="2 bands"):
        to_rgb_uint8(np.zeros((2, 4, 4), dtype=np.uint8))


def test_decode_boxes():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    same = decode_boxes(torch.zeros(1, 8), boxes, (10.0, 10.0, 5.0, 5.0))
    assert same.shape == (1, 2, 4) and torch.allclose(same[0, 1], boxes[0])
    # dx = 1 (times weight 10) moves by one width; dw = log 2 (times 5) doubles the width.
    moved = decode_boxes(torch.tensor([[10.0, 0.0, 5 * np.log(2.0), 0.0]]), boxes,
                         (10.0, 10.0, 5.0, 5.0))
    assert torch.allclose(moved[0, 0], torch.tensor([20.0, 20.0, 60.0, 60.0]), atol=1e-5)


def test_tiny_detector_outputs():
    config = DetectorConfig.tiny()
    model = build_detector(config)
    images = [torch.randint(0, 256, (64, 64, 3), dtype=torch.uint8),
              torch.randint(0, 256, (40, 100, 3), dtype=torch.uint8)]
    batch, sizes = preprocess_batch(images, config)
    outputs = model(batch, sizes)
    assert [o.image_size for o in outputs] == [(64, 64), (51, 128)]
    for out in outputs:
        r = out.proposals.shape[0]
        assert 0 < r <= config.rpn_post_nms_topk
        assert out.boxes.shape == (r, config.num_classes, 4)
        assert out.probs.shape == (r, config.num_classes + 1)
        assert out.attr_probs.shape == (r, config.num_attributes + 1)
        assert out.features.shape == (r, config.feature_dim)
        assert out.features.dtype == torch.float32 and torch.isfinite(out.features).all()
        assert torch.allclose(out.probs.sum(1), torch.ones(r), atol=1e-5)
        h, w = out.image_size
        assert out.boxes[..., 0::2].min() >= 0 and out.boxes[..., 0::2].max() <= w
        assert out.boxes[..., 1::2].min() >= 0 and out.boxes[..., 1::2].max() <= h


def test_class_agnostic_boxes_and_roialign():
    config = replace(DetectorConfig.tiny(), class_agnostic_boxes=True, pooler="roialign",
                     res5_dilated=False)
    model = build_detector(config)
    batch, sizes = preprocess_batch([torch.randint(0, 256, (64, 64, 3), dtype=torch.uint8)],
                                    config)
    out = model(batch, sizes)[0]
    assert out.boxes.shape == (out.proposals.shape[0], 4)
    assert model.roi_head.bbox_pred.out_features == 4
