"""Layers and blocks: shapes, what they say about resolution, and their refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from geovision.errors import ConfigError
from geovision.models.blocks import (
    BasicBlock,
    Bottleneck,
    DenseBlock,
    DenseLayer,
    FusedMBConv,
    MBConv,
    Transition,
    UpBlock,
    VGGBlock,
)
from geovision.models.layers import ConvNormAct, DropPath, SqueezeExcite, get_act, get_norm

torch.set_num_threads(1)
X = torch.randn(2, 8, 16, 16)


def test_conv_norm_act_has_named_children_and_resolves_layers_by_name_or_class():
    layer = ConvNormAct(8, 16, 3, stride=2, norm="group", act=nn.GELU)
    assert [n for n, _ in layer.named_children()] == ["conv", "norm", "act"]
    assert isinstance(layer.norm, nn.GroupNorm) and isinstance(layer.act, nn.GELU)
    assert layer.conv.bias is None and layer(X).shape == (2, 16, 8, 8) and layer.resample == -1
    plain = ConvNormAct(8, 8, norm=None, act=None)
    assert plain.conv.bias is not None and isinstance(plain.act, nn.Identity)
    assert get_act("SiLU")() is not get_act("silu")()  # a fresh module per call site
    with pytest.raises(ConfigError, match="Unknown activation 'relu7'.*relu6"):
        get_act("relu7")
    with pytest.raises(ConfigError, match="Unknown norm 'layer'"):
        get_norm("layer")


@pytest.mark.parametrize("block, resample, shape", [
    (VGGBlock(8, 16, 2, stride=2), -1, (2, 16, 8, 8)),
    (BasicBlock(8, 8), 0, (2, 8, 16, 16)),
    (BasicBlock(8, 16, stride=2), -1, (2, 16, 8, 8)),
    (Bottleneck(8, 32, stride=2, dilation=1), -1, (2, 32, 8, 8)),
    (Bottleneck(8, 32, dilation=2), 0, (2, 32, 16, 16)),
    (DenseLayer(8, growth_rate=4), 0, (2, 4, 16, 16)),
    (DenseBlock(8, 3, growth_rate=4), 0, (2, 20, 16, 16)),
    (Transition(8, 4), -1, (2, 4, 8, 8)),
    (MBConv(8, 8, expand_ratio=4, kernel_size=5), 0, (2, 8, 16, 16)),
    (MBConv(8, 16, stride=2, expand_ratio=1), -1, (2, 16, 8, 8)),
    (FusedMBConv(8, 8, expand_ratio=4, se_ratio=0.25), 0, (2, 8, 16, 16)),
    (FusedMBConv(8, 16, stride=2, expand_ratio=1), -1, (2, 16, 8, 8)),
])
def test_blocks_shapes_and_resample(block, resample, shape):
    assert block.resample == resample
    out = block(X)
    assert out.shape == shape
    out.square().mean().backward()


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "transposed"])
def test_up_block_doubles_and_concatenates_the_skip(mode):
    block = UpBlock(8, 4, 6, mode=mode)
    assert block.resample == 1
    assert block(X, torch.randn(2, 4, 32, 32)).shape == (2, 6, 32, 32)
    assert UpBlock(8, 0, 6, mode=mode)(X).shape == (2, 6, 32, 32)
    assert block(X, torch.randn(2, 4, 31, 33)).shape == (2, 6, 31, 33)  # follows the skip
    assert hasattr(block, "up") == (mode == "transposed")


def test_blocks_refuse_what_they_cannot_do():
    with pytest.raises(ConfigError, match="VGGBlock has no residual"):
        VGGBlock(8, 8, drop_path=0.1)
    with pytest.raises(ConfigError, match="Transition"):
        DenseLayer(8, stride=2)
    with pytest.raises(ConfigError, match="no residual"):
        MBConv(8, 16, stride=2, drop_path=0.1)
    with pytest.raises(ConfigError, match="Unknown upsampling"):
        UpBlock(8, 0, 8, mode="pixelshuffle")
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        DropPath(1.0)


def test_a_given_downsample_is_the_shortcut():
    pool = nn.Sequential(nn.AvgPool2d(2), ConvNormAct(8, 16, 1, act=None))
    block = BasicBlock(8, 16, stride=2, downsample=pool)
    assert block.downsample is pool and block(X).shape == (2, 16, 8, 8)
    residual = MBConv(8, 16, stride=2, downsample=pool, drop_path=0.2)
    assert residual.has_residual and residual(X).shape == (2, 16, 8, 8)


def test_drop_path_drops_whole_samples_and_keeps_the_expectation():
    layer = DropPath(0.5)
    ones = torch.ones(4000, 3, 2, 2)
    out = layer.train()(ones)
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}
    assert (per_sample.min(1).values == per_sample.max(1).values).all()  # all or nothing
    assert abs(float(out.mean()) - 1.0) < 0.05
    assert torch.equal(layer.eval()(ones), ones)


def test_squeeze_excite_gates_each_channel():
    se = SqueezeExcite(8, reduced=2)
    gate = se(X) / X
    assert torch.allclose(gate, gate[:, :, :1, :1].expand_as(gate), atol=1e-5)
    assert ((gate > 0) & (gate < 1)).all()
