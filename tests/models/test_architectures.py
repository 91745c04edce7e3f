"""Every registered model builds for any band count, trains (forward + backward), and follows
the naming scheme; encoders' feature_info is what forward_features returns; every module runs
once per forward, in registration order; captum's DeepLift runs on each architecture."""

from __future__ import annotations

import re

import pytest
import torch
import torchvision
from torch import nn

from geovision.errors import ConfigError, DataError, UnknownNameError
from geovision.models import create_model, list_models, model_kwargs
from geovision.models.base import Backbone
from geovision.models.registry import model_entry

torch.set_num_threads(1)

ARCHITECTURES = ["vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "resnet18", "resnet34", "resnet50",
                 "resnet101", "densenet121", "efficientnet_b0", "unet"]
SMALL = ["small_cnn", "small_unet", "small_gan", "small_vae", "small_moco"]
TORCHVISION_PARAMETERS = {  # torchvision's meta["num_params"] of the same configurations
    "vgg11": 132_863_336, "vgg11_bn": 132_868_840, "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992, "resnet18": 11_689_512, "resnet34": 21_797_672,
    "resnet50": 25_557_032, "resnet101": 44_549_160, "densenet121": 7_978_856,
    "efficientnet_b0": 5_288_548}
UNET_ENCODERS = ["resnet18", "vgg11_bn", "densenet121", "efficientnet_b0"]
SCHEME = re.compile(r"^(stem|head|stages(\.\d+(\.pool|\.blocks(\.\d+)?)?)?"
                    r"|decoder(\.blocks(\.\d+)?)?)(\.|$)")
# The architectures at their real depth and structure (blocks, names, strides) but narrow, so
# that the whole file runs in seconds on one thread; parameter counts are checked at the real
# width (on the meta device), and bench/models.py runs ResNet-50 and the U-Net at full size.
NARROW_VGG = {"widths": (8, 16, 16, 32, 32), "hidden": 32}
NARROW_RESNET = {"widths": (8, 16, 16, 32), "stem_width": 8}
NARROW = {"vgg11": NARROW_VGG, "vgg11_bn": NARROW_VGG, "vgg16": NARROW_VGG,
          "vgg16_bn": NARROW_VGG, "resnet18": NARROW_RESNET, "resnet34": NARROW_RESNET,
          "resnet50": NARROW_RESNET, "resnet101": NARROW_RESNET,
          "densenet121": {"growth_rate": 4, "stem_width": 8, "bn_size": 2},
          "efficientnet_b0": {"width_mult": 0.25, "head_width": 64}}
DECODER = (16, 16, 8, 8, 8)


def narrow(name: str, **kwargs) -> dict:
    if name == "unet":
        encoder = kwargs.pop("encoder", "resnet18")
        depth = 4 if encoder.startswith("vgg") else 5
        return {"encoder": encoder, "encoder_kwargs": NARROW[encoder],
                "decoder_channels": DECODER[-depth:], **kwargs}
    return {**NARROW.get(name, {}), **kwargs}


