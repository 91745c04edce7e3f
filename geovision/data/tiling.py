"""Cutting scenes into chips: a chip index (one row per window) and a dataset that reads it.

Large scenes (a 5000 x 5000 orthophoto, a satellite tile) do not fit a model whole. A chip
index lists the windows to cut, as a DataFrame that can be saved and shared like a dataset's
`df`, so the same chips come back in every run. `ChipDataset` reads those windows straight
from the GeoTIFFs, and `geovision.data.stitching.stitch` puts chip predictions back together.

Grid: chips of `chip_size` pixels start every `chip_size - overlap` pixels from the top-left
corner. Where the last chip would run past the scene, `border` decides: "pad" keeps the grid
and fills the part outside the scene (with the file's nodata value, else 0); "shift" moves the
last chip back so it ends at the scene's edge (it then overlaps its neighbour more).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, default_collate, get_worker_info
from tqdm import tqdm

from geovision.errors import ConfigError

BORDERS = ("pad", "shift")
WINDOW_COLUMNS = ("row_off", "col_off", "height", "width", "scene_height", "scene_width")
CARRIED_COLUMNS = ("mask_path", "label_idx", "split")  # copied from a dataset's split_df
NO_TARGET = -1  # the target of a chip whose index carries neither masks nor labels


class TilingError(ConfigError):
    """A chip grid or chip index that cannot be built or read as asked."""


def pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """`value` as (rows, cols): one int means the same for both."""
    if isinstance(value, int | np.integer):
        return int(value), int(value)
    values = tuple(int(v) for v in value)
    if len(values) != 2:
        raise TilingError(f"{name}={value!r}: give one int or (rows, cols).")
    return values  # type: ignore[return-value]


def grid_offsets(length: int, chip: int, overlap: int, border: str) -> np.ndarray:
    """Start offsets of the chips along one axis of `length` pixels."""
    if length <= chip:
        if length < chip and border == "shift":
            raise TilingError(
                f"chip size {chip} is larger than the scene ({length} px) and border='shift' "
                "cannot move a chip inside it: use border='pad' or a chip size of at most "
                f"{length}.")
        return np.zeros(1, dtype=np.int64)
    stride = chip - overlap
    count = math.ceil((length - chip) / stride) + 1
    offsets = np.arange(count, dtype=np.int64) * stride
    if border == "shift":
        offsets[-1] = length - chip  # the previous offset is < length - chip by the ceil
    return offsets


def check_grid(chip_size: tuple[int, int], overlap: tuple[int, int], border: str) -> None:
    if border not in BORDERS:
        raise TilingError(f"border={border!r}; use one of {BORDERS}.")
    for axis, chip, over in zip(("rows", "cols"), chip_size, overlap, strict=True):
        if chip < 1:
            raise TilingError(f"chip size {chip} ({axis}) must be at least 1 pixel.")
        if not 0 <= over < chip:
            raise TilingError(f"overlap {over} ({axis}) must be >= 0 and smaller than the chip "
                              f"size {chip}: chips must advance by at least one pixel.")


def _sources(df_or_paths: pd.DataFrame | Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per source with df_idx, image_path and whatever CARRIED_COLUMNS it has."""
    if isinstance(df_or_paths, pd.DataFrame):
        if "image_path" not in df_or_paths:
            raise TilingError("the DataFrame has no image_path column: pass a dataset's "
                              "split_df (absolute paths) or a list of image paths.")
        sources = df_or_paths.copy()
        if "df_idx" not in sources:
            sources.insert(0, "df_idx", sources.index.astype(np.int64))
        columns = ["df_idx", "image_path"] + [c for c in CARRIED_COLUMNS if c in sources]
        sources = sources[columns].reset_index(drop=True)
    else:
        paths = [str(p) for p in df_or_paths]
        sources = pd.DataFrame({"df_idx": np.arange(len(paths), dtype=np.int64),
                                "image_path": paths})
    for column in ("image_path", "mask_path"):
        if column in sources:
            relative = [p for p in sources[column] if not Path(p).is_absolute()]
            if relative:
                raise TilingError(f"{column} {relative[0]!r} is relative: chip indexes need "
                                  "absolute paths (use the dataset's split_df, not its df).")
    return sources


@contextmanager
def _gdal_env() -> Iterator[None]:
    import rasterio

    # GDAL lists the whole folder on every open to find sidecar files; scenes do not use them.
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        yield


