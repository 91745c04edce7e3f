"""The published-checkpoint key map, loading from both layouts, and random weights."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from geovision.features.config import DetectorConfig
from geovision.features.detector import cell_anchors
from geovision.features.weights import (
    WeightsError,
    build_detector,
    expected_shapes,
    map_checkpoint,
    published_key_map,
    to_published_state_dict,
)

# Names and shapes of the published Visual Genome model (ResNet-101 C4, 1600 objects,
# 400 attributes, 12 anchors, 512-channel RPN), written out by hand.
ANCHORS = "proposal_generator.anchor_generator.cell_anchors.0"
PUBLISHED_SHAPES = {
    "backbone.stem.conv1.weight": (64, 3, 7, 7),
    "backbone.stem.conv1.norm.weight": (64,),
    "backbone.res2.0.shortcut.weight": (256, 64, 1, 1),
    "backbone.res2.0.shortcut.norm.bias": (256,),
    "backbone.res2.0.conv1.weight": (64, 64, 1, 1),
    "backbone.res2.2.conv3.weight": (256, 64, 1, 1),
    "backbone.res3.0.conv1.weight": (128, 256, 1, 1),
    "backbone.res3.3.conv2.weight": (128, 128, 3, 3),
    "backbone.res4.0.shortcut.weight": (1024, 512, 1, 1),
    "backbone.res4.22.conv3.weight": (1024, 256, 1, 1),
    "backbone.res4.22.conv3.norm.running_var": (1024,),
    "proposal_generator.rpn_head.conv.weight": (512, 1024, 3, 3),
    "proposal_generator.rpn_head.conv.bias": (512,),
    "proposal_generator.rpn_head.objectness_logits.weight": (12, 512, 1, 1),
    "proposal_generator.rpn_head.anchor_deltas.weight": (48, 512, 1, 1),
    "roi_heads.res5.0.shortcut.weight": (2048, 1024, 1, 1),
    "roi_heads.res5.0.conv1.weight": (512, 1024, 1, 1),
    "roi_heads.res5.2.conv2.weight": (512, 512, 3, 3),
    "roi_heads.res5.2.conv3.norm.running_mean": (2048,),
    "roi_heads.box_predictor.cls_score.weight": (1601, 2048),
    "roi_heads.box_predictor.cls_score.bias": (1601,),
    "roi_heads.box_predictor.bbox_pred.weight": (6400, 2048),
    "roi_heads.box_predictor.cls_embedding.weight": (1601, 256),
    "roi_heads.box_predictor.fc_attr.weight": (512, 2304),
    "roi_heads.box_predictor.attr_score.weight": (401, 512),
    "roi_heads.box_predictor.attr_score.bias": (401,),
    ANCHORS: (12, 4),
}
# 33 bottleneck blocks x 3 convs + 4 shortcuts + the stem, each conv with 4 norm tensors;
# then RPN (3 convs with bias) and predictor (cls, box, attr hidden, attr score, embedding).
# And the anchors, which the HuggingFace layout stores.
PUBLISHED_KEY_COUNT = (33 * 3 + 4 + 1) * 5 + 3 * 2 + 4 * 2 + 1 + 1


@pytest.fixture(scope="module")
def full_shapes() -> dict[str, tuple[int, ...]]:
    config = DetectorConfig()
    shapes = expected_shapes(config)
    return {pub: shapes[ours] for pub, ours in published_key_map(config).items()}


def meta_checkpoint(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


def test_full_key_map_has_the_published_names_and_shapes(full_shapes):
    assert len(full_shapes) == PUBLISHED_KEY_COUNT
    for key, shape in PUBLISHED_SHAPES.items():
        assert full_shapes[key] == shape, key
    # Every parameter and buffer of the model is filled by exactly one published key.
    ours = published_key_map(DetectorConfig()).values()
    assert sorted(ours) == sorted(expected_shapes(DetectorConfig()))


def test_full_checkpoint_in_both_layouts_maps(full_shapes):
    # The HuggingFace file also stores batch-norm counters and the anchors.
    state = meta_checkpoint(full_shapes)
    state["backbone.stem.conv1.norm.num_batches_tracked"] = torch.tensor(0)
    mapped = map_checkpoint(state, DetectorConfig())
    assert len(mapped) == PUBLISHED_KEY_COUNT
    assert mapped["roi_head.attr_class_embed.weight"].shape == (1601, 256)
    assert mapped["backbone.res4.22.bn3.running_var"].shape == (1024,)
    # The detectron2 pickle has no anchors: the configured ones are used.
    del state[ANCHORS]
    anchors = map_checkpoint(state, DetectorConfig())["rpn.cell_anchors"]
    assert torch.equal(anchors, cell_anchors((64.0, 128.0, 256.0, 512.0), (0.5, 1.0, 2.0)))
    assert anchors[4].tolist() == [-64.0, -64.0, 64.0, 64.0]  # size 128, ratio 1


def test_missing_and_unexpected_keys_are_listed(full_shapes):
    state = meta_checkpoint(full_shapes)
    del state["roi_heads.box_predictor.fc_attr.weight"]
    del state["backbone.res3.1.conv2.weight"]
    state["roi_heads.box_predictor.attr_linear1.weight"] = torch.empty(512, 2304, device="meta")
    with pytest.raises(WeightsError) as err:
        map_checkpoint(state, DetectorConfig())
    message = str(err.value)
    assert "Missing keys (2)" in message and "Unexpected keys (1)" in message
    for key in ("roi_heads.box_predictor.fc_attr.weight", "backbone.res3.1.conv2.weight",
                "roi_heads.box_predictor.attr_linear1.weight"):
        assert key in message


def test_wrong_shapes_and_anchors_are_listed(full_shapes):
    state = meta_checkpoint(full_shapes)
    state["roi_heads.box_predictor.cls_score.weight"] = torch.empty(81, 2048, device="meta")
    state[ANCHORS] = torch.empty(15, 4, device="meta")
    state["proposal_generator.rpn_head.objectness_logits.weight"] = torch.empty(
        15, 512, 1, 1, device="meta")
    with pytest.raises(WeightsError) as err:
        map_checkpoint(state, DetectorConfig())
    message = str(err.value)
    assert "roi_heads.box_predictor.cls_score.weight: checkpoint (81, 2048), model (1601, 2048)" \
        in message
    assert f"{ANCHORS}: checkpoint (15, 4), model (12, 4)" in message
    assert "predicts 15 anchors per location, the configuration 12" in message


def test_absent_norm_statistics_default_to_identity(full_shapes):
    state = {k: v for k, v in meta_checkpoint(full_shapes).items()
             if not k.endswith(("running_mean", "running_var"))}
    mapped = map_checkpoint(state, DetectorConfig())
    assert torch.equal(mapped["backbone.stem.bn.running_mean"], torch.zeros(64))
    assert torch.equal(mapped["backbone.stem.bn.running_var"], torch.ones(64))


def _outputs(model, image: torch.Tensor):
    return model(image[None], [(image.shape[1], image.shape[2])])[0]


@pytest.mark.parametrize("layout", ["detectron2_pickle", "huggingface_bin"])
def test_tiny_checkpoint_round_trip(tmp_path: Path, layout: str):
    config = DetectorConfig.tiny()
    source = build_detector(config, seed=3)
    published = to_published_state_dict(source)
    if layout == "detectron2_pickle":
        del published[ANCHORS]
        path = tmp_path / "model_final.pkl"
        with open(path, "wb") as f:
            pickle.dump({"model": {k: v.numpy() for k, v in published.items()},
                         "__author__": "test"}, f)
    else:
        path = tmp_path / "pytorch_model.bin"
        torch.save(published, path)
    loaded = build_detector(config, weights=path)
    other = build_detector(config, seed=4)
    for name, tensor in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    image = torch.randn(3, 64, 80, generator=torch.Generator().manual_seed(0)) * 50
    a, b = _outputs(source, image), _outputs(loaded, image)
    assert torch.equal(a.features, b.features) and torch.equal(a.probs, b.probs)
    assert not torch.equal(_outputs(other, image).features, a.features)


def test_stored_anchors_are_the_models_anchors(tmp_path: Path):
    config = DetectorConfig.tiny()
    published = to_published_state_dict(build_detector(config))
    published[ANCHORS] = published[ANCHORS] + 0.5  # e.g. anchors centred the caffe way
    torch.save(published, tmp_path / "pytorch_model.bin")
    loaded = build_detector(config, weights=tmp_path / "pytorch_model.bin")
    assert torch.equal(loaded.rpn.cell_anchors, published[ANCHORS])
    assert loaded.rpn.grid_anchors(1, 2)[len(published[ANCHORS])].tolist() == (
        published[ANCHORS][0] + torch.tensor([16.0, 0.0, 16.0, 0.0])).tolist()


def test_loading_errors_name_the_file(tmp_path: Path):
    config = DetectorConfig.tiny()
    with pytest.raises(WeightsError, match="not found"):
        build_detector(config, weights=tmp_path / "absent.pkl")
    caffe2 = tmp_path / "caffe2.pkl"
    caffe2.write_bytes(pickle.dumps({"blobs": {"conv1_w": torch.zeros(1).numpy()}}))
    with pytest.raises(WeightsError, match="Caffe2 blob names"):
        build_detector(config, weights=caffe2)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="garbage.bin"):
        build_detector(config, weights=garbage)
    wrong_model = tmp_path / "twenty_classes.bin"
    torch.save(to_published_state_dict(build_detector(config)), wrong_model)
    with pytest.raises(WeightsError, match="Shape mismatches"):
        build_detector(replace(config, num_classes=30), weights=wrong_model)


def test_random_weights_are_seeded():
    config = DetectorConfig.tiny()
    a, b, c = (build_detector(config, seed=s) for s in (0, 0, 1))
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name
    assert not torch.equal(a.roi_head.cls_score.weight, c.roi_head.cls_score.weight)