def build(name: str, bands: int, num_classes: int = 3, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    extra = {"image_size": 32} if name in ("small_gan", "small_vae") else {}
    return create_model(name, in_channels=bands, num_classes=num_classes,
                        **narrow(name, **kwargs), **extra)


def loss_of(name: str, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A scalar through every trainable path of the model, for its role."""
    if name == "small_gan":
        z = torch.randn(x.shape[0], model.latent_dim)
        fake = model(z)
        assert fake.shape == x.shape
        return fake.square().mean() + model.discriminator(x).mean()
    if name == "small_vae":
        return model.loss(x)[0]
    return model(x).square().mean()


def test_list_models_names_every_architecture():
    assert set(ARCHITECTURES + SMALL) <= set(list_models())
    assert "unet" in list_models("segmentation") and "resnet50" not in list_models("segmentation")
    assert set(list_models("classification")) >= set(TORCHVISION_PARAMETERS)


@pytest.mark.parametrize("name", ARCHITECTURES + SMALL)
def test_forward_backward_for_any_band_count(name):
    for bands in (1, 3, 4, 13):
        model = build(name, bands).train()
        x = torch.randn(2, bands, 32, 32)
        if name in ("unet", "small_unet"):
            assert model(x).shape == (2, 3, 32, 32)
        elif name in TORCHVISION_PARAMETERS or name == "small_cnn":
            assert model(x).shape == (2, 3)
        loss = loss_of(name, model, x)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name


@pytest.mark.parametrize("name", list(TORCHVISION_PARAMETERS))
def test_parameter_counts_equal_torchvision(name):
    with torch.device("meta"):
        ours = create_model(name, in_channels=3, num_classes=1000)
        theirs = getattr(torchvision.models, name)()
    count = sum(p.numel() for p in ours.parameters())
    assert count == sum(p.numel() for p in theirs.parameters()) == TORCHVISION_PARAMETERS[name]


@pytest.mark.parametrize("encoder", UNET_ENCODERS)
def test_unet_takes_any_encoder_and_keeps_its_names(encoder):
    model = build("unet", 4, encoder=encoder)
    x = torch.randn(2, 4, 64, 64)
    assert model(x).shape == (2, 3, 64, 64)
    encoder_alone = build(encoder, 4)
    encoder_names = {n for n in encoder_alone.state_dict() if not n.startswith("head.")}
    unet_names = set(model.state_dict())
    assert encoder_names <= unet_names
    assert {n.split(".")[0] for n in unet_names - encoder_names} == {"decoder", "head"}
    odd = model.output_stride + 8
    with pytest.raises(DataError, match="divisible by"):
        model(torch.randn(1, 4, odd, odd))


def backbones() -> list[tuple[str, nn.Module]]:
    models = [(n, build(n, 4)) for n in ARCHITECTURES]
    models += [(f"unet[{e}]", build("unet", 4, encoder=e)) for e in UNET_ENCODERS[1:]]
    return models


@pytest.fixture(scope="module")
def built():
    """Models in eval mode: no test changes their batch-norm statistics for the next."""
    return [(name, model.eval()) for name, model in backbones()]


def test_feature_info_is_what_forward_features_returns(built):
    x = torch.randn(2, 4, 64, 64)
    for name, model in built:
        assert isinstance(model, Backbone)
        with torch.no_grad():
            features = model.forward_features(x)
        assert len(features) == len(model.feature_info), name
        modules = dict(model.named_modules())
        for info, feature in zip(model.feature_info, features, strict=True):
            assert feature.shape[1] == info.channels, (name, info)
            assert 64 // feature.shape[-1] == info.reduction, (name, info)
            assert info.module in modules
        assert [f.reduction for f in model.feature_info] == sorted(
            {f.reduction for f in model.feature_info}), name


def test_names_follow_the_scheme(built):
    for name, model in built:
        bad = [n for n, _ in model.named_modules() if n and not SCHEME.match(n)]
        assert not bad, (name, bad[:5])
        stage_blocks = {n for n, _ in model.named_modules()
                        if re.fullmatch(r"stages\.\d+\.blocks\.\d+", n)}
        assert stage_blocks, name


def test_every_module_runs_once_per_forward_in_registration_order(built):
    x = torch.randn(2, 4, 64, 64)
    for name, model in built:
        model.eval()
        leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
        calls: list[str] = []
        handles = [m.register_forward_hook(lambda *_, n=n, calls=calls: calls.append(n))
                   for n, m in leaves]
        try:
            with torch.no_grad():
                model(x)
        finally:
            for handle in handles:
                handle.remove()
        repeated = {n for n in calls if calls.count(n) > 1}
        assert not repeated, (name, sorted(repeated)[:5])
        order = [n for n, _ in leaves if n in set(calls)]
        assert calls == order, name
        assert len(calls) >= 0.9 * len(leaves), name  # nearly every leaf runs


def test_no_inplace_activation(built):
    for name, model in built:
        inplace = [n for n, m in model.named_modules() if getattr(m, "inplace", False)]
        assert not inplace, (name, inplace[:5])


class SumOverPixels(nn.Module):
    """Segmentation logits summed over the image: one score per class, for attribution."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).sum((2, 3))


def test_deeplift_runs_on_each_architecture(built):
    from captum.attr import DeepLift

    x = torch.randn(2, 4, 64, 64)
    for name, model in built:
        model.eval()
        wrapped = SumOverPixels(model) if name.startswith("unet") else model
        attributions, delta = DeepLift(wrapped).attribute(
            x, baselines=torch.zeros_like(x), target=1, return_convergence_delta=True)
        assert attributions.shape == x.shape and torch.isfinite(attributions).all(), name
        if "efficientnet" in name:
            continue  # SiLU and the squeeze-excite product have no DeepLift rule in captum
        with torch.no_grad():
            gap = (wrapped(x) - wrapped(torch.zeros_like(x)))[:, 1]
        # Completeness: the attributions add up to the change of the explained output.
        assert torch.allclose(attributions.sum((1, 2, 3)), gap, rtol=1e-3,
                              atol=1e-3 * float(gap.abs().max()) + 1e-5), name
        assert delta.abs().max() <= 1e-3 * float(gap.abs().max()) + 1e-5, name


def test_registry_refuses_unknown_names_and_arguments():
    with pytest.raises(UnknownNameError, match="Unknown model 'resnet9000'.*resnet50"):
        create_model("resnet9000", in_channels=3, num_classes=2)
    with pytest.raises(ConfigError, match=r"no arguments \['depth'\]; valid: .*drop_path_rate"):
        create_model("resnet50", in_channels=3, num_classes=2, depth=3)
    with pytest.raises(ConfigError, match="no arguments"):  # fixed by the constructor
        create_model("resnet18", in_channels=3, num_classes=2, layers=(1, 1, 1, 1))
    assert "encoder" in model_kwargs("unet") and "in_channels" not in model_kwargs("unet")
    assert model_entry("unet").roles == ("segmentation",)


def test_options_reach_the_architecture():
    model = create_model("resnet18", in_channels=3, num_classes=2, act="silu", norm="group",
                         drop_path_rate=0.1)
    assert isinstance(model.stages[0].blocks[0].act, nn.SiLU)
    assert isinstance(model.stem.norm, nn.GroupNorm)
    assert model.stages[3].blocks[1].drop_path.p == pytest.approx(0.1)
    dilated = create_model("resnet50", in_channels=3, num_classes=0, output_stride=8)
    assert dilated(torch.randn(1, 3, 64, 64)).shape == (1, 2048, 8, 8)
    assert [f.reduction for f in dilated.feature_info] == [2, 4, 8]
