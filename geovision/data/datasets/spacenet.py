"""SpaceNet 1-3: building footprints (SN1 Rio; SN2 Vegas, Paris, Shanghai, Khartoum) and road
centre lines (SN3) over WorldView chips, labels as GeoJSON.

Layouts after extracting the training tarballs into the root (only the training tarballs carry
labels, so only they are fetched):

    SN1  <root>/3band/3band_AOI_1_RIO_img<n>.tif              RGB, 8 bit, EPSG:4326
         <root>/geojson/Geo_AOI_1_RIO_img<n>.geojson          some files are empty (0 bytes)
    SN2  <root>/AOI_<k>_<City>_Train/RGB-PanSharpen/RGB-PanSharpen_AOI_<k>_<City>_img<n>.tif
         <root>/AOI_<k>_<City>_Train/geojson/buildings/buildings_AOI_<k>_<City>_img<n>.geojson
    SN3  <root>/.../AOI_<k>_<City>/PS-RGB/..._img<n>.tif       roads in .../geojson_roads/
    <root>/geovision_masks/<dataset>/<image stem>.tif          rendered here (see below)

Images and label files are paired by the official image id (`_img<n>.` in both names), as the
other folders' exact names vary between releases. Each image's footprints are reprojected
from the GeoJSON's CRS (CRS84 unless the file names one) to the image's, and rasterised once
into a single-band GeoTIFF on the image grid (`rasterio.features.rasterize`, fill 0, burn 1,
`all_touched=False`: roads become one-pixel centre lines). An empty GeoJSON is an empty
mask; an image without a label file is left out, as in the official training sets.

The tarballs are public objects of the `spacenet-dataset` bucket (no credentials); they are
fetched through S3IO (s5cmd, `--no-sign-request`) and verified against their published md5.
`object_url` is the one place that turns a bucket key into what is fetched; `PUBLIC_URL` is
the same object over plain HTTPS, for a browser.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from geovision.data.datasets.coco import MASKS_DIR
from geovision.data.datasets.common import (
    IMAGENET_MEANS,
    IMAGENET_STD_DEVS,
    RGB_BANDS,
    DownloadedDataset,
)
from geovision.data.download import Resource
from geovision.data.image_io import ImageReadError, open_pixels
from geovision.data.splits import SplitSettings, stratified_splits
from geovision.io.atomic import atomic_file

BUCKET = "s3://spacenet-dataset/spacenet"
PUBLIC_URL = "https://spacenet-dataset.s3.amazonaws.com/spacenet"
IMAGE_ID = re.compile(r"_img(\d+)\.")
AOI_FOLDER = re.compile(r"(?:^|/)AOI_(\d+)_")
GEOJSON_CRS = "OGC:CRS84"  # the GeoJSON default: longitude, latitude on WGS 84


def object_url(dataset_id: str, tarball: str) -> str:
    """The S3 URL of a tarball of the bucket (key `spacenet/<dataset_id>/tarballs/<tarball>`)."""
    return f"{BUCKET}/{dataset_id}/tarballs/{tarball}"


def tarball(dataset_id: str, name: str, md5: str, size: int | None = None) -> Resource:
    return Resource(object_url(dataset_id, name), name, md5=md5, size=size, public=True)


def read_features(path: Path) -> tuple[list[dict], str]:
    """(geometries, their CRS) of a GeoJSON file; an empty file has none. Features without a
    geometry are skipped."""
    text = path.read_text().strip()
    if not text:
        return [], GEOJSON_CRS
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImageReadError(f"{path} is not valid GeoJSON ({exc}); extract the label tarball "
                             "again.") from exc
    crs = ((data.get("crs") or {}).get("properties") or {}).get("name") or GEOJSON_CRS
    if "CRS84" in crs:
        crs = GEOJSON_CRS
    features = data.get("features", []) if data.get("type") == "FeatureCollection" else [data]
    return [f["geometry"] for f in features if f.get("geometry")], crs


def rasterise_labels(geojson: Path, image: Path, out: Path,
                     chip_size: tuple[int, int] | None = None) -> None:
    """Burn the footprints of `geojson` (1 on 0) onto `image`'s grid, or onto the grid
    resampled to `chip_size` (height, width), and write it to `out` as a GeoTIFF."""
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.features import rasterize
    from rasterio.warp import transform_geom

    with rasterio.open(image) as src:
        crs, transform, height, width = src.crs, src.transform, src.height, src.width
    if chip_size is not None and chip_size != (height, width):
        # the grid the image is resampled to: same bounds, pixels scaled to fit
        transform = transform @ Affine.scale(width / chip_size[1], height / chip_size[0])
        height, width = chip_size
    geometries, source_crs = read_features(geojson)
    if geometries and crs is not None and CRS.from_user_input(source_crs) != crs:
        geometries = [transform_geom(source_crs, crs, g) for g in geometries]
    mask = np.zeros((height, width), dtype=np.uint8)
    if geometries:
        mask = rasterize([(g, 1) for g in geometries], out_shape=(height, width), fill=0,
                         transform=transform, all_touched=False, dtype="uint8")
    with atomic_file(out) as tmp, rasterio.open(
            tmp, "w", driver="GTiff", height=height, width=width, count=1, dtype="uint8",
            crs=crs, transform=transform, compress="deflate") as dst:
        dst.write(mask[None])


class SpaceNet(DownloadedDataset):
    """A SpaceNet challenge's training chips with binary masks from their GeoJSON labels.

    Split: stratified random by AOI (city), seeded; the challenges' test chips have no public
    labels and are not fetched. Subclasses name the tarballs, the image product (folder) and
    the label folder.
    """

    TASK = "segmentation"
    BANDS = RGB_BANDS
    # Not published; ImageNet statistics until computed on the train split (see Inria).
    MEANS = IMAGENET_MEANS
    STD_DEVS = IMAGENET_STD_DEVS
    IMAGE_PRODUCT: ClassVar[str] = ""
    LABEL_FOLDER: ClassVar[str] = ""
    # Chips vary by a pixel in size within a product; shards hold one size, so images are
    # resampled to this (height, width), and masks rasterised on the resampled grid.
    CHIP_SIZE: ClassVar[tuple[int, int] | None] = None

    @classmethod
    def download_and_extract(cls, root: str | os.PathLike) -> Path:
        """Download and unpack the tarballs, then rasterise the masks (skipped when done)."""
        root = super().download_and_extract(root)
        cls.pairs(root)
        return root

    @classmethod
    def _files(cls, root: Path, folder: str, suffix: str) -> dict[tuple[int, int], Path]:
        """{(aoi, image id): path} of the files in every `folder` under root."""
        found: dict[tuple[int, int], Path] = {}
        for path in sorted(root.glob(f"**/{folder}/*{suffix}")):
            rel = path.relative_to(root).as_posix()
            if rel.startswith(MASKS_DIR + "/"):
                continue
            number = IMAGE_ID.search(path.name)
            aoi = AOI_FOLDER.search(rel)
            if number is None or aoi is None:
                raise ValueError(f"{cls.NAME}: {path} has no AOI_<n>_ folder or _img<n>. image "
                                 "id in its path; the files do not follow the published "
                                 "layout.")
            found[(int(aoi[1]), int(number[1]))] = path
        return found

    @classmethod
    def pairs(cls, root: Path) -> list[tuple[tuple[int, int], str, str]]:
        """((aoi, id), image path, mask path) of every labelled chip, sorted by AOI and id;
        masks are rasterised where missing."""
        root = Path(root)
        images = cls._files(root, cls.IMAGE_PRODUCT, ".tif")
        labels = cls._files(root, cls.LABEL_FOLDER, ".geojson")
        if not images:
            raise FileNotFoundError(f"{cls.NAME}: no {cls.IMAGE_PRODUCT}/*.tif chips under "
                                    f"{root}. Run download_and_extract(root) or extract the "
                                    "training tarballs there.")
        out_dir = root / MASKS_DIR / cls.NAME
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        todo = [key for key in sorted(images) if key in labels]
        for key in tqdm(todo, desc=f"{cls.NAME} masks", unit="mask", leave=True,
                        disable=len(todo) < 1000):
            image = images[key]
            mask = out_dir / f"{image.stem}.tif"
            if not mask.is_file():
                rasterise_labels(labels[key], image, mask, cls.CHIP_SIZE)
            rows.append((key, image.relative_to(root).as_posix(),
                         mask.relative_to(root).as_posix()))
        return rows

    @classmethod
    def segmentation_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        rows = cls.pairs(Path(root))
        aois = [key[0] for key, _, _ in rows]
        return pd.DataFrame({
            "image_path": [image for _, image, _ in rows],
            "mask_path": [mask for _, _, mask in rows],
            "split": stratified_splits(aois, splits.val_split, splits.test_split,
                                       splits.random_seed),
        })

    @classmethod
    def read_image(cls, path: str | os.PathLike) -> np.ndarray:
        """The chip as stored, or resampled bilinearly to CHIP_SIZE where it differs."""
        if cls.CHIP_SIZE is None:
            return super().read_image(path)
        import rasterio
        from rasterio.enums import Resampling

        try:
            with open_pixels(path) as src:
                if src.count != len(cls.BANDS):
                    raise ImageReadError(f"Image {path} has {src.count} bands but {cls.NAME} "
                                         f"expects {len(cls.BANDS)}.")
                return src.read(out_shape=(src.count, *cls.CHIP_SIZE),
                                resampling=Resampling.bilinear)
        except rasterio.RasterioIOError as exc:
            raise ImageReadError(f"Cannot read image {path}: {exc}. It is missing or corrupt: "
                                 "extract the tarball again.") from exc


class SpaceNet1(SpaceNet):
    """SpaceNet 1 (Rio de Janeiro) buildings on the 3-band 8-bit RGB chips, resampled to the
    chips' usual 406 x 439."""

    NAME = "spacenet1"
    CLASS_NAMES = ("background", "building")
    IMAGE_PRODUCT = "3band"
    LABEL_FOLDER = "geojson"
    CHIP_SIZE = (406, 439)
    # md5s as published with torchgeo's SpaceNet1; size as listed in the bucket.
    RESOURCES = (
        tarball("SN1_buildings", "SN1_buildings_train_AOI_1_Rio_3band.tar.gz",
                "279e334a2120ecac70439ea246174516", size=2_571_888_708),
        tarball("SN1_buildings", "SN1_buildings_train_AOI_1_Rio_geojson_buildings.tar.gz",
                "b6e02fbd727f252ea038abe4f77a77b3"),
    )

    @classmethod
    def _files(cls, root: Path, folder: str, suffix: str) -> dict[tuple[int, int], Path]:
        # SN1's files sit in bare 3band/ and geojson/ folders: the AOI is in the file name
        found: dict[tuple[int, int], Path] = {}
        for path in sorted((root / folder).glob(f"*{suffix}")):
            number = IMAGE_ID.search(path.name)
            if number is None or "AOI_1_RIO" not in path.name:
                raise ValueError(f"{cls.NAME}: {path} is not named ..._AOI_1_RIO_img<n>"
                                 f"{suffix}; the files do not follow the published layout.")
            found[(1, int(number[1]))] = path
        return found


