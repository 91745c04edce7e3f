"""Reading images and masks from disk into NumPy, with errors that name the file."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from geovision.errors import DataError

RASTER_SUFFIXES = {".tif", ".tiff"}

# GDAL lists the whole folder on every open to find sidecar files (.ovr, .aux.xml); in a folder
# of thousands of tiles that halves the read rate, and dataset files do not rely on sidecars.
# Set once for this process and its workers (an explicit user setting wins): a rasterio.Env
# around every read would cost a fifth of the read itself.
os.environ.setdefault("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")


class ImageReadError(DataError):
    """An image or mask file is missing, corrupt, truncated or of the wrong shape."""


def read_image(path: str | os.PathLike, expected_bands: int | None = None) -> np.ndarray:
    """Read an image as a (C, H, W) array in its stored dtype.

    GeoTIFFs go through rasterio (any band count and dtype); other formats through Pillow.
    `expected_bands` refuses files whose band count differs from the dataset's BANDS.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"Image file not found: {path}. Check the dataset root or re-run "
                             "download_and_extract.")
    try:
        if path.suffix.lower() in RASTER_SUFFIXES:
            array = _read_raster(path)
        else:
            array = _read_pillow(path)
            array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
            array = np.ascontiguousarray(array)
    except ImageReadError:
        raise
    except Exception as exc:  # decoders raise many types for corrupt or truncated files
        raise ImageReadError(f"Cannot decode image {path}: {exc}. The file is corrupt or "
                             "truncated: delete it and download the dataset again.") from exc
    if expected_bands is not None and array.shape[0] != expected_bands:
        raise ImageReadError(f"Image {path} has {array.shape[0]} bands but the dataset expects "
                             f"{expected_bands}. Check that the file belongs to this dataset.")
    return array


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a mask file's stored values as (C, H, W): GeoTIFFs as all their bands, other
    formats through Pillow, palette PNGs keeping their indices (not their colours). Datasets
    turn these values into class indices with their `decode_mask`."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"Mask file not found: {path}. Check the dataset root.")
    try:
        if path.suffix.lower() in RASTER_SUFFIXES:
            return _read_raster(path)
        array = _read_pillow(path, keep_palette=True)
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(f"Cannot decode mask {path}: {exc}. The file is corrupt or "
                             "truncated.") from exc
    return np.ascontiguousarray(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))


def _read_raster(path: Path) -> np.ndarray:
    with open_pixels(path) as src:
        return src.read()


@contextmanager
def open_pixels(path: str | os.PathLike) -> Iterator[Any]:
    """Open a raster with rasterio for its pixels only.

    GDAL then skips the file's georeferencing, whose coordinate reference system (built
    through PROJ on every open) was half the cost of reading a 4 x 256 x 256 GeoTIFF. The
    pixels are the same; code that needs the CRS or transform opens the file as usual.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():  # of course it has none: we asked GDAL not to look
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        src = rasterio.open(path, GEOREF_SOURCES="NONE")
    with src:
        yield src


def _read_pillow(path: Path, keep_palette: bool = False) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        if not keep_palette and img.mode not in ("L", "RGB", "RGBA", "I;16", "I", "F"):
            img = img.convert("RGB")
        return np.asarray(img)
