"""The torch methods against captum, batch invariance, completeness, and what prepare refuses."""

from __future__ import annotations

import pytest
import torch
from captum.attr import GuidedBackprop, IntegratedGradients, KernelShap, LayerGradCam

from geovision.analysis.attribution import (
    ModuleReuseError,
    NotApplicableError,
    Target,
    classification_target,
    explain,
    prepare,
    segmentation_target,
)
from geovision.analysis.attribution.methods.surrogate import superpixels
from geovision.errors import ConfigError, UnknownNameError
from tests.analysis.attribution_models import (
    SharedReLU,
    StagedNet,
    TinyCNN,
    TinySegmenter,
    seeded,
)


def rel_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).norm() / theirs.norm().clamp_min(1e-12))


@pytest.fixture()
def classifier():
    return seeded(TinyCNN)


@pytest.fixture()
def images():
    return torch.randn(3, 4, 16, 16, generator=torch.Generator().manual_seed(1))


def seg_forward(model):
    return lambda x, mask: (model(x) * mask).sum(dim=(2, 3))


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
def test_integrated_gradients_matches_captum(classifier, images, method):
    classes = torch.tensor([0, 2, 1])
    ours = explain(classifier, images, classes, "integrated_gradients", n_steps=16,
                   rule=method)
    theirs, delta = IntegratedGradients(prepare(classifier, images)).attribute(
        images, target=classes, n_steps=16, method=method, return_convergence_delta=True)
    assert rel_error(ours.maps, theirs) <= 1e-4
    torch.testing.assert_close(ours.extras["delta"], delta.float(), atol=1e-4, rtol=1e-3)


