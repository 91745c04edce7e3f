"""Ports are exact and made once; ported weights load into models of any band count and class
count; what does not fit is named; init schemes are deterministic and spare loaded weights."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from geovision.errors import MissingWeightsError, WeightsError
from geovision.layout import Layout
from geovision.models import create_model
from geovision.models.init import init_model
from geovision.models.port import (
    build_source,
    get_port,
    list_ports,
    map_state_dict,
    port_folder,
    port_weights,
    published,
    verify,
)
from geovision.models.weights import (
    WeightsSpec,
    adapt_input_conv,
    load_weights,
    loaded_parameters,
)
from tests.checkpoints import torchvision_checkpoint

torch.set_num_threads(1)

# One port per source family is written in full, one more per family mapped and compared
# without writing; every port's key map is checked against the architecture below. (The VGG
# ports, 133-138 M parameters, are checked there by keys and shapes; port_weights itself
# refuses any port whose outputs differ by more than 1e-4.)
WRITTEN = ["resnet18.torchvision", "densenet121.torchvision", "efficientnet_b0.timm"]
MAPPED = ["resnet50.timm", "densenet121.timm", "efficientnet_b0.torchvision"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def resnet18_weights(home) -> WeightsSpec:
    return port_weights("resnet18.torchvision", home, random_source=True)


@pytest.mark.parametrize("name", WRITTEN)
def test_port_is_exact_strict_and_written_with_a_manifest(name, home):
    spec = port_weights(name, home, random_source=True)
    folder = Layout(home).weights(name)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sha256"] == spec.sha256 and manifest["source_weights"] == "random, seed 0"
    assert spec.verified_max_abs_diff is not None and spec.verified_max_abs_diff <= 1e-5
    # Loaded back strictly into a fresh model, it reproduces the source model's outputs.
    port = get_port(name)
    model = create_model(port.model, in_channels=3, num_classes=1000, weights=folder)
    source = build_source(port)
    assert verify(model, source, seed=1) <= 1e-5
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in source.parameters())


@pytest.mark.parametrize("name", MAPPED)
def test_ports_map_exactly(name):
    port = get_port(name)
    source = build_source(port)
    model = create_model(port.model, in_channels=3, num_classes=1000)
    model.load_state_dict(map_state_dict(port, source.state_dict()), strict=True)
    assert verify(model, source, size=32) <= 1e-5


def test_every_port_maps_every_key_onto_the_architecture():
    import timm
    import torchvision

    for name in list_ports():
        port = get_port(name)
        with torch.device("meta"):  # shapes only, no memory
            source = (getattr(torchvision.models, port.source_model)()
                      if port.source == "torchvision"
                      else timm.create_model(port.source_model, pretrained=False))
            ours = create_model(port.model, in_channels=3, num_classes=1000)
        mapped = map_state_dict(port, source.state_dict())
        assert set(mapped) == set(ours.state_dict()), name
        assert all(mapped[k].shape == v.shape for k, v in ours.state_dict().items()), name


def test_a_port_is_made_once(home, resnet18_weights):
    path = resnet18_weights.path
    before = path.stat().st_mtime_ns
    again = port_weights("resnet18.torchvision", home, random_source=True)
    assert again.sha256 == resnet18_weights.sha256 and path.stat().st_mtime_ns == before
    forced = port_weights("resnet18.torchvision", home, random_source=True, force=True)
    assert forced.sha256 == resnet18_weights.sha256  # same seeded source, same bytes
    assert path.stat().st_mtime_ns != before


def test_every_port_names_published_weights():
    """Each port pins one published checkpoint: a torchvision weights enum member with a
    hashed file name, or a timm tag whose weights are on the Hugging Face hub."""
    for name in list_ports():
        source = published(get_port(name))
        assert source.url.startswith("https://"), name
        if get_port(name).source == "torchvision":
            assert source.cache_path.name == source.url.rsplit("/", 1)[1], name
            assert len(source.sha256) >= 8, name
        else:
            assert source.hf_repo.startswith("timm/") and source.url.endswith(
                "/model.safetensors"), name


def test_a_port_reads_the_checkpoint_torch_hub_caches(tmp_path, torch_home):
    """Where torchvision's own loader finds the published file after a download, the port
    finds it, and ports exactly those weights; another file there is ported again."""
    import torchvision

    file = torchvision_checkpoint(torch_home, "ResNet18_Weights.IMAGENET1K_V1")
    assert file == torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    spec = port_weights("resnet18.torchvision", tmp_path / "home")
    sha256 = hashlib.sha256(file.read_bytes()).hexdigest()
    assert spec.source_weights == ("torchvision ResNet18_Weights.IMAGENET1K_V1 "
                                   f"resnet18-f37072fd.pth sha256 {sha256}")
    assert spec.extra["published_url"] == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    assert spec.extra["source_sha256"] == sha256 and spec.extra["published_sha256"] == "f37072fd"
    assert spec.extra["sha256_matches_published"] is False  # seeded, not the published bytes
    # torchvision's builder reads the same cached file (it would download only if missing).
    source = torchvision.models.resnet18(weights="IMAGENET1K_V1").eval()
    ours = create_model("resnet18", in_channels=3, num_classes=1000, weights=spec.path)
    assert verify(ours, source, seed=3) <= 1e-5
    assert json.loads((spec.path.parent / "manifest.json").read_text())["source_weights"] == \
        spec.source_weights

    torchvision_checkpoint(torch_home, "ResNet18_Weights.IMAGENET1K_V1", seed=1)
    again = port_weights("resnet18.torchvision", tmp_path / "home")
    assert again.extra["source_sha256"] != sha256 and again.sha256 != spec.sha256


def test_torchvision_densenet_checkpoints_with_legacy_key_names(tmp_path, torch_home):
    """torchvision's published DenseNet files name `norm.1`, `conv.2`: ported as its builder
    reads them."""
    import torchvision

    file = torchvision_checkpoint(torch_home, "DenseNet121_Weights.IMAGENET1K_V1")
    state = torch.load(file, weights_only=True)
    legacy = {k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v
              for k, v in state.items() if not k.endswith(".norm1.num_batches_tracked")}
    assert sum(".norm.1." in k for k in legacy) == 58 * 4  # 58 layers: no batch counts then
    torch.save(legacy, file)
    spec = port_weights("densenet121.torchvision", tmp_path / "home")
    source = torchvision.models.densenet121(weights="IMAGENET1K_V1").eval()
    ours = create_model("densenet121", in_channels=3, num_classes=1000, weights=spec.path)
    assert verify(ours, source, seed=3, size=32) <= 1e-5


def test_a_missing_checkpoint_names_its_url_cache_path_and_retry(tmp_path, torch_home):
    home = tmp_path / "home"
    with pytest.raises(MissingWeightsError) as missing:
        port_weights("resnet18.torchvision", home, download=False)
    message = str(missing.value)
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    assert str(torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert f"port_weights('resnet18.torchvision', '{home}')" in message
    assert "--select ported_weights --partition resnet18.torchvision" in message
    assert not port_folder("resnet18.torchvision", home).exists()
    assert not list(torch_home.rglob("*.pth"))


def test_a_timm_checkpoint_missing_from_the_hub_cache_offline(tmp_path):
    """Offline (HF_HUB_OFFLINE=1) with an empty hub cache: the repo, the cache and the command
    that fills it are named; nothing is written."""
    env = os.environ | {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    code = ("import sys; from geovision.models.port import port_weights\n"
            "try: port_weights('resnet50.timm', sys.argv[1])\n"
            "except Exception as e: print(type(e).__name__, e); sys.exit(3)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "home")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("MissingWeightsError ")
    assert "hf download timm/resnet50.a1_in1k model.safetensors" in done.stdout
    assert f"models--timm--resnet50.a1_in1k into {tmp_path / 'hub'}" in done.stdout
    assert "https://huggingface.co/timm/resnet50.a1_in1k/resolve/main/model.safetensors" in \
        done.stdout
    assert not list((tmp_path / "home").rglob("*"))  # no port folder, not even a partial one


def rgb_model(spec: WeightsSpec) -> nn.Module:
    return create_model("resnet18", in_channels=3, num_classes=1000, weights=spec).eval()


@pytest.mark.parametrize("bands", [6, 4, 7])
def test_more_bands_from_rgb_weights_give_the_rgb_output(resnet18_weights, bands):
    model = create_model("resnet18", in_channels=bands, num_classes=1000,
                         weights=resnet18_weights).eval()
    x = torch.randn(2, 3, 64, 64)
    repeated = x[:, [i % 3 for i in range(bands)]]  # band i repeats RGB band i % 3
    with torch.no_grad():
        expected = rgb_model(resnet18_weights)(x)
        got = model(repeated)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    if bands == 6:  # timm's 3 / C scaling where C is a multiple of 3
        w = model.stem.conv.weight
        source = rgb_model(resnet18_weights).stem.conv.weight
        assert torch.allclose(w[:, 3:], source * 3 / bands) and torch.allclose(w[:, :3],
                                                                                 w[:, 3:])


def test_one_band_sums_the_rgb_filters(resnet18_weights):
    model = create_model("resnet18", in_channels=1, num_classes=1000,
                         weights=resnet18_weights).eval()
    grey = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(grey), rgb_model(resnet18_weights)(grey.expand(-1, 3, -1, -1)),
                              atol=1e-5, rtol=1e-5)


def test_bands_matching_by_name_keep_their_filters(resnet18_weights):
    model = create_model("resnet18", in_channels=4, num_classes=1000)
    report = load_weights(model, resnet18_weights, bands=("blue", "green", "red", "nir"))
    assert report.adapted == ("stem.conv.weight",)
    source = rgb_model(resnet18_weights).stem.conv.weight
    w = model.stem.conv.weight
    assert torch.equal(w[:, 0], source[:, 2]) and torch.equal(w[:, 2], source[:, 0])
    assert torch.equal(w[:, 3], torch.zeros_like(w[:, 3]))  # the new band starts unused
    x = torch.randn(2, 3, 64, 64)
    bgrn = torch.cat([x.flip(1), torch.randn(2, 1, 64, 64)], 1)
    with torch.no_grad():
        assert torch.allclose(model.eval()(bgrn), rgb_model(resnet18_weights)(x), atol=1e-5)


def test_adapt_input_conv_counts():
    w = torch.randn(8, 3, 3, 3)
    four = adapt_input_conv(w, 4)
    assert torch.equal(four[:, 0], w[:, 0] / 2) and torch.equal(four[:, 1], w[:, 1])
    assert torch.equal(four[:, 3], w[:, 0] / 2)
    two = adapt_input_conv(w, 2)
    assert torch.allclose(two[:, 0], w[:, 0] + w[:, 2]) and torch.equal(two[:, 1], w[:, 1])
    with pytest.raises(WeightsError, match="band names"):
        adapt_input_conv(w, 4, ("red", "green", "blue"), ("red",))


def test_another_class_count_drops_the_classifier(resnet18_weights):
    torch.manual_seed(5)
    model = create_model("resnet18", in_channels=3, num_classes=10)
    head_before = model.head.fc.weight.clone()
    report = load_weights(model, resnet18_weights)
    assert report.dropped == ("head.fc.bias", "head.fc.weight")
    assert torch.equal(model.head.fc.weight, head_before)
    assert "stem.conv.weight" in report.loaded and "head.fc.weight" not in report.loaded


def test_what_does_not_fit_is_named(resnet18_weights, tmp_path):
    missing = r"missing from the weights: stages\.0\.blocks\.2\.conv1"
    with pytest.raises(WeightsError, match=missing):
        load_weights(create_model("resnet34", in_channels=3, num_classes=1000),
                     resnet18_weights)
    model = create_model("resnet34", in_channels=3, num_classes=1000)
    report = load_weights(model, resnet18_weights, strict=False)
    assert "stages.0.blocks.1.conv1.conv.weight" in report.loaded
    with pytest.raises(WeightsError, match=r"not in the model: stages\.3\.blocks\.1\.extra"):
        load_weights(create_model("resnet18", in_channels=3, num_classes=1000),
                     _extra_key(resnet18_weights, tmp_path))
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "weights.safetensors").write_bytes(resnet18_weights.path.read_bytes()[:-9]
                                                  + b"123456789")
    (corrupt / "manifest.json").write_text(resnet18_weights.to_json())
    with pytest.raises(WeightsError, match="sha256"):
        load_weights(create_model("resnet18", in_channels=3, num_classes=1000), corrupt)
    with pytest.raises(WeightsError, match="No weights manifest"):
        load_weights(create_model("resnet18", in_channels=3, num_classes=1000),
                     tmp_path / "nothing.json")


def _extra_key(spec: WeightsSpec, tmp_path) -> str:
    from safetensors.torch import load_file, save_file

    state = load_file(str(spec.path))
    state["stages.3.blocks.1.extra.weight"] = torch.zeros(1)
    path = tmp_path / "extra.safetensors"
    save_file(state, str(path))
    return str(path)


def test_a_lightning_checkpoint_loads_through_its_prefix(resnet18_weights, tmp_path):
    source = rgb_model(resnet18_weights)
    path = tmp_path / "run.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()},
                "epoch": 3}, path)
    model = create_model("resnet18", in_channels=3, num_classes=1000, weights=path).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


def test_unet_encoder_from_ported_weights(resnet18_weights):
    unet = create_model("unet", in_channels=4, num_classes=2, encoder="resnet18",
                        encoder_weights=resnet18_weights)
    source = rgb_model(resnet18_weights)
    assert torch.equal(unet.stages[2].blocks[1].conv2.conv.weight,
                       source.stages[2].blocks[1].conv2.conv.weight)
    assert "stem.conv.weight" in loaded_parameters(unet)
    assert not any(n.startswith(("decoder.", "head.")) for n in loaded_parameters(unet))


def conv_weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight.detach().clone() for m in model.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("scheme", ["kaiming", "trunc_normal", "xavier", "orthogonal"])
def test_init_is_deterministic_for_a_seed(scheme):
    def made(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed + 100)  # the global generator must not matter
        return create_model("resnet18", in_channels=3, num_classes=5, init=scheme, seed=seed,
                            widths=(8, 16, 16, 32), stem_width=8).state_dict()

    a, b, c = made(1), made(1), made(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["stem.conv.weight"], c["stem.conv.weight"])


def test_kaiming_has_the_formula_spread():
    model = create_model("resnet50", in_channels=3, num_classes=5, init="kaiming", seed=0)
    conv = model.stages[2].blocks[0].conv2.conv.weight  # 256 x 256 x 3 x 3
    expected = math.sqrt(2.0 / (conv.shape[0] * conv.shape[2] * conv.shape[3]))  # fan_out
    assert abs(float(conv.detach().std()) / expected - 1) < 0.1


def test_zero_init_last_makes_residual_blocks_their_shortcut():
    model = create_model("resnet18", in_channels=3, num_classes=5, zero_init_last=True,
                         seed=0).eval()
    block = model.stages[0].blocks[1]  # identity shortcut
    x = torch.randn(2, 64, 16, 16)
    with torch.no_grad():
        assert torch.equal(block(x), torch.relu(x))
    assert float(model.stages[1].blocks[0].conv2.norm.weight.abs().sum()) == 0.0


def test_init_never_overwrites_loaded_weights(resnet18_weights):
    model = create_model("resnet18", in_channels=3, num_classes=10, weights=resnet18_weights)
    loaded = {k: v.clone() for k, v in model.state_dict().items()}
    head = model.head.fc.weight.clone()
    init_model(model, "orthogonal", zero_init_last=True, seed=3)
    state = model.state_dict()
    assert all(torch.equal(state[k], loaded[k]) for k in loaded_parameters(model))
    assert not torch.equal(model.head.fc.weight, head)  # the dropped classifier is re-drawn
