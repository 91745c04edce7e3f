"""Exact statistics: equal to a float64 two-pass reference, mergeable, and per split."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from geovision.data.datasets.synthetic import SyntheticClassification, SyntheticSegmentation
from geovision.data.image_io import ImageReadError
from geovision.data.statistics import (
    BandStats,
    array_stats,
    band_column,
    check_statistics,
    class_column,
    compute_image_statistics,
    mask_stats,
    means_and_std_devs,
    split_statistics,
)

BANDS = SyntheticClassification.BANDS


def reference(image: np.ndarray, nodata: float | None = None) -> dict[str, np.ndarray]:
    """Per-band count, mean, var, min, max by a plain float64 two-pass."""
    out: dict[str, list] = {k: [] for k in ("count", "mean", "var", "min", "max")}
    for band in image:
        x = band.reshape(-1).astype(np.float64)
        keep = ~np.isnan(x)
        if nodata is not None and not np.isnan(nodata):
            keep &= x != nodata
        x = x[keep]
        mean = x.sum() / x.size
        out["count"].append(x.size)
        out["mean"].append(mean)
        out["var"].append(((x - mean) ** 2).sum() / x.size)
        out["min"].append(x.min())
        out["max"].append(x.max())
    return {k: np.array(v) for k, v in out.items()}


def stored_hist(stats: BandStats, band: int) -> np.ndarray:
    """The part of `band`'s histogram a table row keeps: from its min's bin to its max's."""
    if stats.count[band] == 0:
        return stats.hist[band][:0]
    first, last = ((int(v) - stats.hist_lo) // stats.bin_width
                   for v in (stats.min[band], stats.max[band]))
    return stats.hist[band][first:last + 1]


def random_image(dtype: str, rng: np.random.Generator, shape=(4, 48, 40)) -> np.ndarray:
    if dtype == "float32":
        return rng.normal(3000.0, 25.0, size=shape).astype(np.float32)
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dtype)


