"""What the dataset modules share: how they are acquired, class-name spelling, decoding of the
image and mask encodings found in published datasets, and split-list parsing."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from geovision.data.base import GeoDataset
from geovision.data.download import Resource, download_and_extract, require_manual_files
from geovision.data.image_io import ImageReadError
from geovision.errors import DataError, MissingDataError

RGB_BANDS = ("red", "green", "blue")
# Published ImageNet statistics of RGB images scaled to [0, 1] (as used by torchvision's
# pretrained weights). The right values for photos drawn from ImageNet (Imagenette) or
# similar photos (VOC, Pets); for RGB aerial imagery without published statistics they are
# the default that matches ImageNet-pretrained weights, labelled as such where used.
IMAGENET_MEANS = (0.485, 0.456, 0.406)
IMAGENET_STD_DEVS = (0.229, 0.224, 0.225)


class DownloadedDataset(GeoDataset):
    """A dataset fetched from its published URLs (RESOURCES) with checksums."""

    RESOURCES: ClassVar[tuple[Resource, ...]] = ()

    @classmethod
    def download_and_extract(cls, root: str | os.PathLike) -> Path:
        """Download, verify and unpack RESOURCES into `root` (resumable; skipped when done)."""
        return download_and_extract(cls.RESOURCES, root)


class ManualDataset(GeoDataset):
    """A dataset behind a registration form or a cloud bucket: the user puts it in place.

    MANUAL_LAYOUTS lists alternative sets of paths (relative to root); one complete set means
    the data is there. MANUAL_INSTRUCTIONS says what to fetch and where to put it ({root} is
    filled in).
    """

    MANUAL_LAYOUTS: ClassVar[tuple[tuple[str, ...], ...]] = ()
    MANUAL_INSTRUCTIONS: ClassVar[str] = ""

    @classmethod
    def download_and_extract(cls, root: str | os.PathLike) -> Path:
        """Check that the manually downloaded files are in place; say how otherwise."""
        return require_manual_files(cls.NAME, root, cls.MANUAL_LAYOUTS,
                                    cls.MANUAL_INSTRUCTIONS.format(root=Path(root)))

    @classmethod
    def missing_data_error(cls, root: Path, missing: Path) -> MissingDataError:
        """The error a df builder raises when the manual download is not (fully) in place."""
        return MissingDataError(f"{cls.NAME}: {missing} not found. "
                                + cls.MANUAL_INSTRUCTIONS.format(root=root))


class RgbImages:
    """Mixin for datasets of 8-bit photos: every file decodes to 3 bands.

    Published photo collections hold a few grayscale, CMYK, RGBA or palette files, and files
    whose content is PNG behind a .jpg name; Pillow decodes by content and all become RGB.
    """

    @classmethod
    def read_image(cls, path: str | os.PathLike) -> np.ndarray:
        return read_rgb(path)


def snake_case(name: str) -> str:
    """Geovision's spelling of a published class name: "French horn" -> "french_horn",
    "AnnualCrop" -> "annual_crop", "multi-unit_residential" -> "multi_unit_residential"."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """A photo as a (3, H, W) uint8 array, whatever its stored mode."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"Image file not found: {path}. Check the dataset root or re-run "
                             "download_and_extract.")
    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
    except Exception as exc:  # decoders raise many types for corrupt or truncated files
        raise ImageReadError(f"Cannot decode image {path}: {exc}. The file is corrupt or "
                             "truncated: delete it and download the dataset again.") from exc
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def decode_binary_mask(stored: np.ndarray, source: str) -> np.ndarray:
    """0/255 object mask values (C, H, W) -> (H, W) uint8 0/1 (values >= 128 are the object).

    Published binary masks are single-band, or three identical bands; the threshold keeps
    stray values from resampled or re-encoded copies on the nearer side.
    """
    if any(not np.array_equal(stored[0], band) for band in stored[1:]):
        raise ImageReadError(f"Mask {source} has {len(stored)} different bands; a binary mask "
                             "needs one band (or identical bands) of 0 / 255.")
    return (stored[0] >= 128).astype(np.uint8)


def map_codes(codes: np.ndarray, mapping: dict[int, int], path: str | os.PathLike,
              described: str) -> np.ndarray:
    """Stored label codes (0..255) -> class indices through `mapping`, as uint8.

    A code outside `mapping` raises ImageReadError naming the file, the codes and `described`
    (the encoding the file should follow).
    """
    lookup = np.full(256, -1, dtype=np.int16)
    for code, index in mapping.items():
        lookup[code] = index
    mask = lookup[codes]
    if (mask < 0).any():
        bad = sorted(set(np.unique(codes[mask < 0]).tolist()))
        raise ImageReadError(f"Mask {path} holds codes {bad[:10]}; expected {described}.")
    return mask.astype(np.uint8)


def read_lines(path: Path, what: str) -> list[str]:
    """Non-empty, stripped lines of a list file, without '#' comments."""
    if not path.is_file():
        raise MissingDataError(f"{what} {path} not found: fetch the dataset first (`geovision "
                               "datasets prepare NAME`) or put its published files under "
                               f"{path.parent}.")
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def require_files(root: Path, paths: Iterable[str], name: str) -> None:
    """Refuse a listed sample whose file is absent, naming it (a partial extraction)."""
    missing = [p for p in paths if not (root / p).is_file()]
    if missing:
        raise MissingDataError(f"{name}: {len(missing)} listed files are missing, e.g. "
                               f"{root / missing[0]}. The extraction is incomplete: run "
                               "download_and_extract(root) again.")


def class_index(names: Sequence[str], class_names: Sequence[str], name: str) -> np.ndarray:
    """Indices of `names` in `class_names`, refusing unknown names."""
    lookup = {n: i for i, n in enumerate(class_names)}
    unknown = sorted(set(names) - set(lookup))
    if unknown:
        raise DataError(f"{name}: class names {unknown[:5]} are not in CLASS_NAMES; the files "
                        "do not follow the published layout.")
    return np.array([lookup[n] for n in names], dtype=np.int64)


def classification_frame(image_paths: Sequence[str], label_str: Sequence[str],
                         class_names: Sequence[str], split: Sequence[str],
                         name: str) -> pd.DataFrame:
    """The contract's classification df, rows in the given order."""
    return pd.DataFrame({
        "image_path": list(image_paths),
        "label_str": list(label_str),
        "label_idx": class_index(label_str, class_names, name),
        "split": np.asarray(split, dtype=object),
    })

