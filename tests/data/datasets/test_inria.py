"""Inria Aerial Image Labeling from a miniature copy of the published layout."""

from __future__ import annotations

import numpy as np
import pytest

from geovision.data import get_dataset
from geovision.data.download import ManualDownloadError

CLS = get_dataset("inria")


def test_contract_and_spatial_split(miniature, contract):
    root = miniature("inria")
    df = contract(CLS, root)
    assert len(df) == 40  # 5 cities x 8 tiles; the unlabelled test city is left out
    assert not df["image_path"].str.contains("bellingham").any()
    assert df["image_path"].iloc[0] == "AerialImageDataset/train/images/austin1.tif"
    assert df["mask_path"].iloc[0] == "AerialImageDataset/train/gt/austin1.tif"
    tiles = df["image_path"].str.extract(r"/(?P<city>[a-z-]+?)(?P<n>\d+)\.tif$")
    number = tiles["n"].astype(int)
    assert (df.loc[number <= 5, "split"] == "test").all()  # tiles 1-5 of every city
    assert set(df.loc[number > 5, "split"]) == {"train", "val"}
    # val: whole tiles, one of the three remaining in every city
    assert (df[df["split"] == "val"].assign(city=tiles["city"]).groupby("city").size() == 1).all()
    assert df[df["split"] == "val"].shape[0] == 5


def test_gt_maps_0_255_to_background_building(miniature):
    root = miniature("inria")
    mask = CLS.read_mask(root / "AerialImageDataset/train/gt/vienna3.tif")
    assert mask.dtype == np.uint8 and set(np.unique(mask).tolist()) == {0, 1}
    assert mask[:, 4:].sum() == 0 and mask[:, :4].mean() > 0.5
    _, one_hot, _ = CLS(root, split="test")[0]
    assert one_hot.shape == (2, 8, 8)


def test_manual_download_says_where_to_put_what(tmp_path):
    with pytest.raises(ManualDownloadError) as err:
        CLS.download_and_extract(tmp_path)
    message = str(err.value)
    assert "https://project.inria.fr/aerialimagelabeling/" in message
    assert f"{tmp_path}/AerialImageDataset/train/images/austin1.tif" in message
    with pytest.raises(FileNotFoundError, match="Register"):
        CLS.build_df(tmp_path)


def test_chip_masks_decode_like_whole_files(miniature):
    from geovision.data.tiling import ChipDataset

    dataset = CLS(miniature("inria"), split="test")
    chips = ChipDataset.from_dataset(dataset, chip_size=5, overlap=1, progress=False)
    whole = dataset.read_raw(0)[1]  # the first scene's decoded 0/1 mask
    compared = 0
    for position in range(len(chips)):
        row = chips.chips.iloc[position]
        if row["df_idx"] != dataset.split_df["df_idx"].iloc[0]:
            continue
        _, window, _ = chips.read_raw(position)
        r, c, h, w = (int(row[k]) for k in ("row_off", "col_off", "height", "width"))
        inside = whole[r:r + h, c:c + w]
        assert set(np.unique(window).tolist()) <= {0, 1}
        np.testing.assert_array_equal(window[:inside.shape[0], :inside.shape[1]], inside)
        compared += 1
    assert compared == 4  # an 8 x 8 scene in 5-px chips with 1-px overlap: a 2 x 2 grid