def open_raster(path: str | os.PathLike) -> Any:
    """A rasterio dataset for reading, with an error that names the file when it fails."""
    import rasterio

    if not Path(path).is_file():
        raise TilingError(f"Scene file not found: {path}. Check the dataset root.")
    try:
        with _gdal_env():
            return rasterio.open(path)
    except rasterio.RasterioIOError as exc:
        raise TilingError(f"Cannot open scene {path} as a raster: {exc}. The file is corrupt "
                          "or not an image.") from exc


def _scene_size(path: str, mask_path: str | None) -> tuple[int, int]:
    with open_raster(path) as src:
        size = (src.height, src.width)
    if mask_path is not None:
        with open_raster(mask_path) as mask:
            if (mask.height, mask.width) != size:
                raise TilingError(f"Mask {mask_path} is {mask.height} x {mask.width} but its "
                                  f"image {path} is {size[0]} x {size[1]}; a mask must cover "
                                  "its image pixel for pixel.")
    return size


def chip_index(
    df_or_paths: pd.DataFrame | Sequence[str | os.PathLike],
    chip_size: int | Sequence[int],
    overlap: int | Sequence[int] = 0,
    border: str = "pad",
    nodata: float | None = None,
    max_nodata_fraction: float = 1.0,
    progress: bool = True,
) -> pd.DataFrame:
    """The windows that cut every source into chips, one row per chip.

    `df_or_paths` is a dataset's `split_df` (its df_idx, image_path and, where present,
    mask_path, label_idx and split are carried over) or a list of image paths (df_idx is then
    the position in the list). Columns: df_idx, image_path, [mask_path, label_idx, split],
    row_off, col_off, height, width (the window, in scene pixels; with border="pad" it may run
    past the scene), scene_height, scene_width. Rows are ordered by source, then row, then
    column; the index (0..n-1) is the chip_idx that ChipDataset returns.

    With `nodata` set, chips whose fraction of nodata pixels (pixels where every band equals
    `nodata`, plus padding outside the scene) exceeds `max_nodata_fraction` are dropped, and so
    are chips with no valid pixel at all. The scenes are read a band of rows at a time for this.
    """
    chip = pair(chip_size, "chip_size")
    over = pair(overlap, "overlap")
    check_grid(chip, over, border)
    if not 0 <= max_nodata_fraction <= 1:
        raise TilingError(f"max_nodata_fraction={max_nodata_fraction} must lie in [0, 1].")
    sources = _sources(df_or_paths)
    has_mask = "mask_path" in sources
    frames = []
    rows = tqdm(sources.itertuples(index=False), total=len(sources), desc="chip index",
                unit="scene", leave=True, disable=not progress)
    for source in rows:
        height, width = _scene_size(source.image_path, source.mask_path if has_mask else None)
        row_offs = grid_offsets(height, chip[0], over[0], border)
        col_offs = grid_offsets(width, chip[1], over[1], border)
        grid_r, grid_c = np.meshgrid(row_offs, col_offs, indexing="ij")
        keep = np.ones(grid_r.shape, dtype=bool)
        if nodata is not None:
            fraction = nodata_fractions(source.image_path, row_offs, col_offs, chip, nodata)
            keep = (fraction <= max_nodata_fraction) & (fraction < 1)
        frames.append(pd.DataFrame({
            **source._asdict(),
            "row_off": grid_r[keep], "col_off": grid_c[keep],
            "height": chip[0], "width": chip[1],
            "scene_height": height, "scene_width": width,
        }))
    columns = list(sources.columns) + list(WINDOW_COLUMNS)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=np.int64) for c in columns})
    chips = pd.concat(frames, ignore_index=True)[columns]
    for column in ("df_idx", *WINDOW_COLUMNS):
        chips[column] = chips[column].astype(np.int64)
    return chips


def nodata_fractions(path: str | os.PathLike, row_offs: np.ndarray, col_offs: np.ndarray,
                     chip: tuple[int, int], nodata: float) -> np.ndarray:
    """(len(row_offs), len(col_offs)) fraction of nodata pixels in each chip of the grid.

    Reads one band of chip rows at a time (bounded memory) and counts with prefix sums over
    the columns; pixels outside the scene count as nodata.
    """
    from rasterio.windows import Window

    fractions = np.empty((len(row_offs), len(col_offs)), dtype=np.float64)
    with open_raster(path) as src:
        height, width = src.height, src.width
        col_end = np.minimum(col_offs + chip[1], width)
        for i, row in enumerate(row_offs):
            rows = min(chip[0], height - int(row))
            band = src.read(window=Window(0, int(row), width, rows))
            missing = np.isnan(band) if np.isnan(nodata) else band == nodata
            per_column = missing.all(axis=0).sum(axis=0)
            prefix = np.concatenate([[0], np.cumsum(per_column)])
            inside = rows * (col_end - col_offs)
            counted = prefix[col_end] - prefix[col_offs] + (chip[0] * chip[1] - inside)
            fractions[i] = counted / (chip[0] * chip[1])
    return fractions