def test_integrated_gradients_on_segmentation_matches_captum(images):
    model = seeded(TinySegmenter)
    masks = (torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    target = segmentation_target(torch.tensor([1, 0, 2]), masks)
    ours = explain(model, images, target, "integrated_gradients", n_steps=12,
                   internal_batch_size=9)
    prepared = prepare(model, images)
    one_hot = torch.zeros(3, 3, 16, 16)
    one_hot[torch.arange(3), target.classes] = masks
    theirs = IntegratedGradients(seg_forward(prepared)).attribute(
        images, target=target.classes, additional_forward_args=(one_hot,), n_steps=12,
        internal_batch_size=9)
    assert rel_error(ours.maps, theirs) <= 1e-4


def test_guided_backprop_matches_captum(classifier, images):
    classes = torch.tensor([1, 1, 0])
    ours = explain(classifier, images, classes, "guided_backprop")
    theirs = GuidedBackprop(prepare(classifier, images)).attribute(images, target=classes)
    assert rel_error(ours.maps, theirs) <= 1e-4
    plain = torch.autograd.functional.jacobian(
        lambda x: prepare(classifier, images)(x)[:, 1].sum(), images)
    assert rel_error(ours.maps, plain) > 1e-3  # the guided pass differs from the gradient


@pytest.mark.parametrize("layer", ["features.3", "features.5"])
def test_grad_cam_matches_captum(classifier, images, layer):
    classes = torch.tensor([2, 0, 1])
    prepared = prepare(classifier, images)
    ours = explain(classifier, images, classes, "grad_cam", layer=layer, relu=False,
                   upsample=False)
    theirs = LayerGradCam(prepared, prepared.get_submodule(layer)).attribute(
        images, target=classes)
    assert rel_error(ours.maps, theirs) <= 1e-4
    relu = explain(classifier, images, classes, "grad_cam", layer=layer)
    assert relu.maps.shape == (3, 1, 16, 16) and relu.maps.min() >= 0


def test_grad_cam_segmentation_matches_captum(images):
    model = seeded(TinySegmenter)
    prepared = prepare(model, images)
    target = Target("segmentation", torch.tensor([0, 1, 2]), torch.ones(3, 16, 16))
    ours = explain(model, images, target, "grad_cam", layer="encoder.2", relu=False)
    one_hot = torch.zeros(3, 3, 16, 16)
    one_hot[torch.arange(3), target.classes] = 1
    theirs = LayerGradCam(seg_forward(prepared), prepared.get_submodule("encoder.2")).attribute(
        images, target=target.classes, additional_forward_args=(one_hot,))
    assert rel_error(ours.maps, theirs) <= 1e-4


def test_kernel_shap_matches_captum(classifier, images):
    pytest.importorskip("sklearn", reason="captum's KernelShap fits with scikit-learn")
    classes = torch.tensor([0, 1, 2])
    masks = torch.stack([superpixels(image, 12) for image in images]).unsqueeze(1)
    ours = explain(classifier, images, classes, "kernel_shap", n_samples=60,
                   feature_mask=masks, batch_size=16, seed=5)
    prepared = prepare(classifier, images)
    theirs = []
    for i in range(3):  # every image's patterns come from the same seed
        torch.manual_seed(5)
        theirs.append(KernelShap(prepared).attribute(
            images[i:i + 1], target=int(classes[i]), feature_mask=masks[i:i + 1],
            n_samples=60, perturbations_per_eval=16))
    theirs = torch.cat(theirs)
    assert rel_error(ours.maps.expand_as(theirs), theirs) <= 1e-4


def test_superpixels_are_contiguous_labels_following_the_image():
    image = torch.zeros(4, 16, 16)
    image[:, :, 8:] = 5.0  # two flat halves
    labels = superpixels(image, n_segments=4)
    assert labels.shape == (16, 16)
    assert sorted(labels.unique().tolist()) == list(range(int(labels.max()) + 1))
    assert not (set(labels[:, :8].unique().tolist()) & set(labels[:, 8:].unique().tolist()))


@pytest.mark.parametrize("method,options", [
    ("integrated_gradients", {"n_steps": 8}),
    ("guided_backprop", {}),
    ("grad_cam", {"layer": "features.3"}),
    ("lime", {"n_samples": 40, "n_segments": 8}),
    ("kernel_shap", {"n_samples": 40, "n_segments": 8}),
])
def test_a_map_in_a_batch_equals_the_map_alone(classifier, images, method, options):
    classes = torch.tensor([2, 0, 1])
    batch = explain(classifier, images, classes, method, **options).maps
    alone = explain(classifier, images[:1], classes[:1], method, **options).maps
    torch.testing.assert_close(batch[:1], alone, atol=1e-5, rtol=1e-4)


def test_segmentation_batch_invariance(images):
    model = seeded(TinySegmenter)
    target = classification_target(1, 3)  # classes only: masks from the prediction
    batch = explain(model, images, target.classes, "integrated_gradients", n_steps=8,
                    task="segmentation")
    alone = explain(model, images[2:], target.classes[2:], "integrated_gradients", n_steps=8,
                    task="segmentation")
    torch.testing.assert_close(batch.maps[2:], alone.maps, atol=1e-5, rtol=1e-4)
    assert batch.target.masks is not None and batch.target.masks.shape == (3, 16, 16)


def test_prepare_refuses_a_module_called_twice_and_leaves_the_model_alone(images):
    model = SharedReLU().train()
    with pytest.raises(ModuleReuseError, match="'relu'.*runs 2 times"):
        prepare(model, images)
    ok = seeded(TinyCNN).train()
    prepared = prepare(ok, images)
    assert ok.training and not prepared.training
    assert all(not getattr(m, "inplace", False) for m in prepared.modules())


def test_feature_visualisation_raises_its_objective_for_any_band_count():
    for bands in (1, 7):
        model = seeded(TinyCNN, in_channels=bands)
        model.head[2].weight.data *= 10  # logits that respond to the input
        images = torch.randn(2, bands, 16, 16)
        for options in ({"parameterisation": "fft"},
                        {"parameterisation": "pixel", "decorrelation": None},
                        {"layer": "features.5", "channel": 2}):
            result = explain(model, images, torch.tensor([0, 2]), "feature_visualisation",
                             steps=30, **options)
            history = result.extras["objective"]
            assert result.maps.shape == images.shape and result.maps.abs().max() <= 3.0
            assert (history[-5:].mean(0) > history[:5].mean(0) + 0.005).all(), options


def test_unknown_layer_and_method_are_named(classifier, images):
    with pytest.raises(UnknownNameError, match="no layer 'nope'.*top-level: features, head"):
        explain(classifier, images, 0, "grad_cam", layer="nope")
    with pytest.raises(UnknownNameError, match="method 'shap'"):
        explain(classifier, images, 0, "shap")


def test_grad_cam_takes_any_layer_of_a_staged_model_by_name(images):
    """stem.*, stages.{i}.blocks.{j}.* and whole stages or blocks, as the models library names
    them; a block's in-place residual add after the chosen layer does not break it."""
    model = seeded(StagedNet)
    prepared = prepare(model, images)
    classes = torch.tensor([0, 2, 1])
    spatial = [name for name, module in prepared.named_modules()
               if name and not name.startswith("head")]
    assert {"stem.conv", "stages.1", "stages.1.blocks.0", "stages.1.blocks.1.norm2"} <= \
        set(spatial)
    for layer in spatial:
        ours = explain(prepared, images, classes, "grad_cam", prepared=True, layer=layer,
                       relu=False, upsample=False)
        assert ours.extras["layer"] == layer
        if layer in ("stem.act", "stages.0.blocks.1", "stages.1.blocks.1.conv1", "stages.1"):
            theirs = LayerGradCam(prepared, prepared.get_submodule(layer)).attribute(
                images, target=classes)
            assert rel_error(ours.maps, theirs) <= 1e-4, layer
    default = explain(prepared, images, classes, "grad_cam", prepared=True)
    assert default.extras["layer"] == "stages.1.blocks.1.conv2"  # the last convolution


def test_a_wrong_grad_cam_layer_is_refused_naming_valid_ones(images):
    model = seeded(StagedNet)
    with pytest.raises(UnknownNameError, match=r"no layer 'stages.1.block.1'.*closest: "
                       r"stages.1.blocks.1.*top-level: stem, stages, head"):
        explain(model, images, 0, "grad_cam", layer="stages.1.block.1")
    with pytest.raises(ConfigError, match=r"spatial output.*'head.fc' \(Linear\) returns "
                       r"\(3, 3\).*last convolutions: .*stages.1.blocks.1.conv2"):
        explain(model, images, 0, "grad_cam", layer="head.fc")


def test_grad_cam_on_the_models_library_resnet_by_stage_and_block_names():
    from geovision.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet18", in_channels=4, num_classes=3)
    images = torch.randn(2, 4, 32, 32)
    prepared = prepare(model, images)  # every module runs once: no ModuleReuseError
    classes = torch.tensor([2, 0])
    for layer in ("stages.3", "stages.2.blocks.1", "stages.3.blocks.0.conv1", "stem"):
        ours = explain(prepared, images, classes, "grad_cam", prepared=True, layer=layer,
                       relu=False, upsample=False)
        theirs = LayerGradCam(prepared, prepared.get_submodule(layer)).attribute(
            images, target=classes)
        assert rel_error(ours.maps, theirs) <= 1e-4, layer
    with pytest.raises(UnknownNameError, match=r"closest: stages.3.*top-level: stem, stages, "
                       "head"):
        explain(prepared, images, classes, "grad_cam", prepared=True, layer="stages.4")


def test_guided_backprop_refuses_a_model_without_relus_naming_its_activations(images):
    model = seeded(TinyCNN)
    for i, module in enumerate(model.features):
        if isinstance(module, torch.nn.ReLU):
            model.features[i] = torch.nn.SiLU()
    with pytest.raises(NotApplicableError, match="nn.ReLU.*its activations: SiLU"):
        explain(model, images, 0, "guided_backprop")