def assert_matches(stats: BandStats, ref: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(stats.count, ref["count"])
    np.testing.assert_allclose(stats.mean, ref["mean"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(stats.var, ref["var"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(stats.std, np.sqrt(ref["var"]), rtol=1e-9, atol=0)
    np.testing.assert_array_equal(stats.min, ref["min"])
    np.testing.assert_array_equal(stats.max, ref["max"])


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_array_stats_equal_float64_reference(dtype: str) -> None:
    image = random_image(dtype, np.random.default_rng(7))
    stats = array_stats(image)
    assert_matches(stats, reference(image))
    if dtype != "float32":
        full = np.iinfo(dtype)
        # full range: the extremes are present, so nothing was clipped or wrapped
        assert stats.min.min() < full.min + 64 and stats.max.max() > full.max - 64


@pytest.mark.parametrize(("dtype", "shape"), [
    ("uint8", (3, 64, 64)),  # n * sum of squares below 2**53: numpy integers
    ("int16", (3, 64, 64)),
    ("uint16", (3, 128, 128)),  # above 2**53: Python integers
    ("uint8", (1, 1000, 1000))])
def test_integer_mean_and_m2_are_the_exact_values_rounded_once(dtype: str, shape) -> None:
    """Mean and m2 equal the exact rational values, correctly rounded, on both sides of the
    shortcut taken when n * sum of squares fits a float64 exactly."""
    from fractions import Fraction

    image = random_image(dtype, np.random.default_rng(17), shape)
    stats = array_stats(image)
    for band, values in enumerate(image.reshape(shape[0], -1).astype(np.int64)):
        n, total, total_sq = values.size, int(values.sum()), int((values * values).sum())
        assert stats.mean[band] == float(Fraction(total, n))
        assert stats.m2[band] == float(Fraction(n * total_sq - total * total, n))


def test_array_stats_skip_nan_and_nodata() -> None:
    rng = np.random.default_rng(3)
    image = random_image("float32", rng)
    image[0, :10] = np.nan
    image[1, 5:9, :] = -9999.0
    image[2] = np.nan  # a band with no valid pixel at all
    stats = array_stats(image, nodata=-9999.0)
    ref = reference(image[[0, 1, 3]], nodata=-9999.0)
    assert stats.count.tolist() == [ref["count"][0], ref["count"][1], 0, ref["count"][2]]
    for name in ("mean", "var", "min", "max"):
        values = getattr(stats, name)
        np.testing.assert_allclose(values[[0, 1, 3]], ref[name], rtol=1e-9, atol=0)
        assert np.isnan(values[2])
    nan_only = array_stats(image, nodata=float("nan"))
    assert nan_only.count[1] == ref["count"][1] + 4 * image.shape[2]


def test_integer_nodata_and_histograms() -> None:
    rng = np.random.default_rng(5)
    image = random_image("uint16", rng)
    image[:, :3] = 0
    stats = array_stats(image, nodata=0, bins_16bit=65536)
    assert_matches(stats, reference(image, nodata=0))
    for band in range(image.shape[0]):
        values = image[band].reshape(-1)
        values = values[values != 0]
        np.testing.assert_array_equal(stats.hist[band], np.bincount(values, minlength=65536))
        expected = np.percentile(values, [0, 2, 50, 98, 100], method="inverted_cdf")
        np.testing.assert_array_equal(stats.percentiles([0, 2, 50, 98, 100])[band], expected)
    coarse = array_stats(image, nodata=0)  # default 1024 bins of 64 values
    assert coarse.hist.shape == (4, 1024) and coarse.bin_width == 64
    np.testing.assert_array_equal(coarse.hist, stats.hist.reshape(4, 1024, 64).sum(axis=2))
    int16 = array_stats(random_image("int16", rng), bins_16bit=65536)
    assert int16.hist_lo == -32768 and int16.hist.sum() == 4 * 48 * 40
    uint8 = array_stats(random_image("uint8", rng))
    assert uint8.hist.shape == (4, 256) and uint8.hist.sum(axis=1).tolist() == [48 * 40] * 4


def test_bad_arguments_are_refused() -> None:
    image = np.zeros((2, 4, 4), dtype=np.uint16)
    with pytest.raises(ValueError, match="bins_16bit"):
        array_stats(image, bins_16bit=1000)
    with pytest.raises(ValueError, match="nodata"):
        array_stats(image.astype(np.uint8), nodata=300)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        array_stats(image[0])
    with pytest.raises(ValueError, match="Percentiles"):
        array_stats(image.astype(np.float32)).percentiles(50)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_merge_is_associative_and_equals_the_union(dtype: str) -> None:
    rng = np.random.default_rng(11)
    parts = [random_image(dtype, rng, shape=(3, h, 16)) for h in (5, 17, 40)]
    a, b, c = (array_stats(p) for p in parts)
    left, right = a.merge(b).merge(c), a.merge(b.merge(c))
    np.testing.assert_array_equal(left.count, right.count)
    np.testing.assert_allclose(left.mean, right.mean, rtol=1e-12, atol=0)
    np.testing.assert_allclose(left.m2, right.m2, rtol=1e-12, atol=0)
    assert_matches(left, reference(np.concatenate(parts, axis=1)))
    if dtype != "float32":
        np.testing.assert_array_equal(left.hist, right.hist)


def test_merge_with_an_empty_band_keeps_the_other() -> None:
    rng = np.random.default_rng(2)
    full = array_stats(random_image("float32", rng, shape=(2, 8, 8)))
    empty = array_stats(np.full((2, 8, 8), np.nan, dtype=np.float32))
    merged = empty.merge(full)
    np.testing.assert_array_equal(merged.count, full.count)
    np.testing.assert_array_equal(merged.mean, full.mean)
    np.testing.assert_array_equal(merged.m2, full.m2)
    with pytest.raises(ValueError, match="histogram layouts"):
        full.merge(array_stats(np.zeros((2, 8, 8), dtype=np.uint8)))


def test_mask_stats_counts_objects_and_class_sums() -> None:
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[0:2, 0:2] = 1  # a 4-pixel object
    mask[5:8, 5:8] = 1  # a 9-pixel object
    mask[0, 7] = 2  # a 1-pixel object
    mask[7, 0] = 255  # ignored
    image = np.stack([np.arange(64, dtype=np.uint8).reshape(8, 8)])
    stats = mask_stats(mask, image, num_classes=3)
    assert stats["pixels"].tolist() == [49, 13, 1]
    assert stats["object_size_hist"][1, 2] == 1 and stats["object_size_hist"][1, 3] == 1
    assert stats["object_size_hist"][2, 0] == 1 and stats["object_size_hist"][1].sum() == 2
    assert stats["band_sums"][2, 0] == 7.0
    assert stats["band_sums"][:, 0].sum() == image.sum() - 56  # pixel 56 is ignored


def read_split_pixels(root: Path, df: pd.DataFrame, split: str) -> np.ndarray:
    ds = SyntheticClassification(root, df=df, split=split)
    return np.concatenate([ds.read_raw(i)[0] for i in range(len(ds))], axis=1)


@pytest.fixture
def temp_dirs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders made with tempfile.mkdtemp while the test runs (workers' histogram files)."""
    made: list[str] = []
    mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args: Any, **kwargs: Any) -> str:
        made.append(mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    return made


def test_dataset_statistics_per_split(small_root: Path, temp_dirs: list[str]) -> None:
    df = SyntheticClassification.build_df(small_root)
    result = compute_image_statistics(SyntheticClassification, small_root, df, workers=2,
                                      progress=False)
    assert len(temp_dirs) == 1 and not Path(temp_dirs[0]).exists()
    table = result.table
    assert result.skipped == [] and len(table) == len(df)
    assert table.index.equals(df.index) and table["image_path"].equals(df["image_path"])
    assert check_statistics(table, BANDS, df) == []
    for split in ("train", "val", "trainval", "test", "all"):
        stats = split_statistics(table, split, BANDS)
        pixels = read_split_pixels(small_root, df, split)
        assert_matches(stats, reference(pixels))
        np.testing.assert_array_equal(
            stats.hist, [np.bincount(b.reshape(-1), minlength=256) for b in pixels])
    serial = compute_image_statistics(SyntheticClassification, small_root, df, workers=1,
                                      progress=False).table
    numeric = [band_column(b, s) for b in BANDS for s in ("count", "mean", "var", "min", "max")]
    pd.testing.assert_frame_equal(serial[numeric], table[numeric])
    for band in BANDS:  # histograms that came back from the workers through files
        for ours, theirs in zip(table[band_column(band, "hist")],
                                serial[band_column(band, "hist")], strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_table_survives_parquet(small_root: Path, tmp_path: Path) -> None:
    df = SyntheticSegmentation.build_df(small_root)
    table = compute_image_statistics(SyntheticSegmentation, small_root, df, workers=1,
                                     progress=False).table
    table.to_parquet(tmp_path / "stats.parquet", index=True)
    loaded = pd.read_parquet(tmp_path / "stats.parquet")
    before, after = (split_statistics(t, "train", BANDS) for t in (table, loaded))
    np.testing.assert_array_equal(before.hist, after.hist)
    np.testing.assert_array_equal(before.mean, after.mean)
    pixels = loaded[[class_column(c, "pixels") for c in SyntheticSegmentation.CLASS_NAMES]]
    assert (pixels.sum(axis=1) == loaded["height"] * loaded["width"]).all()
    assert check_statistics(loaded, BANDS, df) == []


class _HalfFloat(SyntheticClassification):
    """Every other scene read as float32: a dataset of two dtypes."""

    @classmethod
    def read_image(cls, path):
        image = super().read_image(path)
        return image.astype(np.float32) if str(path).endswith(("0.tif", "2.tif")) else image


@pytest.mark.parametrize("workers", [1, 2])
def test_images_of_two_dtypes_keep_their_own_rows(small_root: Path, workers: int) -> None:
    df = _HalfFloat.build_df(small_root)
    table = compute_image_statistics(_HalfFloat, small_root, df, workers=workers,
                                     progress=False).table
    assert set(table["dtype"]) == {"float32", "uint8"} and len(table) == len(df)
    for _, row in table.iterrows():
        image = _HalfFloat.read_image(small_root / row["image_path"])
        assert (row["red_hist"] is None) == (image.dtype == np.float32)
        assert row["red_mean"] == pytest.approx(image[0].astype(np.float64).mean(), rel=1e-12)
    with pytest.raises(ValueError, match="mixes image dtypes"):
        split_statistics(table, "train", BANDS)
    floats = table[table["dtype"] == "float32"]
    assert split_statistics(floats, "all", BANDS).hist is None  # moments only


class _Unsigned16(SyntheticClassification):
    """The scenes spread over the 16-bit range."""

    @classmethod
    def read_image(cls, path):
        return super().read_image(path).astype(np.uint16) * 257


class _Signed16(SyntheticClassification):
    @classmethod
    def read_image(cls, path):
        return (super().read_image(path).astype(np.int32) * 257 - 32768).astype(np.int16)


@pytest.mark.parametrize("dataset_cls", [_Unsigned16, _Signed16])
@pytest.mark.parametrize(("hist_bytes", "bins"), [(1, 1024), (4 << 20, 256),
                                                    (4 << 20, 65536)])
def test_16bit_table_rows_equal_array_stats(small_root: Path, monkeypatch, dataset_cls: type,
                                            hist_bytes: int, bins: int) -> None:
    """16-bit images, summarised pixel by pixel into binned histograms, one per group or
    many, with a nodata value: the rows array_stats gives."""
    from geovision.data.statistics import rows

    monkeypatch.setattr(rows, "HIST_BYTES", hist_bytes)
    df = dataset_cls.build_df(small_root)
    nodata = -32768 if dataset_cls is _Signed16 else 0  # scene value 0 in both
    table = compute_image_statistics(dataset_cls, small_root, df, workers=1, progress=False,
                                     nodata=nodata, bins_16bit=bins).table
    assert set(table["dtype"]) == {"int16" if dataset_cls is _Signed16 else "uint16"}
    counts = table[[band_column(b, "count") for b in BANDS]].to_numpy()
    assert (counts < (table["height"] * table["width"]).to_numpy()[:, None]).any()  # nodata
    for df_idx, row in table.iterrows():
        stats = array_stats(dataset_cls.read_image(small_root / row["image_path"]), nodata,
                            bins_16bit=bins)
        assert stats.hist.shape[1] == row["hist_bins"] == bins
        for band, name in enumerate(BANDS):
            for stat in ("count", "mean", "var", "min", "max"):
                assert row[band_column(name, stat)] == getattr(stats, stat)[band], df_idx
            np.testing.assert_array_equal(row[band_column(name, "hist")],
                                          stored_hist(stats, band))


def test_rows_keep_histograms_from_min_to_max_and_old_tables_still_read(
        small_root: Path) -> None:
    """Rows store each band's histogram from its min's bin to its max's (nodata or a narrow
    range leaves bins out); tables with full-length rows, as written before, give the same
    split statistics."""
    df = _Unsigned16.build_df(small_root)
    table = compute_image_statistics(_Unsigned16, small_root, df, workers=1, progress=False,
                                     nodata=0, bins_16bit=65536).table
    lengths = [len(h) for h in table["red_hist"]]
    assert max(lengths) < 65536 and set(table["hist_bins"]) == {65536}
    full = table.drop(columns="hist_bins")
    for band in BANDS:
        full[band_column(band, "hist")] = [
            np.pad(h, (int(low), 65536 - int(low) - len(h))) if len(h) else np.zeros(65536, int)
            for h, low in zip(table[band_column(band, "hist")],
                              table[band_column(band, "min")].fillna(0), strict=True)]
    trimmed, old = (split_statistics(t, "all", BANDS) for t in (table, full))
    np.testing.assert_array_equal(trimmed.hist, old.hist)
    assert trimmed.hist.sum(axis=1).tolist() == trimmed.count.tolist()
    mixed = table.copy()
    mixed.loc[mixed.index[0], "hist_bins"] = 1024
    with pytest.raises(ValueError, match="mixes histograms of"):
        split_statistics(mixed, "all", BANDS)


def test_means_and_std_devs_reproduce_the_recorded_ones(synthetic_root: Path) -> None:
    df = SyntheticClassification.build_df(synthetic_root)
    table = compute_image_statistics(SyntheticClassification, synthetic_root, df,
                                     progress=False).table
    means, stds = means_and_std_devs(table, BANDS, split="train")
    np.testing.assert_allclose(means, SyntheticClassification.MEANS, atol=5e-5)
    np.testing.assert_allclose(stds, SyntheticClassification.STD_DEVS, atol=5e-5)
    train = split_statistics(table, "train", BANDS)
    np.testing.assert_allclose(means, train.mean / 255, rtol=1e-12)
    halved, _ = means_and_std_devs(table, BANDS, scale=510.0)
    np.testing.assert_allclose(halved, np.array(means) / 2, rtol=1e-12)


def test_bad_images_raise_naming_the_file_or_are_skipped(
        small_copy: Path, truncate, write_three_band, temp_dirs: list[str]) -> None:
    df = SyntheticClassification.build_df(small_copy)
    broken, three_band = small_copy / df["image_path"][3], small_copy / df["image_path"][8]
    truncate(broken)
    with pytest.raises(ImageReadError, match=str(broken)):
        compute_image_statistics(SyntheticClassification, small_copy, df, workers=2,
                                 progress=False)
    # the workers' folder goes, with the histograms of chunks finished before the error
    assert len(temp_dirs) == 1 and not Path(temp_dirs[0]).exists()
    write_three_band(three_band)
    missing = small_copy / df["image_path"][10]
    missing.unlink()  # reported like a corrupt file, not refused up front
    result = compute_image_statistics(SyntheticClassification, small_copy, df, workers=2,
                                      progress=False, on_error="skip")
    assert [Path(p) for p, _ in result.skipped] == [broken, three_band, missing]
    assert "has 3 bands but the dataset expects 4" in result.skipped[1][1]
    assert "not found" in result.skipped[2][1]
    assert len(result.table) == len(df) - 3 and 3 not in result.table.index
    problems = check_statistics(result.table, BANDS, df)
    assert len(problems) == 1 and "3 df rows have no statistics" in problems[0]
    with pytest.raises(ImageReadError, match=f"not found: {missing}"):
        compute_image_statistics(SyntheticClassification, small_copy, df.drop(index=[3, 8]),
                                 workers=1, progress=False)
    with pytest.raises(ValueError, match="on_error"):
        compute_image_statistics(SyntheticClassification, small_copy, df, on_error="ignore")


def test_check_statistics_reports_problems(small_root: Path) -> None:
    df = SyntheticClassification.build_df(small_root)
    table = compute_image_statistics(SyntheticClassification, small_root, df, workers=1,
                                     progress=False).table
    bad = table.copy()
    bad.loc[2, band_column("nir", "mean")] = np.nan
    bad.loc[5, band_column("red", "count")] = 0
    problems = check_statistics(bad, BANDS)
    assert any("non-finite 'nir'" in p and df["image_path"][2] in p for p in problems)
    assert any("no valid 'red' pixels" in p for p in problems)
    assert any("histogram that does not add up" in p for p in problems)
    assert check_statistics(table.iloc[:0], BANDS) == ["The statistics table has no rows."]
    assert "lacks columns" in check_statistics(table, ("swir",))[0]


@pytest.mark.parametrize("hist_bytes", [1, 5 * 4 * 256 * 8, 4 << 20])
@pytest.mark.parametrize("nodata", [None, 0])
def test_table_rows_equal_array_stats_of_each_image(small_root: Path, monkeypatch,
                                                     hist_bytes: int, nodata) -> None:
    """Images summarised in groups of any size (one, five, all) get exactly the rows
    array_stats gives."""
    from geovision.data.statistics import rows

    monkeypatch.setattr(rows, "HIST_BYTES", hist_bytes)
    df = SyntheticSegmentation.build_df(small_root)
    table = compute_image_statistics(SyntheticSegmentation, small_root, df, workers=1,
                                     progress=False, nodata=nodata).table
    dataset = SyntheticSegmentation(small_root, df=df, split="all")
    assert len(table) == len(dataset)
    for i in range(len(dataset)):
        image, mask, df_idx = dataset.read_raw(i)
        row, stats = table.loc[df_idx], array_stats(image, nodata)
        for band, name in enumerate(BANDS):
            for stat in ("count", "mean", "var", "min", "max"):
                assert row[band_column(name, stat)] == getattr(stats, stat)[band]
            np.testing.assert_array_equal(row[band_column(name, "hist")],
                                          stored_hist(stats, band))
        classes = mask_stats(mask, image, dataset.num_classes)["pixels"]
        assert [row[class_column(c, "pixels")] for c in dataset.CLASS_NAMES] == list(classes)


def _statistics_in_daemon(root: Path, out: Any) -> None:
    df = SyntheticClassification.build_df(root)
    table = compute_image_statistics(SyntheticClassification, root, df, workers=2,
                                     progress=False).table
    out.put(table[[band_column(b, "mean") for b in BANDS]].to_numpy().tolist())


def test_a_daemonic_process_computes_in_process(small_root: Path) -> None:
    """A celery prefork worker is daemonic and may not start a pool: it computes serially."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    out = context.Queue()
    process = context.Process(target=_statistics_in_daemon, args=(small_root, out), daemon=True)
    process.start()
    process.join(120)  # the result is a few kB: it fits the queue's pipe before it is read
    assert process.exitcode == 0, "statistics failed in a daemonic process"
    means = out.get(timeout=5)
    df = SyntheticClassification.build_df(small_root)
    serial = compute_image_statistics(SyntheticClassification, small_root, df, workers=1,
                                      progress=False).table
    assert means == serial[[band_column(b, "mean") for b in BANDS]].to_numpy().tolist()