class _Handles:
    """Open rasterio datasets of this process, by path, least recently used closed first.

    A GDAL handle must not cross a fork or spawn: the handles are dropped when the object is
    pickled for a worker or finds itself in another process, and reopened on first use.
    """

    def __init__(self, max_open: int) -> None:
        self.max_open = max_open
        self._open: OrderedDict[str, Any] = OrderedDict()
        self._pid = os.getpid()

    def get(self, path: str) -> Any:
        if self._pid != os.getpid():  # inherited through fork: never use the parent's handles
            self._open = OrderedDict()
            self._pid = os.getpid()
        handle = self._open.get(path)
        if handle is None:
            handle = open_raster(path)
            self._open[path] = handle
            if len(self._open) > self.max_open:
                self._open.popitem(last=False)[1].close()
        else:
            self._open.move_to_end(path)
        return handle

    def close(self) -> None:
        if self._pid == os.getpid():
            for handle in self._open.values():
                handle.close()
        self._open = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        return {"max_open": self.max_open}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_open"])


def read_window(src: Any, row_off: int, col_off: int, height: int, width: int,
                fill_value: float, bands: int | Sequence[int] | None = None,
                apply: Callable[[np.ndarray], np.ndarray] | None = None,
                out: np.ndarray | None = None) -> np.ndarray:
    """The (C, height, width) window at (row_off, col_off) of an open raster ((height, width)
    for one band given as an int); `apply` maps the values read, then the part outside the
    scene is `fill_value` (padding in NumPy: GDAL's boundless reads are ten times slower).
    `out`, an array of that shape and the raster's dtype, is filled and returned instead of
    a new array (no `apply` then): a batch read chip by chip into one buffer is not copied
    again to be stacked."""
    from rasterio.windows import Window

    rows = min(height, src.height - row_off)
    cols = min(width, src.width - col_off)
    if rows <= 0 or cols <= 0:
        raise TilingError(f"window at row {row_off}, col {col_off} lies outside {src.name} "
                          f"({src.height} x {src.width}); rebuild the chip index.")
    window = Window(col_off, row_off, cols, rows)
    if out is not None:
        if apply is not None:
            raise TilingError("read_window: `apply` makes a new array; pass it or `out`.")
        if rows == height and cols == width:
            return src.read(bands, window=window, out=out)
        out[...] = fill_value
        out[..., :rows, :cols] = src.read(bands, window=window)
        return out
    values = src.read(bands, window=window)
    if apply is not None:
        values = apply(values)
    if rows == height and cols == width:
        return values
    padded = np.full((*values.shape[:-2], height, width), fill_value, dtype=values.dtype)
    padded[..., :rows, :cols] = values
    return padded


