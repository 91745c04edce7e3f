"""Exploratory data analysis from the per-image statistics table, without reading any image.

Everything here comes from `geovision.data.statistics.compute_image_statistics`'s table: class
balance per split, image sizes, per-band histograms, the mean spectral signature per class, and
for segmentation the per-class coverage and object sizes. The report is PNGs plus a markdown
summary in one folder, written atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geovision.analysis.plots import plt, save_figure
from geovision.data.base import LABEL_SEPARATOR
from geovision.data.splits import ROW_SPLITS
from geovision.data.statistics import (
    OBJECT_SIZE_BINS,
    band_column,
    class_column,
    split_statistics,
)
from geovision.errors import DataError
from geovision.io.atomic import atomic_dir

SUMMARY_FILE = "summary.md"


@dataclass
class EdaReport:
    """Where the report is, its markdown text, and the key figures (for metadata)."""

    out_dir: Path
    images: dict[str, Path]
    markdown_path: Path
    markdown: str
    figures: dict[str, Any] = field(default_factory=dict)


def eda_report(dataset_cls: type, table: pd.DataFrame, out_dir: str | os.PathLike) -> EdaReport:
    """Write the EDA plots and `summary.md` for `dataset_cls`'s statistics `table` to `out_dir`."""
    if table.empty:
        raise DataError(f"The statistics table of {dataset_cls.NAME} is empty: compute the "
                        "image statistics first.")
    out_dir = Path(out_dir)
    bands, classes = tuple(dataset_cls.BANDS), tuple(dataset_cls.CLASS_NAMES)
    splits = [s for s in ROW_SPLITS if (table["split"] == s).any()]
    segmentation = dataset_cls.TASK == "segmentation"
    figures: dict[str, Any] = {"num_images": len(table)}
    figures.update({f"num_images_{s}": int((table["split"] == s).sum()) for s in splits})
    per_split = ", ".join(f"{s}: {figures[f'num_images_{s}']}" for s in splits)
    sections = [f"# EDA: {dataset_cls.NAME}", "",
                f"{len(table)} images ({per_split}), task {dataset_cls.TASK}, bands "
                f"{', '.join(bands)}.", ""]
    names = ["class_balance", "image_sizes", "band_histograms", "spectral_signatures"]
    if segmentation:
        names.append("object_sizes")
    with atomic_dir(out_dir) as tmp:
        if segmentation:
            balance = _coverage(table, classes, splits)
            sections += _section("Class coverage per split",
                                 "Share of labelled pixels per class, and share of images in "
                                 "which the class appears.", balance)
            figures.update({f"coverage_{c}": float(balance.loc[c, "all"]) for c in classes})
            _bar_plot(balance[splits], "share of pixels", "Class coverage per split",
                      tmp / "class_balance.png")
        else:
            balance = _class_counts(table, classes, splits)
            counts = balance["all"]
            ratio = float(counts.max() / counts.min()) if counts.min() > 0 else float("inf")
            figures["imbalance_ratio"] = ratio
            each_label = (" (an image counts once for each of its labels)"
                          if dataset_cls.TASK == "multilabel" else "")
            sections += _section("Class balance per split",
                                 f"Images per class{each_label}; largest / smallest class = "
                                 f"{ratio:.2f}.", balance)
            _bar_plot(balance[splits], "images", "Class balance per split",
                      tmp / "class_balance.png")
        sizes = table.groupby(["height", "width"]).size().rename("images").reset_index()
        figures.update(min_height=int(table["height"].min()), max_height=int(table["height"].max()),
                       min_width=int(table["width"].min()), max_width=int(table["width"].max()))
        sections += _section("Image sizes", f"{len(sizes)} distinct sizes (height x width).",
                             sizes.sort_values("images", ascending=False).head(10)
                             .set_index(["height", "width"]))
        _size_plot(sizes, tmp / "image_sizes.png")
        overall = split_statistics(table, "all", bands)
        moments = pd.DataFrame({"mean": overall.mean, "std": overall.std, "min": overall.min,
                                "max": overall.max}, index=pd.Index(bands, name="band"))
        if overall.hist is not None:
            moments[["p2", "p50", "p98"]] = overall.percentiles([2, 50, 98])
        sections += _section("Band statistics (all images)",
                             "Exact over every valid pixel; percentiles from the histograms.",
                             moments)
        _band_histograms(table, overall, bands, tmp / "band_histograms.png")
        signatures = (_segmentation_signatures(table, classes, bands) if segmentation
                      else _classification_signatures(table, classes, bands))
        sections += _section("Mean spectral signature per class",
                             "Mean stored value of each band over the pixels of each class.",
                             signatures)
        _signature_plot(signatures, tmp / "spectral_signatures.png")
        if segmentation:
            objects = _object_sizes(table, classes)
            figures.update({f"objects_{c}": int(objects.loc[c, "objects"]) for c in classes})
            sections += _section("Objects per class",
                                 "4-connected regions of one class; sizes in pixels, binned by "
                                 "powers of two (the median is its bin's range).",
                                 objects.drop(columns="size_hist"))
            _object_size_plot(objects, tmp / "object_sizes.png")
        sections += ["## Plots", ""] + [f"![{name}]({name}.png)" for name in names] + [""]
        markdown = "\n".join(sections)
        (tmp / SUMMARY_FILE).write_text(markdown)
    return EdaReport(out_dir=out_dir, images={n: out_dir / f"{n}.png" for n in names},
                     markdown_path=out_dir / SUMMARY_FILE, markdown=markdown, figures=figures)


