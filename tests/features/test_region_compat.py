"""The loader's batches drive transformers' LXMERT and VisualBERT, and padding is masked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from geovision.features.arrow_io import write_region_dataset
from geovision.features.loader import load_region_features

FEATURE_DIM = 16
HIDDEN = 32


@pytest.fixture()
def batch(tmp_path: Path, make_records) -> dict:
    rows = make_records([5, 2, 0], num_objects=5, feature_dim=FEATURE_DIM, seed=11)
    path = write_region_dataset(rows, tmp_path / "ds", 5, FEATURE_DIM, info={})
    return next(iter(load_region_features(path, batch_size=3)))


def text(batch_size: int, length: int = 7) -> torch.Tensor:
    return torch.randint(1, 99, (batch_size, length), generator=torch.Generator().manual_seed(0))


def perturb_padding(batch: dict) -> dict:
    changed = dict(batch)
    pad = batch["visual_attention_mask"] == 0
    changed["visual_feats"] = batch["visual_feats"].masked_fill(pad[..., None], 3.0)
    changed["visual_pos"] = batch["visual_pos"].masked_fill(pad[..., None], 0.5)
    return changed


def test_lxmert_consumes_the_batches(batch):
    from transformers import LxmertConfig, LxmertModel

    torch.manual_seed(0)
    config = LxmertConfig(vocab_size=100, hidden_size=HIDDEN, num_attention_heads=2,
                          intermediate_size=64, l_layers=1, x_layers=1, r_layers=1,
                          visual_feat_dim=FEATURE_DIM, visual_pos_dim=4)
    model = LxmertModel(config).eval()
    ids = text(3)

    def run(b: dict, mask: bool = True):
        with torch.no_grad():
            return model(input_ids=ids, visual_feats=b["visual_feats"],
                         visual_pos=b["visual_pos"],
                         visual_attention_mask=b["visual_attention_mask"] if mask else None)

    out = run(batch)
    assert out.language_output.shape == (3, 7, HIDDEN)
    assert out.vision_output.shape == (3, 5, HIDDEN)
    assert out.pooled_output.shape == (3, HIDDEN)
    changed = run(perturb_padding(batch))
    real = batch["visual_attention_mask"].bool()
    # Images 0 and 1 have regions; image 2 has none, so attention has nothing to fall back on.
    assert torch.allclose(out.language_output[:2], changed.language_output[:2], atol=1e-5)
    assert torch.allclose(out.vision_output[real], changed.vision_output[real], atol=1e-5)
    # Without the mask the padding leaks into the text: the check above can fail.
    unmasked = run(batch, mask=False).language_output[:2]
    assert not torch.allclose(
        unmasked, run(perturb_padding(batch), mask=False).language_output[:2], atol=1e-3)


def test_visualbert_consumes_the_batches(batch):
    from transformers import VisualBertConfig, VisualBertModel

    torch.manual_seed(0)
    config = VisualBertConfig(vocab_size=100, hidden_size=HIDDEN, num_hidden_layers=1,
                              num_attention_heads=2, intermediate_size=64,
                              visual_embedding_dim=FEATURE_DIM)
    model = VisualBertModel(config).eval()
    ids = text(3)

    def run(b: dict):
        with torch.no_grad():
            return model(input_ids=ids, attention_mask=torch.ones_like(ids),
                         visual_embeds=b["visual_feats"],
                         visual_attention_mask=b["visual_attention_mask"],
                         visual_token_type_ids=torch.ones_like(b["visual_attention_mask"]))

    out = run(batch)
    assert out.last_hidden_state.shape == (3, 7 + 5, HIDDEN)
    assert out.pooler_output.shape == (3, HIDDEN)
    changed = run(perturb_padding(batch))
    real = torch.cat((torch.ones(3, 7, dtype=torch.bool),
                      batch["visual_attention_mask"].bool()), dim=1)
    assert torch.allclose(out.last_hidden_state[real], changed.last_hidden_state[real],
                          atol=1e-5)
