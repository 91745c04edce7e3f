"""HySpecNet-11k: 11,483 EnMAP L2A hyperspectral patches (128 x 128 px, 224 bands, 30 m) for
self-supervised pretraining and compression; there are no labels.

Layout after extraction (the mirror publishes ten patch archives and one of splits, each
archive holding a `hyspecnet-11k/` folder; each is unpacked into a folder of its own name so
they do not replace one another; the single official tarball unpacks to the same tree):

    <root>/hyspecnet-11k-01/hyspecnet-11k/patches/<tile>/<tile>-<patch>/
        <tile>-<patch>-SPECTRAL_IMAGE.TIF      int16 reflectance x 10,000, 224 bands,
                                               nodata -32768 (+ QL_* masks, THUMBNAIL.jpg)
    <root>/hyspecnet-11k-splits/hyspecnet-11k/splits/{easy,hard}/{train,val,test}.csv
        one patch a line: <tile>/<tile>-<patch>/<tile>-<patch>-DATA.npy, relative to
        patches/. The -DATA.npy files are made by the authors' preprocessing and are not
        shipped: each line is mapped to the patch's SPECTRAL_IMAGE.TIF.

<tile> is `ENMAP01-____L2A-DT<datatake>_<yyyymmddTHHMMSS>Z_<tile>_V<version>_<processed>Z`,
<patch> `Y<rows>_X<cols>`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from geovision.data.datasets.common import DownloadedDataset, classification_frame, read_lines
from geovision.data.download import Resource
from geovision.data.image_io import ImageReadError, open_pixels
from geovision.data.splits import SplitSettings

NUM_BANDS = 224
# Water-vapour absorption bands (1-based): 127-141 and 161-167, dropped by default (the
# authors' FAQ), leaving 202.
WATER_VAPOUR_BANDS = (*range(127, 142), *range(161, 168))
DEFAULT_BANDS = tuple(b for b in range(1, NUM_BANDS + 1) if b not in WATER_VAPOUR_BANDS)
IMAGE_SUFFIX = "-SPECTRAL_IMAGE.TIF"
LISTED_SUFFIX = "-DATA.npy"
REFLECTANCE_SCALE = 10000.0
MIRROR = ("https://hf.co/datasets/torchgeo/hyspecnet/resolve/"
          "13e110422a6925cbac0f11edff610219b9399227/")
# md5s as published with torchgeo's HySpecNet11k mirror (not re-derived here).
MD5S = {
    "hyspecnet-11k-01.tar.gz": "974aae9197006727b42ec81796049efe",
    "hyspecnet-11k-02.tar.gz": "f80574485f835b8a263b6c64076c0c62",
    "hyspecnet-11k-03.tar.gz": "6bc1de573f97fa4a75b79719b9270cb3",
    "hyspecnet-11k-04.tar.gz": "2463dc10653cb8be10d44951307c5e7d",
    "hyspecnet-11k-05.tar.gz": "16c1bd9e684673e741c0849bd015c988",
    "hyspecnet-11k-06.tar.gz": "8eef16b67d71af6eb4bc836d294fe3c4",
    "hyspecnet-11k-07.tar.gz": "f61f0e7d6b05c861e69026b09130a5d6",
    "hyspecnet-11k-08.tar.gz": "19d390bc9e61b85e7d765f3077984976",
    "hyspecnet-11k-09.tar.gz": "197ff47befe5b9de88be5e1321c5ce5d",
    "hyspecnet-11k-10.tar.gz": "9e674cca126a9d139d6584be148d4bac",
    "hyspecnet-11k-splits.tar.gz": "94fad9e3c979c612c29a045406247d6c",
}


class HySpecNet11k(DownloadedDataset):
    """HySpecNet-11k patches for self-supervised recipes (moco, vae), which ignore labels.

    TASK is classification with the single class "unlabelled", so the patches go through
    the same statistics, shards and loaders as every dataset. Split: official, the "easy"
    lists (patch-wise 70 / 20 / 10); `hyspecnet11k_hard` reads the tile-wise "hard" lists.
    `val_split` and `test_split` are unused. Patches not in the lists are left out.

    BAND_NUMBERS (1-based, in file order) are the bands read: by default the 202 without the
    water-vapour bands; `with_bands` makes a variant with others (e.g. all 224).
    """

    NAME = "hyspecnet11k"
    TASK = "classification"
    CLASS_NAMES = ("unlabelled",)
    BAND_NUMBERS: ClassVar[tuple[int, ...]] = DEFAULT_BANDS
    BANDS = tuple(f"B{n}" for n in DEFAULT_BANDS)
    SCALE = REFLECTANCE_SCALE
    NODATA: ClassVar[int] = -32768
    # No per-band statistics are published (torchgeo's datamodule only divides by 10,000,
    # which SCALE does): the statistics asset computes them from the patches, and training
    # standardises with those.
    MEANS = None
    STD_DEVS = None
    STRATEGY: ClassVar[str] = "easy"
    RESOURCES = tuple(Resource(MIRROR + name, name, md5=md5, into=name[: -len(".tar.gz")])
                      for name, md5 in MD5S.items())

    @classmethod
    def with_bands(cls, band_numbers: Sequence[int], name: str | None = None
                   ) -> type[HySpecNet11k]:
        """A variant of this dataset reading `band_numbers` (1-based, 1..224)."""
        numbers = tuple(int(b) for b in band_numbers)
        bad = [b for b in numbers if not 1 <= b <= NUM_BANDS]
        if bad or not numbers or len(set(numbers)) != len(numbers):
            raise ValueError(f"band numbers {list(band_numbers)[:10]} must be distinct, "
                             f"within 1..{NUM_BANDS}.")
        attributes = {"NAME": name or f"{cls.NAME}_{len(numbers)}bands",
                      "BAND_NUMBERS": numbers, "BANDS": tuple(f"B{n}" for n in numbers)}
        return type(f"{cls.__name__}_{len(numbers)}", (cls,), attributes)

    @classmethod
    def patch_files(cls, root: Path) -> dict[str, str]:
        """{patch file name: path relative to root} of every SPECTRAL_IMAGE.TIF under root."""
        found: dict[str, str] = {}
        for path in sorted(root.glob(f"**/hyspecnet-11k/patches/*/*/*{IMAGE_SUFFIX}")):
            found.setdefault(path.name, path.relative_to(root).as_posix())
        return found

    @classmethod
    def classification_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        root = Path(root)
        lists = sorted(root.glob(f"**/hyspecnet-11k/splits/{cls.STRATEGY}"))
        if not lists:
            raise FileNotFoundError(f"{cls.NAME}: no hyspecnet-11k/splits/{cls.STRATEGY}/ "
                                    f"folder under {root}. Run download_and_extract(root) or "
                                    "extract the published archives there.")
        files = cls.patch_files(root)
        rows = []
        for split in ("train", "val", "test"):
            for line in read_lines(lists[0] / f"{split}.csv", f"{cls.NAME} split list"):
                name = Path(line).name
                if not name.endswith(LISTED_SUFFIX):
                    raise ValueError(f"{cls.NAME}: split line {line!r} does not name a "
                                     f"...{LISTED_SUFFIX} patch file.")
                tif = name[: -len(LISTED_SUFFIX)] + IMAGE_SUFFIX
                if tif not in files:
                    raise FileNotFoundError(f"{cls.NAME}: {tif} (listed in {split}.csv as "
                                            f"{line}) is not under {root}. The extraction is "
                                            "incomplete: run download_and_extract(root) again.")
                rows.append((files[tif], split))
        frame = pd.DataFrame(rows, columns=["image_path", "split"]).sort_values(
            "image_path", kind="stable").reset_index(drop=True)
        if frame["image_path"].duplicated().any():
            duplicated = frame["image_path"][frame["image_path"].duplicated()].iloc[0]
            raise ValueError(f"{cls.NAME}: {duplicated} is listed in more than one split.")
        return classification_frame(frame["image_path"], ["unlabelled"] * len(frame),
                                    cls.CLASS_NAMES, frame["split"], cls.NAME)

    @classmethod
    def read_image(cls, path: str | os.PathLike) -> np.ndarray:
        """The patch's BAND_NUMBERS as (bands, 128, 128) int16, in stored units."""
        import rasterio

        try:
            with open_pixels(path) as src:
                if src.count != NUM_BANDS:
                    raise ImageReadError(f"Image {path} has {src.count} bands; HySpecNet-11k "
                                         f"patches have {NUM_BANDS}.")
                return src.read(list(cls.BAND_NUMBERS))
        except rasterio.RasterioIOError as exc:
            raise ImageReadError(f"Cannot read patch {path}: {exc}. It is missing or corrupt: "
                                 "extract the archive again.") from exc


class HySpecNet11kHard(HySpecNet11k):
    """HySpecNet-11k with the tile-wise "hard" split (no tile in two splits)."""

    NAME = "hyspecnet11k_hard"
    STRATEGY = "hard"