# ----- tables -----------------------------------------------------------------------------------


def _class_membership(table: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """Images x classes, True where the image carries the class: its one label, or one of
    the names of a multi-label `label_str` ("a|b")."""
    names = table["label_str"].fillna("").str.split(LABEL_SEPARATOR)
    return pd.DataFrame({c: names.map(lambda carried, c=c: c in carried) for c in classes},
                        index=table.index)


def _class_counts(table: pd.DataFrame, classes: tuple[str, ...], splits: list[str]
                  ) -> pd.DataFrame:
    counts = _class_membership(table, classes).groupby(table["split"]).sum().T
    counts = counts.reindex(index=list(classes), columns=splits, fill_value=0)
    counts["all"] = counts.sum(axis=1)
    counts.index.name = "class"
    return counts.astype(int)


def _coverage(table: pd.DataFrame, classes: tuple[str, ...], splits: list[str]) -> pd.DataFrame:
    columns = [class_column(c, "pixels") for c in classes]
    out = pd.DataFrame(index=pd.Index(classes, name="class"))
    for split in [*splits, "all"]:
        rows = table if split == "all" else table[table["split"] == split]
        pixels = rows[columns].to_numpy(np.float64).sum(axis=0)
        out[split] = pixels / max(pixels.sum(), 1)
    out["in_images"] = (table[columns].to_numpy() > 0).mean(axis=0)
    return out


def _classification_signatures(table: pd.DataFrame, classes: tuple[str, ...],
                               bands: tuple[str, ...]) -> pd.DataFrame:
    """Pixel-weighted mean of each band over the images of each class (multi-label: every
    image carrying it)."""
    out = pd.DataFrame(index=pd.Index(classes, name="class"), columns=list(bands), dtype=float)
    membership = _class_membership(table, classes)
    for cls in classes:
        rows = table[membership[cls]]
        for band in bands:
            count = rows[band_column(band, "count")].to_numpy(np.float64)
            mean = rows[band_column(band, "mean")].to_numpy(np.float64)
            out.loc[cls, band] = (count * mean).sum() / count.sum() if count.sum() else np.nan
    return out


def _segmentation_signatures(table: pd.DataFrame, classes: tuple[str, ...],
                             bands: tuple[str, ...]) -> pd.DataFrame:
    """Mean of each band over the pixels labelled with each class."""
    out = pd.DataFrame(index=pd.Index(classes, name="class"), columns=list(bands), dtype=float)
    for cls in classes:
        pixels = table[class_column(cls, "pixels")].sum()
        for band in bands:
            total = table[class_column(cls, f"{band}_sum")].sum()
            out.loc[cls, band] = total / pixels if pixels else np.nan
    return out


def _object_sizes(table: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    rows = []
    for cls in classes:
        hist = np.stack(table[class_column(cls, "object_size_hist")].to_list()).sum(axis=0)
        total = int(hist.sum())
        median = "-"
        if total:
            k = int(np.searchsorted(np.cumsum(hist), (total + 1) // 2))
            median = f"{2**k}-{2**(k + 1) - 1}"
        rows.append({"class": cls, "objects": total,
                     "objects_per_image": total / len(table), "median_size": median,
                     "size_hist": hist})
    return pd.DataFrame(rows).set_index("class")


def _section(title: str, text: str, frame: pd.DataFrame) -> list[str]:
    return [f"## {title}", "", text, "", _markdown_table(frame), ""]


def _markdown_table(frame: pd.DataFrame) -> str:
    index_names = [n or "" for n in frame.index.names]
    header = index_names + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, row in frame.iterrows():
        keys = key if isinstance(key, tuple) else (key,)
        cells = [str(k) for k in keys] + [_cell(v) for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)


# ----- plots ------------------------------------------------------------------------------------


def _bar_plot(frame: pd.DataFrame, ylabel: str, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(max(6, len(frame) * 0.9), 4))
    width = 0.8 / max(len(frame.columns), 1)
    x = np.arange(len(frame))
    for k, column in enumerate(frame.columns):
        ax.bar(x + k * width, frame[column].to_numpy(np.float64), width, label=str(column))
    ax.set_xticks(x + width * (len(frame.columns) - 1) / 2, frame.index, rotation=30,
                  ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    save_figure(fig, path)


def _size_plot(sizes: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 4))
    area = 20 + 180 * sizes["images"] / sizes["images"].max()
    ax.scatter(sizes["width"], sizes["height"], s=area)
    for row in sizes.itertuples():
        ax.annotate(str(row.images), (row.width, row.height), fontsize=7)
    ax.set_xlabel("width (px)")
    ax.set_ylabel("height (px)")
    ax.set_title("Image sizes (label: number of images)")
    save_figure(fig, path)


def _band_histograms(table: pd.DataFrame, overall: Any, bands: tuple[str, ...],
                     path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    if overall.hist is not None:
        edges = overall.hist_lo + overall.bin_width * np.arange(overall.hist.shape[1])
        for band, counts in zip(bands, overall.hist, strict=True):
            ax.step(edges, counts, where="post", label=band)
        ax.set_xlabel("stored value")
        ax.set_ylabel("pixels")
        ax.set_title("Per-band histograms (all images)")
    else:  # float data: no exact histogram, show how image means spread
        for band in bands:
            ax.hist(table[band_column(band, "mean")].dropna(), bins=50, histtype="step",
                    label=band)
        ax.set_xlabel("image mean")
        ax.set_ylabel("images")
        ax.set_title("Per-band distribution of image means")
    ax.set_yscale("log")
    ax.legend()
    save_figure(fig, path)


def _signature_plot(signatures: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(len(signatures.columns))
    for cls, row in signatures.iterrows():
        ax.plot(x, row.to_numpy(np.float64), marker="o", label=str(cls))
    ax.set_xticks(x, signatures.columns)
    ax.set_ylabel("mean stored value")
    ax.set_title("Mean spectral signature per class")
    ax.legend()
    save_figure(fig, path)


def _object_size_plot(objects: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    occupied = np.flatnonzero(np.stack(objects["size_hist"].to_list()).sum(axis=0))
    last = min(int(occupied[-1]) + 2 if len(occupied) else 1, OBJECT_SIZE_BINS)
    for cls, row in objects.iterrows():
        if row["objects"]:
            ax.step(2.0 ** np.arange(last), row["size_hist"][:last], where="post",
                    label=str(cls))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("object size (pixels)")
    ax.set_ylabel("objects")
    ax.set_title("Object sizes per class")
    ax.legend()
    save_figure(fig, path)
