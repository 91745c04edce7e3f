"""Chip indexes, chip datasets and stitching: tile, predict with the identity, stitch, compare."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from torch.utils.data import DataLoader, default_collate

from geovision.data.stitching import cosine_weights, stitch
from geovision.data.tiling import (
    ChipDataset,
    TilingError,
    chip_index,
    collate_chips,
    grid_offsets,
    open_raster,
    read_window,
)

TRANSFORM = from_origin(600_000, 5_000_000, 0.5, 0.5)


def write_scene(path: Path, array: np.ndarray, nodata: float | None = None) -> Path:
    """A GeoTIFF like a real scene: (C, H, W) with a CRS and transform."""
    profile = {"driver": "GTiff", "height": array.shape[1], "width": array.shape[2],
               "count": array.shape[0], "dtype": array.dtype.name, "crs": "EPSG:32632",
               "transform": TRANSFORM}
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
    return path


def random_scene(shape: tuple[int, int, int], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.normal(0, 100, size=shape).astype(dtype)


def identity_predictions(chips: pd.DataFrame, batch_size: int = 7):
    """(chip_idx, chip) pairs as a model loop over a DataLoader would yield them."""
    loader = DataLoader(ChipDataset(chips), batch_size=batch_size, collate_fn=collate_chips)
    for images, _, chip_idx in loader:
        yield from zip(chip_idx.tolist(), images.numpy(), strict=True)


def read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(), {"crs": src.crs, "transform": src.transform, "nodata": src.nodata}


# ----- the grid -------------------------------------------------------------------------------

def test_grid_offsets_pad_keeps_the_stride_and_shift_ends_at_the_edge() -> None:
    assert grid_offsets(100, 32, 8, "pad").tolist() == [0, 24, 48, 72]
    assert grid_offsets(100, 32, 8, "shift").tolist() == [0, 24, 48, 68]
    assert grid_offsets(96, 32, 0, "pad").tolist() == [0, 32, 64]
    assert grid_offsets(32, 32, 8, "shift").tolist() == [0]
    assert grid_offsets(20, 32, 8, "pad").tolist() == [0]


def test_chip_index_rows_columns_and_order(tmp_path: Path) -> None:
    a = write_scene(tmp_path / "a.tif", random_scene((2, 40, 50), "uint8"))
    b = write_scene(tmp_path / "b.tif", random_scene((2, 16, 16), "uint8"))
    chips = chip_index([a, b], 16, 4, progress=False)
    assert list(chips.columns) == ["df_idx", "image_path", "row_off", "col_off", "height",
                                   "width", "scene_height", "scene_width"]
    # a: rows 0, 12, 24 (24 + 16 = 40) and cols 0, 12, 24, 36 (36 + 16 > 50: padded)
    assert (chips.df_idx == 0).sum() == 3 * 4 and (chips.df_idx == 1).sum() == 1
    first = chips[chips.df_idx == 0]
    assert first[["row_off", "col_off"]].values[:5].tolist() == [[0, 0], [0, 12], [0, 24],
                                                                  [0, 36], [12, 0]]
    assert chips.index.tolist() == list(range(13))
    assert chips.iloc[-1][["image_path", "scene_height", "scene_width"]].tolist() == \
        [str(b), 16, 16]


def test_chip_index_carries_the_split_df_columns(tmp_path: Path) -> None:
    image = write_scene(tmp_path / "image.tif", random_scene((3, 20, 20), "uint8"))
    mask = write_scene(tmp_path / "mask.tif", random_scene((1, 20, 20), "uint8"))
    split_df = pd.DataFrame({"df_idx": [7], "image_path": [str(image)],
                             "mask_path": [str(mask)], "split": ["val"]})
    chips = chip_index(split_df, 10, 0, progress=False)
    assert len(chips) == 4
    assert set(chips.df_idx) == {7} and set(chips.split) == {"val"}
    assert set(chips.mask_path) == {str(mask)}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"chip_size": 16, "overlap": 16}, "overlap 16"),
    ({"chip_size": 64, "overlap": 0, "border": "shift"}, "border='pad'"),
    ({"chip_size": 16, "overlap": 0, "border": "wrap"}, "border='wrap'"),
    ({"chip_size": 0, "overlap": 0}, "at least 1 pixel"),
])
def test_chip_index_refuses_impossible_grids(tmp_path: Path, kwargs: dict,
                                             message: str) -> None:
    scene = write_scene(tmp_path / "s.tif", random_scene((1, 40, 40), "uint8"))
    with pytest.raises(TilingError, match=message.replace("(", r"\(")):
        chip_index([scene], progress=False, **kwargs)


def test_chip_index_refuses_relative_paths_and_mismatched_masks(tmp_path: Path) -> None:
    image = write_scene(tmp_path / "image.tif", random_scene((1, 20, 20), "uint8"))
    with pytest.raises(TilingError, match="relative"):
        chip_index(pd.DataFrame({"image_path": ["images/a.tif"]}), 8, progress=False)
    mask = write_scene(tmp_path / "mask.tif", random_scene((1, 20, 24), "uint8"))
    df = pd.DataFrame({"image_path": [str(image)], "mask_path": [str(mask)]})
    with pytest.raises(TilingError, match="pixel for pixel"):
        chip_index(df, 8, progress=False)


def test_nodata_filter_drops_empty_chips_and_counts_padding(tmp_path: Path) -> None:
    array = np.full((2, 40, 40), 7, dtype=np.uint8)
    array[:, :20, :20] = 0  # the top-left quarter is nodata
    array[0, 5, 5] = 3  # one band valid: the pixel is valid
    scene = write_scene(tmp_path / "s.tif", array, nodata=0)
    everything = chip_index([scene], 10, 0, progress=False)
    assert len(everything) == 16
    kept = chip_index([scene], 10, 0, nodata=0, progress=False)
    # the three all-nodata chips of the quarter go; the one with a valid pixel stays
    assert len(kept) == 13
    assert {(0, 0)} <= set(zip(kept.row_off, kept.col_off, strict=True))
    strict = chip_index([scene], 10, 0, nodata=0, max_nodata_fraction=0.5, progress=False)
    assert len(strict) == 12 and (0, 0) not in set(zip(strict.row_off, strict.col_off,
                                                        strict=True))
    # 16 px chips at 0, 16, 32 of a 40 px scene: the last row and column are half padding;
    # (0, 0) is nodata but for one pixel; the others overlap the quarter by a quarter or less
    padded = chip_index([scene], 16, 0, nodata=0, max_nodata_fraction=0.3, progress=False)
    assert set(zip(padded.row_off, padded.col_off, strict=True)) == {(0, 16), (16, 0),
                                                                    (16, 16)}


# ----- round trips ----------------------------------------------------------------------------

GRIDS = [  # (height, width), chip, overlap, border
    ((64, 64), 16, 0, "pad"),
    ((70, 97), 32, 8, "pad"),
    ((70, 97), 32, 8, "shift"),
    ((33, 50), (24, 40), (5, 11), "pad"),
    ((33, 50), (24, 40), (5, 11), "shift"),
    ((20, 30), 48, 8, "pad"),  # one chip larger than the scene
    ((300, 45), 40, 13, "pad"),  # more than one output band
    ((300, 45), 40, 25, "shift"),  # up to 9 chips over a pixel
]


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32"])
@pytest.mark.parametrize("blend", ["mean", "cosine"])
@pytest.mark.parametrize(("size", "chip", "overlap", "border"), GRIDS)
def test_identity_round_trip_gives_back_the_scene(tmp_path: Path, size, chip, overlap, border,
                                                  blend: str, dtype: str) -> None:
    source = random_scene((3, *size), dtype)
    scene = write_scene(tmp_path / "scene.tif", source)
    chips = chip_index([scene], chip, overlap, border=border, progress=False)
    result = stitch(identity_predictions(chips), chips, tmp_path / "out.tif", blend=blend,
                    progress=False)
    stitched, geo = read(result.path)
    assert stitched.dtype == source.dtype and result.shape == source.shape
    if blend == "cosine" and dtype == "float32":  # weighted sums of equal floats round
        np.testing.assert_allclose(stitched, source, rtol=1e-6, atol=1e-4)
    else:
        np.testing.assert_array_equal(stitched, source)
    assert geo["crs"].to_epsg() == 32632 and geo["transform"] == TRANSFORM


def test_round_trip_in_any_order_to_a_memory_map(tmp_path: Path) -> None:
    source = random_scene((2, 90, 75), "uint16", seed=3)
    scene = write_scene(tmp_path / "scene.tif", source)
    chips = chip_index([scene], 20, 6, progress=False)
    pairs = list(identity_predictions(chips))
    order = np.random.default_rng(0).permutation(len(pairs))
    result = stitch((pairs[i] for i in order), chips, tmp_path / "out.npy", progress=False)
    np.testing.assert_array_equal(np.load(result.path, mmap_mode="r"), source)
    geo = json.loads((tmp_path / "out.geo.json").read_text())
    assert geo["transform"] == list(TRANSFORM)[:6] and (geo["height"], geo["width"]) == (90, 75)
    assert "32632" in geo["crs"]


def test_stitching_holds_a_band_of_rows_not_the_scene(tmp_path: Path) -> None:
    source = random_scene((1, 3000, 40), "uint8", seed=1)
    scene = write_scene(tmp_path / "tall.tif", source)
    chips = chip_index([scene], 64, 16, progress=False)
    result = stitch(identity_predictions(chips, batch_size=32), chips, tmp_path / "out.tif",
                    progress=False)
    np.testing.assert_array_equal(read(result.path)[0], source)
    assert result.peak_rows <= 3 * 256 < source.shape[1]


def test_chips_dropped_by_the_nodata_filter_leave_nodata(tmp_path: Path) -> None:
    source = random_scene((1, 40, 40), "uint8", seed=2)
    source[source == 0] = 1
    source[:, 20:, :] = 0
    scene = write_scene(tmp_path / "s.tif", source, nodata=0)
    chips = chip_index([scene], 20, 0, nodata=0, progress=False)
    assert len(chips) == 2
    result = stitch(identity_predictions(chips), chips, tmp_path / "out.tif", progress=False)
    stitched, geo = read(result.path)
    np.testing.assert_array_equal(stitched, source)
    assert geo["nodata"] == 0


# ----- blending -------------------------------------------------------------------------------

def two_chips(tmp_path: Path) -> pd.DataFrame:
    scene = write_scene(tmp_path / "s.tif", np.zeros((1, 8, 12), dtype=np.uint8))
    return chip_index([scene], 8, 4, progress=False)  # columns 0-7 and 4-11


def test_mean_blend_averages_and_rounds_halves_up(tmp_path: Path) -> None:
    chips = two_chips(tmp_path)
    ones, twos = np.full((1, 8, 8), 1, np.uint8), np.full((1, 8, 8), 2, np.uint8)
    out = read(stitch([(0, ones), (1, twos)], chips, tmp_path / "u8.tif",
                      progress=False).path)[0][0]
    assert out[:, :4].tolist() == [[1] * 4] * 8 and out[:, 8:].tolist() == [[2] * 4] * 8
    assert out[:, 4:8].tolist() == [[2] * 4] * 8  # 1.5 rounds up
    floats = read(stitch([(1, twos.astype(np.float32)), (0, ones.astype(np.float32))], chips,
                         tmp_path / "f32.tif", progress=False).path)[0][0]
    assert floats[:, 4:8].tolist() == [[1.5] * 4] * 8


def test_cosine_blend_fades_from_one_chip_to_the_next(tmp_path: Path) -> None:
    chips = two_chips(tmp_path)
    low, high = np.zeros((1, 8, 8), np.float32), np.full((1, 8, 8), 100, np.float32)
    out = read(stitch([(0, low), (1, high)], chips, tmp_path / "c.tif", blend="cosine",
                      progress=False).path)[0][0]
    row = out[3]
    assert row[:4].tolist() == [0] * 4 and row[8:].tolist() == [100] * 4
    assert 0 < row[4] < row[5] < row[6] < row[7] < 100
    np.testing.assert_allclose(row[4:8] + row[4:8][::-1], 100, rtol=1e-6)  # symmetric fade


def test_cosine_weights_of_overlapping_neighbours_sum_to_one() -> None:
    weights = cosine_weights(16, 6)
    np.testing.assert_allclose(weights[-6:] + weights[:6], 1.0)
    assert weights.min() > 0 and weights[6:10].tolist() == [1.0] * 4


# ----- stitching errors -----------------------------------------------------------------------

def test_stitch_refuses_incomplete_or_inconsistent_predictions(tmp_path: Path) -> None:
    chips = two_chips(tmp_path)
    chip = np.zeros((1, 8, 8), np.uint8)
    out = tmp_path / "out.tif"
    with pytest.raises(TilingError, match="1 of 2 chips were not predicted"):
        stitch([(0, chip)], chips, out, progress=False)
    assert not out.exists() and not list(tmp_path.glob(".out.tif.*"))
    with pytest.raises(TilingError, match="predicted twice"):
        stitch([(0, chip), (0, chip)], chips, out, progress=False)
    with pytest.raises(TilingError, match="not in the chip index"):
        stitch([(5, chip)], chips, out, progress=False)
    with pytest.raises(TilingError, match="expected uint8"):
        stitch([(0, chip), (1, np.zeros((1, 8, 7), np.uint8))], chips, out, progress=False)
    other = write_scene(tmp_path / "t.tif", np.zeros((1, 8, 12), dtype=np.uint8))
    both = pd.concat([chips, chip_index([other], 8, 4, progress=False)], ignore_index=True)
    with pytest.raises(TilingError, match="from 2 sources"):
        stitch([(0, chip)], both, out, progress=False)
    with pytest.raises(TilingError, match=r"\.tif, \.tiff or \.npy"):
        stitch([(0, chip)], chips, tmp_path / "out.png", progress=False)


# ----- the chip dataset -----------------------------------------------------------------------

def test_chip_dataset_reads_windows_and_pads_with_nodata(tmp_path: Path) -> None:
    source = random_scene((2, 30, 45), "uint8", seed=4)
    source[source == 9] = 10
    scene = write_scene(tmp_path / "s.tif", source, nodata=9)
    chips = chip_index([scene], 16, 0, progress=False)
    dataset = ChipDataset(chips)
    assert len(dataset) == 2 * 3
    image, target, chip_idx = dataset[4]  # row 16, col 16
    np.testing.assert_array_equal(image[:, :14], source[:, 16:30, 16:32])
    assert (image[:, 14:] == 9).all() and target == -1 and chip_idx == 4
    corner = ChipDataset(chips, fill_value=0)[5][0]  # row 16, col 32: 14 x 13 inside
    np.testing.assert_array_equal(corner[:, :14, :13], source[:, 16:, 32:])
    assert (corner[:, 14:] == 0).all() and (corner[:, :, 13:] == 0).all()
    assert dataset[-1][2] == 5
    with pytest.raises(IndexError):
        dataset[6]


def test_read_window_into_a_buffer_equals_a_new_array_inside_and_across_the_edge(
        tmp_path: Path) -> None:
    source = random_scene((3, 30, 45), "uint8", seed=5)
    scene = write_scene(tmp_path / "s.tif", source)
    with open_raster(scene) as src:
        for row, col in ((0, 0), (10, 20), (16, 32)):  # inside; inside; 14 x 13 inside
            out = np.full((2, 16, 16), 77, dtype=np.uint8)
            got = read_window(src, row, col, 16, 16, 0, [3, 1], out=out)
            assert got is out
            np.testing.assert_array_equal(out, read_window(src, row, col, 16, 16, 0, [3, 1]))
        with pytest.raises(TilingError, match="apply"):
            read_window(src, 0, 0, 16, 16, 0, out=np.empty((3, 16, 16), np.uint8),
                        apply=np.negative)


def test_chip_dataset_masks_labels_and_chip_idx_of_a_subset(tmp_path: Path) -> None:
    image = write_scene(tmp_path / "image.tif", random_scene((3, 24, 24), "uint8"))
    codes = np.zeros((1, 24, 24), np.uint8)
    codes[0, :, 12:] = 255
    mask = write_scene(tmp_path / "mask.tif", codes)
    split_df = pd.DataFrame({"df_idx": [3], "image_path": [str(image)],
                             "mask_path": [str(mask)], "label_idx": [1]})
    chips = chip_index(split_df, 16, 0, progress=False)
    subset = chips[chips.col_off == 16]  # chip_idx 1 and 3 keep their labels
    dataset = ChipDataset(subset, mask_fill=7, mask_map=lambda m: (m[0] >= 128).astype(np.uint8))
    image_chip, target, chip_idx = dataset[0]
    assert chip_idx == 1 and image_chip.shape == (3, 16, 16)
    assert (target[:, :8] == 1).all() and (target[:, 8:] == 7).all()
    labels = ChipDataset(chips.drop(columns="mask_path"))
    assert labels[0][1] == 1


def test_workers_open_their_own_files_and_collate_like_default(tmp_path: Path) -> None:
    source = random_scene((3, 50, 50), "uint8", seed=5)
    scene = write_scene(tmp_path / "s.tif", source)
    chips = chip_index([scene], 20, 5, progress=False)
    dataset = ChipDataset(chips)
    dataset[0]  # opens the file in this process
    pickle.dumps(dataset)  # open rasterio handles cannot be pickled: they are left behind

    def batches(workers: int, collate) -> list:
        return list(DataLoader(dataset, batch_size=4, num_workers=workers, collate_fn=collate))

    single = batches(0, collate_chips)
    assert [b[2].tolist() for b in single][0] == [0, 1, 2, 3]
    for ours, theirs in zip(single, batches(0, default_collate), strict=True):
        for a, b in zip(ours, theirs, strict=True):
            assert a.dtype == b.dtype and torch.equal(a, b)
    for ours, workers in zip(single, batches(2, collate_chips), strict=True):
        assert torch.equal(ours[0], workers[0]) and torch.equal(ours[2], workers[2])


def test_from_dataset_gives_the_datasets_tuples_per_chip(small_root: Path) -> None:
    from geovision.data.datasets.synthetic import SyntheticSegmentation

    dataset = SyntheticSegmentation(small_root, split="val")
    chips = ChipDataset.from_dataset(dataset, 16, 4, border="shift", progress=False)
    assert len(chips) == len(dataset) * 9  # offsets 0, 12, 16 per axis of 32 px scenes
    image, mask, chip_idx = chips[4]
    row = chips.chips.loc[chip_idx]
    whole_image, whole_mask, df_idx = dataset[0]
    assert row.df_idx == df_idx and (row.row_off, row.col_off) == (12, 12)
    window = np.s_[:, 12:28, 12:28]
    torch.testing.assert_close(image, whole_image[window])
    torch.testing.assert_close(mask, whole_mask[window])
