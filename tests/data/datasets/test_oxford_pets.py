"""Oxford-IIIT Pet breeds and trimaps from a miniature copy of the published layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geovision.data import get_dataset
from geovision.data.datasets.common import snake_case
from geovision.data.image_io import ImageReadError

CLS = get_dataset("oxford_pets")
SEG = get_dataset("oxford_pets_segmentation")


def test_breeds_contract_and_official_split(miniature, contract):
    root = miniature("oxford_pets")
    df = contract(CLS, root)
    assert len(df) == 20  # the list files, not the stray .mat or AppleDouble files
    assert df["image_path"].iloc[0] == "images/Abyssinian_1.jpg"
    test_rows = df["image_path"].str.endswith("_5.jpg")
    assert (df.loc[test_rows, "split"] == "test").all()
    assert set(df.loc[~test_rows, "split"]) == {"train", "val"}
    assert (df[df["split"] == "val"].groupby("label_str").size() == 1).all()


def test_class_order_is_the_class_ids(miniature):
    assert len(CLS.CLASS_NAMES) == 37
    assert CLS.CLASS_NAMES[0] == "abyssinian" and CLS.CLASS_NAMES[5] == "bengal"
    assert CLS.CLASS_NAMES[36] == "yorkshire_terrier"
    df = CLS.build_df(miniature("oxford_pets"))
    for breed in ("Abyssinian", "american_bulldog", "Bengal", "yorkshire_terrier"):
        rows = df[df["image_path"].str.startswith(f"images/{breed}_")]
        assert set(rows["label_str"]) == {snake_case(breed)}


def test_png_and_cmyk_files_read_as_rgb(miniature):
    root = miniature("oxford_pets")
    for name in ("Bengal_2.jpg", "american_bulldog_3.jpg"):
        image = CLS.read_image(root / "images" / name)
        assert image.shape == (3, 10, 12) and image.dtype == np.uint8


def test_trimaps_map_to_background_pet_border(miniature, contract):
    root = miniature("oxford_pets_segmentation")
    df = contract(SEG, root)
    assert df["mask_path"].iloc[0] == "annotations/trimaps/Abyssinian_1.png"
    assert SEG.CLASS_NAMES == ("background", "pet", "border")
    mask = SEG.read_mask(root / "annotations/trimaps/Abyssinian_1.png")
    assert mask[0, 0] == 0 and mask[5, 5] == 1 and mask[2, 3] == 2
    ds = SEG(root, split="test")
    _, one_hot, _ = ds[0]
    assert torch.equal(one_hot.argmax(0), torch.from_numpy(mask.astype(np.int64)))


def test_unknown_trimap_value_is_refused(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((4, 4), 7, np.uint8), "L").save(tmp_path / "bad.png")
    with pytest.raises(ImageReadError, match=r"bad.png holds codes \[7\]"):
        SEG.read_mask(tmp_path / "bad.png")


def test_list_line_disagreeing_with_its_breed_is_refused(miniature, tmp_path):
    import shutil

    root = shutil.copytree(miniature("oxford_pets"), tmp_path / "pets")
    (root / "annotations" / "test.txt").write_text("Bengal_5 1 1 1\n")
    with pytest.raises(ValueError, match="not the breed in its id"):
        CLS.build_df(root)