class SpaceNet2(SpaceNet):
    """SpaceNet 2 buildings in Vegas, Paris, Shanghai and Khartoum on the 650 x 650
    pan-sharpened RGB chips (16-bit files holding 11-bit values)."""

    NAME = "spacenet2"
    CLASS_NAMES = ("background", "building")
    IMAGE_PRODUCT = "RGB-PanSharpen"
    LABEL_FOLDER = "geojson/buildings"
    SCALE = 2047.0  # 11-bit WorldView-3 values: [0, 2047] -> [0, 1]
    # md5s as published with torchgeo's SpaceNet2 (not re-derived here).
    RESOURCES = tuple(
        tarball("SN2_buildings", f"SN2_buildings_train_AOI_{aoi}.tar.gz", md5)
        for aoi, md5 in (("2_Vegas", "307da318bc43aaf9481828f92eda9126"),
                         ("3_Paris", "4db469e3e4e7bf025368ad730aec0888"),
                         ("4_Shanghai", "986129eecd3e842ebc2063d43b407adb"),
                         ("5_Khartoum", "462b4bf0466c945d708befabd4d9115b")))


class SpaceNet3(SpaceNet):
    """SpaceNet 3 roads in the same four cities: road centre lines rasterised one pixel wide
    on the 1300 x 1300 pan-sharpened RGB chips (PS-RGB, 11-bit values)."""

    NAME = "spacenet3"
    CLASS_NAMES = ("background", "road")
    IMAGE_PRODUCT = "PS-RGB"
    LABEL_FOLDER = "geojson_roads"
    SCALE = 2047.0
    # md5s as published with torchgeo's SpaceNet3 (not re-derived here): imagery + roads.
    RESOURCES = tuple(
        tarball("SN3_roads", f"SN3_roads_train_AOI_{aoi}{part}.tar.gz", md5)
        for aoi, md5s in (("2_Vegas", ("06317255b5e0c6df2643efd8a50f22ae",
                                       "4acf7846ed8121db1319345cfe9fdca9")),
                          ("3_Paris", ("c13baf88ee10fe47870c303223cabf82",
                                       "abc8199d4c522d3a14328f4f514702ad")),
                          ("4_Shanghai", ("ef3de027c3da734411d4333bee9c273b",
                                          "f1db36bd17b2be2281f5f7d369e9e25d")),
                          ("5_Khartoum", ("46f327b550076f87babb5f7b43f27c68",
                                          "d969693760d59401a84bd9215375a636")))
        for part, md5 in zip(("", "_geojson_roads_speed"), md5s, strict=True))