class ChipDataset(Dataset):
    """Map-style dataset over a chip index: returns (image, target, chip_idx).

    image is the (C, h, w) window in the file's dtype, or what `sample_transform` makes of it;
    target is the mask window (h, w) decoded by `mask_map` when the index has mask_path, else
    the source's label_idx when it has one (each chip inherits its scene's label), else -1;
    chip_idx is the chip's label in `chips.index` (`chips.loc[chip_idx, "df_idx"]` is the
    source row of the dataset's df). Outside the scene, images are padded with `fill_value`
    (None: each file's nodata value, else 0) and masks with `mask_fill` (after `mask_map`,
    which gets the stored values of every band, (C, h, w), and returns (h, w) class indices,
    like GeoDataset.decode_mask; without it the first band is taken as indices).

    Each process opens a file once, lazily, and keeps up to `max_open` files open; a
    DataLoader batch is read through `__getitems__` in file order (source, row, column).
    """

    def __init__(self, chips: pd.DataFrame, sample_transform: Callable | None = None,
                 fill_value: float | None = None, mask_fill: int = 0,
                 mask_map: Callable[[np.ndarray], np.ndarray] | None = None,
                 max_open: int = 32) -> None:
        missing = [c for c in ("df_idx", "image_path", *WINDOW_COLUMNS) if c not in chips]
        if missing:
            raise TilingError(f"chip index lacks columns {missing}; build it with chip_index.")
        if chips.index.has_duplicates:
            raise TilingError("chip index has duplicate index values; chip_idx must be unique "
                              "(use chips.reset_index(drop=True)).")
        self.chips = chips
        self.sample_transform = sample_transform
        self.fill_value = fill_value
        self.mask_fill = mask_fill
        self.mask_map = mask_map
        self._handles = _Handles(max_open)
        self._chip_idx = chips.index.to_numpy(dtype=np.int64)
        self._paths = chips["image_path"].astype(str).tolist()
        self._windows = chips[list(WINDOW_COLUMNS[:4])].to_numpy(dtype=np.int64)
        self._mask_paths = chips["mask_path"].astype(str).tolist() if "mask_path" in chips \
            else None
        self._labels = chips["label_idx"].astype(int).tolist() if "label_idx" in chips \
            else None
        # file order: chips of one source together, top to bottom, left to right
        source = pd.factorize(chips["image_path"], sort=True)[0]
        order = np.lexsort((self._windows[:, 1], self._windows[:, 0], source))
        self._rank = np.empty(len(chips), dtype=np.int64)
        self._rank[order] = np.arange(len(chips))

    @classmethod
    def from_dataset(cls, dataset: Any, chip_size: int | Sequence[int],
                     overlap: int | Sequence[int] = 0, border: str = "pad",
                     nodata: float | None = None, max_nodata_fraction: float = 1.0,
                     mask_map: Callable[[np.ndarray], np.ndarray] | None = None,
                     progress: bool = True) -> ChipDataset:
        """Chips of a GeoDataset's split, with its sample transform (so the tuples match the
        dataset's); padded mask pixels get its IGNORE_INDEX (else 0). Mask windows are decoded
        by the dataset's `decode_mask` (0/255, colour codes, ...) unless `mask_map` is given,
        exactly as its whole mask files are."""
        chips = chip_index(dataset.split_df, chip_size, overlap, border, nodata,
                           max_nodata_fraction, progress)
        ignore = getattr(dataset, "IGNORE_INDEX", None)
        return cls(chips, dataset.sample_transform, mask_fill=0 if ignore is None else ignore,
                   mask_map=mask_map or getattr(dataset, "decode_mask", None))

    def __len__(self) -> int:
        return len(self._chip_idx)

    def _position(self, index: int) -> int:
        n = len(self._chip_idx)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} chips")
        return index % n

    def read_raw(self, index: int) -> tuple[np.ndarray, Any, int]:
        """The stored chip at position `index`: (image window, mask window / label / -1,
        chip_idx)."""
        position = self._position(index)
        row_off, col_off, height, width = (int(v) for v in self._windows[position])
        src = self._handles.get(self._paths[position])
        fill = self.fill_value if self.fill_value is not None else (src.nodata or 0)
        image = read_window(src, row_off, col_off, height, width, fill)
        if self._mask_paths is not None:
            mask_src = self._handles.get(self._mask_paths[position])
            target = read_window(mask_src, row_off, col_off, height, width, self.mask_fill,
                                 None if self.mask_map else 1, self.mask_map)
        elif self._labels is not None:
            target = self._labels[position]
        else:
            target = NO_TARGET
        return image, target, int(self._chip_idx[position])

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, Any, int]]:
        positions = [self._position(int(i)) for i in indices]
        samples: list[Any] = [None] * len(positions)
        for k in sorted(range(len(positions)), key=lambda k: self._rank[positions[k]]):
            image, target, chip_idx = self.read_raw(positions[k])
            if self.sample_transform is not None:
                image, target = self.sample_transform(image, target)
            samples[k] = (image, target, chip_idx)
        return samples

    def close(self) -> None:
        """Close this process's open files (they reopen on the next read)."""
        self._handles.close()


def collate_chips(batch: Sequence[tuple[Any, Any, int]]) -> list[Any]:
    """DataLoader collate_fn for chips: default_collate's result, built faster in the main
    process.

    torch allocates each batch afresh and pays a page fault per 4 KiB; NumPy's allocator
    reuses memory, so stacking a batch of 256 px chips takes a fraction of the time. In
    worker processes default_collate is kept: it stacks straight into shared memory.
    """
    if get_worker_info() is not None:
        return default_collate(batch)
    images, targets, chip_idx = zip(*batch, strict=True)
    return [_stack(images), _stack(targets), torch.tensor(chip_idx, dtype=torch.int64)]


def _stack(values: Sequence[Any]) -> torch.Tensor:
    first = values[0]
    if isinstance(first, np.ndarray | torch.Tensor):
        arrays = [v.numpy() if isinstance(v, torch.Tensor) else v for v in values]
        return torch.from_numpy(np.stack(arrays))
    return default_collate(list(values))
