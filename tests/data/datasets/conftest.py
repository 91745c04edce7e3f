"""Miniature copies of each dataset's published layout (real file names, formats, band counts
and label encodings; a few tiny files), and one contract check every dataset goes through."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from geovision.data.base import GeoDataset, multi_hot
from geovision.data.splits import ROW_SPLITS, SplitSettings
from geovision.data.temporal import TimeSeries, parse_dates
from geovision.errors import DataError

RNG_SEED = 0


# ----- writers ----------------------------------------------------------------------------


def rng_for(path: Path) -> np.random.Generator:
    """Content depends on the file name only, so every build is identical."""
    return np.random.default_rng([RNG_SEED, *path.as_posix().encode()[-40:]])


def write_photo(path: Path, size: tuple[int, int] = (12, 10), mode: str = "RGB",
                fmt: str = "JPEG") -> None:
    """A small photo (width, height) in `mode`, saved as `fmt` whatever the file suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = rng_for(path).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(array, "RGB").convert(mode).save(path, format=fmt)


def write_geotiff(path: Path, array: np.ndarray, pixel_size: float = 0.3) -> None:
    import rasterio
    from rasterio.transform import from_origin

    path.parent.mkdir(parents=True, exist_ok=True)
    count, height, width = array.shape
    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=count,
                       dtype=array.dtype.name, crs="EPSG:32633",
                       transform=from_origin(500_000, 5_000_000, pixel_size, pixel_size)) as dst:
        dst.write(array)


def write_png(path: Path, array: np.ndarray, palette: list[int] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array.astype(np.uint8), "P" if palette else "L")
    if palette:
        image.putpalette(palette)
    image.save(path)


def random_uint8(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    return rng_for(path).integers(0, 256, size=shape, dtype=np.uint8)


def binary_map(path: Path, size: int) -> np.ndarray:
    """A 0 / 255 object map with objects on the left half."""
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[:, : size // 2] = 255
    mask[rng_for(path).random((size, size)) < 0.1] = 0
    return mask


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map (class i -> the colour built from its bits)."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


# ----- layouts ----------------------------------------------------------------------------

IMAGENETTE_WNIDS = ("n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
                    "n03394916", "n03417042", "n03425413", "n03445777", "n03888605")


def build_imagenette(root: Path, folder: str) -> Path:
    """10 classes x (4 train + 2 val) JPEGs; one train image is grayscale, as some are."""
    base = root / folder
    rows = []
    for c, wnid in enumerate(IMAGENETTE_WNIDS):
        for split, numbers in (("train", range(4)), ("val", range(4, 6))):
            for n in numbers:
                rel = f"{split}/{wnid}/{wnid}_{1000 + 7 * n + c}.JPEG"
                write_photo(base / rel, mode="L" if (c, n) == (5, 0) else "RGB")
                rows.append((rel, wnid, wnid, wnid, wnid, wnid, split == "val"))
    pd.DataFrame(rows, columns=["path", "noisy_labels_0", "noisy_labels_1", "noisy_labels_5",
                                "noisy_labels_25", "noisy_labels_50", "is_valid"]).to_csv(
        base / "noisy_imagenette.csv", index=False)
    return root


# (file breed, class id 1..37, species 1 cat / 2 dog, breed id within species)
PET_BREEDS = (("Abyssinian", 1, 1, 1), ("american_bulldog", 2, 2, 1), ("Bengal", 6, 1, 2),
              ("yorkshire_terrier", 37, 2, 25))
PETS_HEADER = ("#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n#SPECIES: 1:Cat 2:Dog\n"
               "#BREED ID: 1-25:Cat 1:12:Dog\n"
               "#All images with 1st letter as captial are cat images\n"
               "#images with small first letter are dog images\n")


def build_pets(root: Path) -> Path:
    """4 breeds x 5 images (4 trainval, 1 test), list files, trimaps, and the quirks:
    a PNG behind a .jpg name, a CMYK JPEG, a stray .mat file and AppleDouble trimaps."""
    lines = {"trainval": [], "test": []}
    for breed, class_id, species, breed_id in PET_BREEDS:
        for n in range(1, 6):
            sample_id = f"{breed}_{n}"
            quirk = {("Bengal", 2): ("RGB", "PNG"), ("american_bulldog", 3): ("CMYK", "JPEG")}
            mode, fmt = quirk.get((breed, n), ("RGB", "JPEG"))
            write_photo(root / "images" / f"{sample_id}.jpg", mode=mode, fmt=fmt)
            trimap = np.full((10, 12), 2, dtype=np.uint8)  # background
            trimap[2:8, 3:9] = 3  # border
            trimap[3:7, 4:8] = 1  # pet
            write_png(root / "annotations" / "trimaps" / f"{sample_id}.png", trimap)
            (root / "annotations" / "trimaps" / f"._{sample_id}.png").write_bytes(b"\0\5\x16\7")
            lines["test" if n == 5 else "trainval"].append(
                f"{sample_id} {class_id} {species} {breed_id}")
    (root / "images" / "Abyssinian_1.mat").write_bytes(b"MATLAB 5.0 MAT-file")
    for name, entries in lines.items():
        (root / "annotations" / f"{name}.txt").write_text("\n".join(entries) + "\n")
    (root / "annotations" / "list.txt").write_text(
        PETS_HEADER + "\n".join(lines["trainval"] + lines["test"]) + "\n")
    return root


VOC_TRAIN = ("2007_000032", "2007_000039", "2007_000063", "2007_000068", "2007_000121",
             "2007_000129", "2007_000170", "2007_000241", "2007_000250", "2007_000256")
VOC_VAL = ("2007_000033", "2007_000042", "2007_000061", "2007_000123")


def build_voc(root: Path) -> Path:
    """14 segmentation images (10 train, 4 val) with palette masks holding 255 (void)."""
    base = root / "VOCdevkit" / "VOC2012"
    for i, image_id in enumerate(VOC_TRAIN + VOC_VAL):
        write_photo(base / "JPEGImages" / f"{image_id}.jpg")
        mask = np.zeros((10, 12), dtype=np.uint8)
        mask[2:8, 2:10] = 255  # void border around the object
        mask[3:7, 3:9] = 1 + i % 20
        write_png(base / "SegmentationClass" / f"{image_id}.png", mask, voc_palette())
    write_photo(base / "JPEGImages" / "2008_000002.jpg")  # detection-only: no mask, not listed
    lists = base / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("\n".join(VOC_TRAIN) + "\n")
    (lists / "val.txt").write_text("\n".join(VOC_VAL) + "\n")
    (lists / "trainval.txt").write_text("\n".join(sorted(VOC_TRAIN + VOC_VAL)) + "\n")
    return root


INRIA_CITIES = ("austin", "chicago", "kitsap", "tyrol-w", "vienna")


def build_inria(root: Path, tiles: int = 8) -> Path:
    """5 cities x `tiles` tiles (RGB GeoTIFF, 0/255 gt), plus an unlabelled test city."""
    base = root / "AerialImageDataset"
    for city in INRIA_CITIES:
        for n in range(1, tiles + 1):
            image = base / "train" / "images" / f"{city}{n}.tif"
            write_geotiff(image, random_uint8(image, (3, 8, 8)))
            gt = base / "train" / "gt" / f"{city}{n}.tif"
            write_geotiff(gt, binary_map(gt, 8)[None])
    test_image = base / "test" / "images" / "bellingham1.tif"
    write_geotiff(test_image, random_uint8(test_image, (3, 8, 8)))
    return root


MASS_IDS = {"train": ("22678915_15", "22678930_15", "22678945_15", "22678960_15"),
            "val": ("22828990_15", "22829005_15"), "test": ("23429080_15", "23429095_15")}


def build_massachusetts(root: Path, layout: str) -> Path:
    """Tiles (RGB TIFF .tiff) and 0/255 maps (.tif) in the author's or the mirror's layout;
    the mirror's maps are stored with three identical bands."""
    for split, ids in MASS_IDS.items():
        for tile in ids:
            if layout == "site":
                folder = {"train": "train", "val": "valid", "test": "test"}[split]
                image, label = root / folder / "sat" / f"{tile}.tiff", root / folder / "map"
            else:
                image, label = root / "tiff" / split / f"{tile}.tiff", root / "tiff" / (
                    f"{split}_labels")
            image.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(random_uint8(image, (8, 8, 3)), "RGB").save(image, format="TIFF")
            label.mkdir(parents=True, exist_ok=True)
            mask = binary_map(label / tile, 8)
            stored = Image.fromarray(mask, "L") if layout == "site" else Image.fromarray(
                np.stack([mask] * 3, axis=-1), "RGB")
            stored.save(label / f"{tile}.tif", format="TIFF")
    return root


POTSDAM_TRAIN = ("2_10", "2_11", "2_12", "3_10", "3_11", "3_12", "4_10", "4_11", "4_12", "5_10",
                 "5_11", "5_12", "6_7", "6_8", "6_9", "6_10", "6_11", "6_12", "7_7", "7_8", "7_9",
                 "7_10", "7_11", "7_12")
POTSDAM_TEST = ("2_13", "2_14", "3_13", "3_14", "4_13", "4_14", "4_15", "5_13", "5_14", "5_15",
                "6_13", "6_14", "6_15", "7_13")
# impervious, building, low vegetation, tree, car, clutter: one 1-pixel-high row each
POTSDAM_COLOURS = ((255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0),
                   (255, 0, 0))


def build_potsdam(root: Path) -> Path:
    """All 38 labelled tiles: R, G, B, IR GeoTIFFs and colour-coded label GeoTIFFs (one row of
    each class colour, slightly off-pure in one pixel as re-encoded copies are)."""
    for tile in POTSDAM_TRAIN + POTSDAM_TEST:
        image = root / "4_Ortho_RGBIR" / f"top_potsdam_{tile}_RGBIR.tif"
        write_geotiff(image, random_uint8(image, (4, 6, 6)), pixel_size=0.05)
        label = np.zeros((3, 6, 6), dtype=np.uint8)
        for row, colour in enumerate(POTSDAM_COLOURS):
            label[:, row, :] = np.array(colour, dtype=np.uint8)[:, None]
        label[:, 0, 0] = (250, 252, 249)  # near-white: still impervious
        write_geotiff(root / "5_Labels_all" / f"top_potsdam_{tile}_label.tif", label, 0.05)
    return root


EUROSAT_CLASSES = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
                   "Pasture", "PermanentCrop", "Residential", "River", "SeaLake")
EUROSAT_MS_FOLDER = "ds/images/remote_sensing/otherDatasets/sentinel_2/tif"


def eurosat_band_value(band_index: int) -> int:
    """The value band `band_index` (file order) holds, so tests can check the band order."""
    return 100 * (band_index + 1)


def build_eurosat(root: Path, variant: str) -> Path:
    """10 classes x 3 patches (16 x 16): 13-band uint16 GeoTIFFs or RGB JPEGs, with the split
    lists (which always name .jpg files)."""
    lists = {"train": [], "val": [], "test": []}
    for name in EUROSAT_CLASSES:
        for n, split in zip((1, 2, 3), ("train", "val", "test"), strict=True):
            stem = f"{name}_{n}"
            if variant == "ms":
                path = root / EUROSAT_MS_FOLDER / name / f"{stem}.tif"
                bands = np.stack([np.full((16, 16), eurosat_band_value(b), dtype=np.uint16)
                                  for b in range(13)])
                write_geotiff(path, bands, pixel_size=10)
            else:
                write_photo(root / "2750" / name / f"{stem}.jpg", size=(16, 16))
            lists[split].append(f"{stem}.jpg")
    for split, names in lists.items():
        (root / f"eurosat-{split}.txt").write_text("\n".join(names) + "\n")
    return root


BEN_BANDS = {"B01": 20, "B02": 120, "B03": 120, "B04": 120, "B05": 60, "B06": 60, "B07": 60,
             "B08": 120, "B8A": 60, "B09": 20, "B11": 60, "B12": 60}
BEN_PATCHES = {  # patch -> (split or None when left out of the lists, CLC label names)
    "S2A_MSIL2A_20170613T101031_0_45": ("train", ["Coniferous forest", "Mixed forest"]),
    "S2A_MSIL2A_20170613T101031_0_46": ("train", ["Sea and ocean"]),
    "S2A_MSIL2A_20170613T101031_1_45": ("train", ["Transitional woodland/shrub",
                                                  "Discontinuous urban fabric"]),
    "S2B_MSIL2A_20180204T094161_3_58": ("val", [
        "Land principally occupied by agriculture, with significant areas of natural "
        "vegetation", "Beaches, dunes, sands"]),
    "S2B_MSIL2A_20180204T094161_3_59": ("val", ["Pastures"]),
    "S2A_MSIL2A_20180413T095031_7_12": ("test", ["Water bodies", "Non-irrigated arable land"]),
    "S2B_MSIL2A_20171221T112459_12_80": (None, ["Coniferous forest"]),  # snow: not listed
}


def ben_band_array(band: str, size: int) -> np.ndarray:
    """A band holding a horizontal ramp of the band's number x 100 (+ column)."""
    base = 100 * (list(BEN_BANDS).index(band) + 1)
    return (base + np.tile(np.arange(size, dtype=np.uint16) * (120 // size), (size, 1)))[None]


def build_bigearthnet(root: Path) -> Path:
    """Patches with 12 band files at their native sizes and label JSONs; split CSVs with the
    S2 and S1 patch names."""
    base = root / "BigEarthNet-v1.0"
    lists = {"train": [], "val": [], "test": []}
    for i, (patch, (split, labels)) in enumerate(BEN_PATCHES.items()):
        for band, size in BEN_BANDS.items():
            write_geotiff(base / patch / f"{patch}_{band}.tif",
                          ben_band_array(band, size).astype(np.uint16), pixel_size=1200 / size)
        meta = {"labels": labels,
                "coordinates": {"ulx": 500000 + 1200 * i, "uly": 4000000, "lrx": 501200 + 1200 * i,
                                "lry": 3998800},
                "projection": 'PROJCS["WGS 84 / UTM zone 33N"]',
                "tile_source": f"{patch[:26]}_N9999_R022_T33UUP_20170613T101033",
                "acquisition_date": "2017-06-13 10:10:31"}
        (base / patch / f"{patch}_labels_metadata.json").write_text(json.dumps(meta))
        if split is not None:
            lists[split].append(f"{patch},S1A_IW_GRDH_1SDV_20170613T165043_33UUP_{i}_{i}")
    for split, lines in lists.items():
        (root / f"bigearthnet-{split}.csv").write_text("\n".join(lines) + "\n")
    return root


FMOW_CATEGORIES = ("airport", "crop_field", "multi-unit_residential", "zoo")


def build_fmow(root: Path) -> Path:
    """4 categories: 4 train locations x 2 views and 1 val location x 2 views each; every view
    has its _rgb.jpg, _rgb.json and the pan-sharpened _msrgb.jpg (not used)."""
    for c, category in enumerate(FMOW_CATEGORIES):
        for folder, ids in (("train", range(4)), ("val", range(10, 11))):
            for location in ids:
                loc = f"{category}_{location}"
                for view in range(2):
                    stem = root / folder / category / loc / f"{loc}_{view}"
                    write_photo(stem.with_name(stem.name + "_rgb.jpg"), size=(14, 12))
                    write_photo(stem.with_name(stem.name + "_msrgb.jpg"), size=(14, 12))
                    meta = {"bounding_boxes": [{"box": [2, 2, 8, 6], "category": category,
                                                "ID": c}],
                            "gsd": 0.5, "utm": "33U", "timestamp": "2016-01-01T10:00:00Z",
                            "cloud_cover": 0, "off_nadir_angle_dbl": 10.0}
                    stem.with_name(stem.name + "_rgb.json").write_text(json.dumps(meta))
    return root


def compressed_rle(mask: np.ndarray) -> dict:
    """A mask as COCO's compressed RLE, as stored in json (counts a str, size [h, w])."""
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}


COCO_SIZE = (10, 12)  # height, width of every miniature image
# image id -> annotations as (category id, segmentation, iscrowd, area)
COCO_TRAIN = {
    9: [(1, [[1, 1, 5, 1, 5, 4, 1, 4]], 0, 1200.0),          # person: rows 1-3, cols 1-4
        (18, [[3, 2, 8, 2, 8, 6, 3, 6]], 0, 1500.0)],        # dog overlapping it
    25: [(5, {"size": [10, 12], "counts": [2, 3, 115]}, 1, 3.0),  # crowd: column 0, rows 2-4
         (25, [[0, 0, 2, 2], [6, 5, 10, 5, 10, 8, 6, 8]], 0, 12.0)],  # a 2-point part first
    30: [(90, "compressed", 0, 9.0)],                        # toothbrush as compressed RLE
    34: [],                                                  # no annotations
    36: [(5, [[0, 6, 4, 6, 4, 10, 0, 10]], 0, 1800.0)],      # airplane: rows 6-9, cols 0-3
    42: [(1, [[6, 0, 12, 0, 12, 3, 6, 3]], 0, 1400.0)],
}
COCO_VAL = {
    139: [(62, [[2, 2, 6, 2, 6, 6, 2, 6]], 0, 16.0)],         # chair
    285: [(23, [[0, 0, 12, 0, 12, 10, 0, 10]], 0, 120.0)],    # bear over the whole image
    632: [],
}


def coco_compressed_mask() -> np.ndarray:
    mask = np.zeros(COCO_SIZE, dtype=np.uint8)
    mask[6:9, 8:11] = 1
    return mask


def coco_json(images: dict[int, list], categories: list[dict], first_ann_id: int,
              file_name: Callable[[int], str], size: tuple[int, int] = COCO_SIZE) -> dict:
    """An instances-style COCO json for `images` (id -> [(category, segmentation, iscrowd,
    area)])."""
    anns, ann_id = [], first_ann_id
    for image_id, entries in images.items():
        for category, segmentation, iscrowd, area in entries:
            if segmentation == "compressed":
                segmentation = compressed_rle(coco_compressed_mask())
            anns.append({"id": ann_id, "image_id": image_id, "category_id": category,
                         "segmentation": segmentation, "area": area, "bbox": [0, 0, 1, 1],
                         "iscrowd": iscrowd})
            ann_id += 1
    return {"info": {"year": 2017}, "licenses": [{"id": 1, "name": "CC BY", "url": ""}],
            "images": [{"id": i, "file_name": file_name(i), "height": size[0],
                        "width": size[1], "license": 1} for i in images],
            "annotations": anns, "categories": categories}


def build_coco(root: Path) -> Path:
    """train2017 (6 images) and val2017 (3) JPEGs with instances_*.json over the 80 real
    categories: polygons, a crowd uncompressed RLE, a compressed RLE, overlapping instances,
    a polygon list whose first part has 4 numbers, and images without annotations."""
    from geovision.data.datasets.coco import COCO_CATEGORIES

    categories = [{"id": c, "name": n, "supercategory": "thing"} for c, n in COCO_CATEGORIES]
    (root / "annotations").mkdir(parents=True)
    for folder, images, first in (("train2017", COCO_TRAIN, 1), ("val2017", COCO_VAL, 900)):
        for image_id in images:
            write_photo(root / folder / f"{image_id:012d}.jpg", size=COCO_SIZE[::-1])
        data = coco_json(images, categories, first, lambda i: f"{i:012d}.jpg")
        (root / "annotations" / f"instances_{folder}.json").write_text(json.dumps(data))
    (root / "annotations" / "captions_train2017.json").write_text("{}")  # shipped, unused
    return root


CROWDAI_SIZE = (12, 12)  # the real tiles are 300 x 300
CROWDAI = {"train": {0: [[[1, 1, 5, 1, 5, 5, 1, 5]], [[3, 3, 9, 3, 9, 9, 3, 9]]], 1: [],
                     2: [[[0, 0, 12, 0, 12, 2, 0, 2]]], 3: [[[6, 6, 12, 6, 12, 12, 6, 12]]],
                     4: [[[0, 8, 4, 8, 4, 12, 0, 12]]]},
           "val": {60317: [[[2, 2, 4, 2, 4, 4, 2, 4]]], 60318: []}}


def build_crowdai(root: Path) -> Path:
    """train (5 tiles) and val (2) with annotation.json (category 100) and a smaller
    annotation-small.json listing the first three tiles of each."""
    categories = [{"id": 100, "name": "building", "supercategory": "building"}]
    for folder, images in CROWDAI.items():
        first = 1 if folder == "train" else 1000
        entries = {i: [(100, polygon, 0, 16.0) for polygon in polygons]
                   for i, polygons in images.items()}
        for image_id in images:
            write_photo(root / folder / "images" / f"{image_id:012d}.jpg",
                        size=CROWDAI_SIZE[::-1])
        full = coco_json(entries, categories, first, lambda i: f"{i:012d}.jpg", CROWDAI_SIZE)
        (root / folder / "annotation.json").write_text(json.dumps(full))
        small = dict(list(entries.items())[:3])
        (root / folder / "annotation-small.json").write_text(json.dumps(
            coco_json(small, categories, first, lambda i: f"{i:012d}.jpg", CROWDAI_SIZE)))
    return root


SN_ORIGIN = (-43.7, -22.9)  # lon, lat of the top-left corner of every miniature chip
SN_PIXEL = 4.5e-6  # degrees (about 0.5 m)


def write_chip(path: Path, array: np.ndarray, origin: tuple[float, float] = SN_ORIGIN) -> None:
    """A SpaceNet chip: a GeoTIFF in EPSG:4326 (lon / lat degrees), as published."""
    import rasterio
    from rasterio.transform import from_origin

    path.parent.mkdir(parents=True, exist_ok=True)
    count, height, width = array.shape
    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=count,
                       dtype=array.dtype.name, crs="EPSG:4326",
                       transform=from_origin(*origin, SN_PIXEL, SN_PIXEL)) as dst:
        dst.write(array)


def pixel_box(rows: tuple[float, float], cols: tuple[float, float],
              origin: tuple[float, float] = SN_ORIGIN) -> list[list[float]]:
    """A closed ring (lon, lat, 0) around pixel rows [r0, r1) and columns [c0, c1), its edges a
    quarter pixel inside, so rasterising it burns exactly those pixels."""
    (r0, r1), (c0, c1) = rows, cols
    ys, xs = (r0 + 0.25, r1 - 0.25), (c0 + 0.25, c1 - 0.25)
    lon = [origin[0] + x * SN_PIXEL for x in xs]
    lat = [origin[1] - y * SN_PIXEL for y in ys]
    return [[lon[0], lat[0], 0.0], [lon[1], lat[0], 0.0], [lon[1], lat[1], 0.0],
            [lon[0], lat[1], 0.0], [lon[0], lat[0], 0.0]]


def feature_collection(geometries: list[dict], crs: str | None = None) -> str:
    data: dict = {"type": "FeatureCollection",
                  "features": [{"type": "Feature", "properties": {"building_id": i},
                                "geometry": g} for i, g in enumerate(geometries)]}
    if crs is not None:
        data["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(data)


def to_web_mercator(ring: list[list[float]]) -> list[list[float]]:
    from rasterio.warp import transform

    xs, ys = transform("EPSG:4326", "EPSG:3857", [p[0] for p in ring], [p[1] for p in ring])
    return [[x, y] for x, y in zip(xs, ys, strict=True)]


# SN1 chip sizes vary by a pixel, as published; (rows, cols) of each chip's one building
SN1_CHIPS = {1: ((406, 439), None), 2: ((406, 438), ((10, 20), (30, 60))),
             3: ((405, 439), None), 4: ((406, 439), ((100, 150), (200, 220))),
             5: ((406, 439), ((0, 5), (0, 5))), 6: ((406, 439), ((300, 310), (400, 430)))}


def build_spacenet1(root: Path) -> Path:
    """3band RGB chips (406 x 438/439, 405 x 439, uint8) and their geojsons: two empty (0 bytes)
    files, 3-D polygons in CRS84, and one file in EPSG:3857 that must be reprojected."""
    for n, (shape, box) in SN1_CHIPS.items():
        image = root / "3band" / f"3band_AOI_1_RIO_img{n}.tif"
        write_chip(image, random_uint8(image, (3, *shape)))
        label = root / "geojson" / f"Geo_AOI_1_RIO_img{n}.geojson"
        label.parent.mkdir(parents=True, exist_ok=True)
        if box is None:
            label.write_bytes(b"")
            continue
        ring = pixel_box(*box)
        if n == 6:
            geometries = [{"type": "Polygon", "coordinates": [to_web_mercator(ring)]}]
            label.write_text(feature_collection(geometries, crs="urn:ogc:def:crs:EPSG::3857"))
        else:  # chip 4 also has a feature without geometry, which is skipped
            geometries = [{"type": "Polygon", "coordinates": [ring]}] + ([None] if n == 4 else [])
            label.write_text(feature_collection(geometries, crs="urn:ogc:def:crs:OGC:1.3:CRS84"))
    (root / "8band").mkdir()  # the 8-band chips come in another tarball (not fetched)
    return root


SN_CITIES = ("2_Vegas", "3_Paris", "4_Shanghai", "5_Khartoum")


def build_spacenet2(root: Path) -> Path:
    """Per AOI: 5 RGB-PanSharpen chips (16 x 16, uint16 holding 11-bit values), a PAN product
    beside them, building geojsons for chips 1-4 (chip 5 has none: left out)."""
    for k, city in enumerate(SN_CITIES):
        base = root / f"AOI_{city}_Train"
        for n in (1, 2, 3, 4, 5):
            image = base / "RGB-PanSharpen" / f"RGB-PanSharpen_AOI_{city}_img{n}.tif"
            values = rng_for(image).integers(0, 2048, size=(3, 16, 16), dtype=np.uint16)
            write_chip(image, values)
            write_chip(base / "PAN" / f"PAN_AOI_{city}_img{n}.tif", values[:1])
            if n == 5:
                continue
            label = base / "geojson" / "buildings" / f"buildings_AOI_{city}_img{n}.geojson"
            label.parent.mkdir(parents=True, exist_ok=True)
            rings = [pixel_box((2 + k, 6 + k), (3, 9))] + ([pixel_box((10, 14), (10, 16))]
                                                            if n == 2 else [])
            label.write_text(feature_collection([{"type": "Polygon", "coordinates": [r]}
                                                 for r in rings]))
        (base / "summaryData").mkdir()
        (base / "summaryData" / f"AOI_{city}_Train_Building_Solutions.csv").write_text(
            "ImageId,BuildingId,PolygonWKT_Pix,PolygonWKT_Geo\n")
    return root


def build_spacenet3(root: Path) -> Path:
    """Two AOIs x 4 PS-RGB chips (16 x 16, uint16) with road LineStrings (even chips' files
    have no features)."""
    for city in SN_CITIES[:2]:
        base = root / f"AOI_{city}"
        for n in (1, 2, 3, 4):
            stem = f"SN3_roads_train_AOI_{city}"
            image = base / "PS-RGB" / f"{stem}_PS-RGB_img{n}.tif"
            write_chip(image, rng_for(image).integers(0, 2048, size=(3, 16, 16),
                                                      dtype=np.uint16))
            label = base / "geojson_roads" / f"{stem}_geojson_roads_img{n}.geojson"
            label.parent.mkdir(parents=True, exist_ok=True)
            row = SN_ORIGIN[1] - 8.5 * SN_PIXEL  # along the centres of pixel row 8
            line = [[SN_ORIGIN[0] + 0.5 * SN_PIXEL, row, 0.0],
                    [SN_ORIGIN[0] + 15.5 * SN_PIXEL, row, 0.0]]
            geometries = [{"type": "LineString", "coordinates": line}] if n % 2 else []
            label.write_text(feature_collection(geometries))
    return root


HSN_TILES = {  # tile -> patches; tiles A, B train, C val, D test in the hard lists
    "ENMAP01-____L2A-DT0000004950_20221103T162438Z_001_V010110_20221118T145147Z": 3,
    "ENMAP01-____L2A-DT0000004950_20221103T162443Z_002_V010110_20221118T145239Z": 3,
    "ENMAP01-____L2A-DT0000005179_20221105T031342Z_006_V010110_20221118T190420Z": 2,
    "ENMAP01-____L2A-DT0000005361_20221107T105702Z_012_V010110_20221119T002837Z": 3,
}
HSN_EASY = {"train": (0, 2, 3, 5, 6, 9), "val": (1, 7), "test": (4, 8)}  # patch numbers


def hsn_band_values(band: int, patch: int) -> np.ndarray:
    """Band `band` (1-based) of patch `patch`: 100 x band + patch, a column ramp added."""
    return (100 * band + patch + np.tile(np.arange(8, dtype=np.int16), (8, 1))).astype(np.int16)


def build_hyspecnet(root: Path) -> Path:
    """11 patches of 4 tiles (224-band int16 8 x 8 SPECTRAL_IMAGE.TIFs, deflate, nodata
    -32768, UTM, 30 m, with a QL_PIXELMASK beside each), one patch in each of the ten
    archive folders (the eleventh, in the last, is not listed); easy and hard split CSVs
    naming the -DATA.npy files."""
    import rasterio
    from rasterio.transform import from_origin

    listed: list[str] = []
    hard = {"train": [], "val": [], "test": []}
    patch = 0
    for t, (tile, count) in enumerate(HSN_TILES.items()):
        for p in range(count):
            name = f"{tile}-Y{p * 128:04d}{p * 128 + 127:04d}_X00000127"
            part = root / f"hyspecnet-11k-{min(patch + 1, 10):02d}" / "hyspecnet-11k" / "patches"
            folder = part / tile / name
            folder.mkdir(parents=True)
            bands = np.stack([hsn_band_values(b, patch) for b in range(1, 225)])
            with rasterio.open(folder / f"{name}-SPECTRAL_IMAGE.TIF", "w", driver="GTiff",
                               height=8, width=8, count=224, dtype="int16", nodata=-32768,
                               compress="deflate", interleave="band", crs="EPSG:32618",
                               transform=from_origin(300_000 + 3840 * t, 4_500_000, 30, 30)
                               ) as dst:
                dst.write(bands)
            write_geotiff(folder / f"{name}-QL_PIXELMASK.TIF", np.zeros((1, 8, 8), np.uint8))
            line = f"{tile}/{name}/{name}-DATA.npy"
            if patch < 10:
                listed.append(line)
                hard[("train", "train", "val", "test")[t]].append(line)
            patch += 1
    for strategy, lists in (("easy", {s: [listed[i] for i in ids]
                                      for s, ids in HSN_EASY.items()}), ("hard", hard)):
        folder = root / "hyspecnet-11k-splits" / "hyspecnet-11k" / "splits" / strategy
        folder.mkdir(parents=True)
        for split, lines in lists.items():
            (folder / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


# PASTIS-R: patch id -> (fold, S2 dates, S1A dates, S1D dates); ids as published (5 digits,
# not contiguous), two patches per fold, series of different lengths.
PASTIS_PATCHES = {10000: (1, 5, 6, 4), 10013: (1, 3, 4, 4), 20040: (2, 4, 5, 6),
                  20001: (2, 5, 3, 3), 30123: (3, 2, 6, 5), 30007: (3, 4, 4, 4),
                  40001: (4, 3, 5, 5), 40002: (4, 5, 6, 6), 10002: (5, 4, 3, 4),
                  20005: (5, 3, 4, 3)}
PASTIS_SIZE = 8


def pastis_dates(patch: int, count: int, first: str) -> dict[str, int]:
    """{index: yyyymmdd} as metadata.geojson stores them: every 12 days from `first`."""
    import datetime as dt

    start = dt.date.fromisoformat(first) + dt.timedelta(days=patch % 7)
    return {str(k): int((start + dt.timedelta(days=12 * k)).strftime("%Y%m%d"))
            for k in range(count)}


def pastis_s2_values(patch: int, date: int, band: int) -> int:
    """S2 reflectance x 10,000 that names its patch's fold, date and band."""
    return 1000 * (band + 1) + 10 * date + PASTIS_PATCHES[patch][0]


def build_pastis(root: Path) -> Path:
    """PASTIS-R.zip's tree: DATA_S2 (T, 10, 8, 8) int16, DATA_S1A / DATA_S1D (T, 3, 8, 8)
    float16, ANNOTATIONS/TARGET (3, 8, 8) uint8 with channel 0 the classes (void 19 in each
    patch's last row), ParcelIDs, metadata.geojson (one patch's dates as JSON text, as some
    exports write them), NORM_S2_patch.json."""
    folder = root / "PASTIS-R"
    for sub in ("DATA_S2", "DATA_S1A", "DATA_S1D", "ANNOTATIONS", "INSTANCE_ANNOTATIONS"):
        (folder / sub).mkdir(parents=True)
    features = []
    size = PASTIS_SIZE
    for patch, (fold, t2, t1a, t1d) in PASTIS_PATCHES.items():
        s2 = np.stack([np.stack([np.full((size, size), pastis_s2_values(patch, d, b), np.int16)
                                 for b in range(10)]) for d in range(t2)])
        s2[:, :, 0, 0] += np.arange(t2, dtype=np.int16)[:, None]  # not constant per band
        np.save(folder / "DATA_S2" / f"S2_{patch}.npy", s2)
        for sensor, count in (("S1A", t1a), ("S1D", t1d)):
            rng = rng_for(folder / f"{sensor}_{patch}")
            np.save(folder / f"DATA_{sensor}" / f"{sensor}_{patch}.npy",
                    rng.normal(-12, 3, (count, 3, size, size)).astype(np.float16))
        semantic = np.zeros((size, size), np.uint8)
        semantic[:4, :4] = patch % 18 + 1  # a parcel of one of the crop classes
        semantic[4:7, 2:8] = 1  # meadow
        semantic[7] = 19  # void
        np.save(folder / "ANNOTATIONS" / f"TARGET_{patch}.npy",
                np.stack([semantic, (semantic > 0).astype(np.uint8), np.zeros_like(semantic)]))
        np.save(folder / "ANNOTATIONS" / f"ParcelIDs_{patch}.npy",
                (semantic > 0).astype(np.int64) * patch)
        np.save(folder / "INSTANCE_ANNOTATIONS" / f"INSTANCES_{patch}.npy",
                (semantic > 0).astype(np.int64))
        dates = {"dates-S2": pastis_dates(patch, t2, "2018-09-17"),
                 "dates-S1A": pastis_dates(patch, t1a, "2018-09-05"),
                 "dates-S1D": pastis_dates(patch, t1d, "2018-09-07")}
        if patch == 30123:
            dates = {key: json.dumps(value) for key, value in dates.items()}
        x0 = 600_000 + 1280 * (patch % 10)
        features.append({"type": "Feature", "id": str(patch), "properties": {
            "ID_PATCH": patch, "Fold": fold, "N_Parcel": 2, "Parcel_Cover": 0.6,
            "TILE": "t30uxv", **dates},
            "geometry": {"type": "Polygon", "coordinates": [[
                [x0, 6_800_000], [x0 + 1280, 6_800_000], [x0 + 1280, 6_798_720],
                [x0, 6_798_720], [x0, 6_800_000]]]}})
    (folder / "metadata.geojson").write_text(json.dumps(
        {"type": "FeatureCollection", "name": "metadata", "crs": {"type": "name", "properties": {
            "name": "urn:ogc:def:crs:EPSG::2154"}}, "features": features}))
    (folder / "NORM_S2_patch.json").write_text(json.dumps(
        {f"Fold_{k}": {"mean": [1000.0] * 10, "std": [500.0] * 10} for k in range(1, 6)}))
    return root


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "imagenette": lambda r: build_imagenette(r, "imagenette2"),
    "imagenette_320": lambda r: build_imagenette(r, "imagenette2-320"),
    "imagenette_160": lambda r: build_imagenette(r, "imagenette2-160"),
    "oxford_pets": build_pets,
    "oxford_pets_segmentation": build_pets,
    "pascal_voc": build_voc,
    "inria": build_inria,
    "massachusetts_buildings": lambda r: build_massachusetts(r, "site"),
    "massachusetts_roads": lambda r: build_massachusetts(r, "mirror"),
    "potsdam": build_potsdam,
    "eurosat": lambda r: build_eurosat(r, "ms"),
    "eurosat_rgb": lambda r: build_eurosat(r, "rgb"),
    "bigearthnet": build_bigearthnet,
    "fmow": build_fmow,
    "coco": build_coco,
    "coco_voc": build_coco,
    "crowdai_mapping": build_crowdai,
    "crowdai_mapping_small": build_crowdai,
    "spacenet1": build_spacenet1,
    "spacenet2": build_spacenet2,
    "spacenet3": build_spacenet3,
    "hyspecnet11k": build_hyspecnet,
    "hyspecnet11k_hard": build_hyspecnet,
    "pastis_r": build_pastis,
    "pastis_r_s1a": build_pastis,
    "pastis_r_s1d": build_pastis,
}


@pytest.fixture(scope="session")
def miniature(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """miniature(name) -> the root of a miniature copy of that dataset (built once, read-only)."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = BUILDERS[name](tmp_path_factory.mktemp(name) / name)
        return built[name]
    return get


# ----- the contract check -----------------------------------------------------------------

EXPECTED_COLUMNS = {
    "classification": ["image_path", "label_str", "label_idx", "split"],
    "segmentation": ["image_path", "mask_path", "split"],
    "multilabel": ["image_path", "label_str", "split"],
}


def check_contract(cls: type[GeoDataset], root: Path, val_split: float = 0.25,
                   random_seed: int = 1, seed_changes_splits: bool = True) -> pd.DataFrame:
    """Everything the contract promises, on one dataset; returns its df for further checks."""
    df = cls.build_df(root, SplitSettings(random_seed, val_split, 0.2))
    assert list(df.columns) == EXPECTED_COLUMNS[cls.TASK] + (["dates"] if cls.TEMPORAL else [])
    assert list(df.index) == list(range(len(df)))
    path_columns = ["image_path"] + (["mask_path"] if cls.TASK == "segmentation" else [])
    for column in path_columns:
        assert all(not p.startswith("/") and (root / p).is_file() for p in df[column])
    assert set(df["split"]) <= set(ROW_SPLITS)
    assert df["image_path"].is_unique
    # deterministic: byte-identical df for the same inputs; the seed moves only the carving
    first, second = io.BytesIO(), io.BytesIO()
    df.to_parquet(first)
    cls.build_df(root, SplitSettings(random_seed, val_split, 0.2)).to_parquet(second)
    assert first.getvalue() == second.getvalue()
    other = cls.build_df(root, SplitSettings(random_seed + 1, val_split, 0.2))
    assert other["split"].equals(df["split"]) != seed_changes_splits
    assert other["image_path"].equals(df["image_path"])
    # splits are disjoint and cover the df
    parts = {s: cls(root, df=df, split=s) for s in ("train", "val", "trainval", "test", "all")}
    ids = {s: set(ds.split_df["df_idx"]) for s, ds in parts.items()}
    assert not ids["train"] & ids["val"] and not ids["trainval"] & ids["test"]
    assert ids["train"] | ids["val"] == ids["trainval"]
    assert ids["trainval"] | ids["test"] == ids["all"] == set(df.index)
    # the returned tuples
    ds = parts["all"]
    if cls.MEANS is None:  # no published statistics: the data's own, as training uses them
        with pytest.raises(DataError, match="publishes no per-band statistics"):
            ds[0]
        ds = cls(root, df=df, split="all", image_transform=data_standardiser(cls, root, df))
    for index in (0, len(ds) - 1):
        image, target, df_idx = ds[index]
        row = df.loc[df_idx]
        if cls.TEMPORAL:
            image = check_series(cls, image, row)
        assert isinstance(image, torch.Tensor) and image.dtype == torch.float32
        assert image.ndim == 3 and image.shape[0] == len(cls.BANDS)
        assert isinstance(df_idx, int)
        if cls.TASK == "classification":
            assert isinstance(target, int) and target == row["label_idx"]
            assert cls.CLASS_NAMES[target] == row["label_str"]
        elif cls.TASK == "segmentation":
            assert target.shape == (len(cls.CLASS_NAMES), *image.shape[1:])
            assert target.dtype == torch.float32 and float(target.sum(dim=0).max()) <= 1
        else:
            assert target.dtype == torch.float32 and target.shape == (len(cls.CLASS_NAMES),)
            assert torch.equal(target, torch.from_numpy(multi_hot(row["label_str"],
                                                                  cls.CLASS_NAMES)))
    return df


def data_standardiser(cls: type[GeoDataset], root: Path, df: pd.DataFrame) -> Callable:
    """The image transform training would use: the train split's computed statistics."""
    from geovision.data.statistics import compute_image_statistics, means_and_std_devs

    table = compute_image_statistics(cls, root, df, workers=1, progress=False).table
    return cls.standardiser(*means_and_std_devs(table, cls.BANDS, "train", scale=cls.SCALE))


def check_series(cls: type[GeoDataset], series: TimeSeries, row: pd.Series) -> torch.Tensor:
    """A temporal sample: padded float images, the row's dates as days since the reference
    date, a mask of the real ones, zero padding; returns its first image for the checks
    every dataset goes through."""
    assert isinstance(series, TimeSeries)
    dates = parse_dates(row["dates"])
    assert series.images.ndim == 4 and series.images.shape[1] == len(cls.BANDS)
    assert series.days.dtype == torch.int64 and series.valid.dtype == torch.bool
    assert series.images.shape[0] == series.days.shape[0] == series.valid.shape[0] >= len(dates)
    assert series.valid.tolist() == [True] * len(dates) + [False] * (len(series.valid)
                                                                      - len(dates))
    assert series.days[:len(dates)].tolist() == [(d - cls.REFERENCE_DATE).days for d in dates]
    assert not series.images[~series.valid].any() and series.images[series.valid].std() > 0
    return series.images[0]


def same_sample(got: tuple, want: tuple) -> bool:
    """Whether two (image, target, df_idx) tuples are equal, time series field by field."""
    def equal(a: object, b: object) -> bool:
        if isinstance(b, TimeSeries):
            return isinstance(a, TimeSeries) and all(map(equal, a, b))
        return torch.equal(a, b) if isinstance(b, torch.Tensor) else a == b
    return all(map(equal, got, want))


@pytest.fixture(scope="session")
def contract() -> Callable[..., pd.DataFrame]:
    """contract(cls, root, ...) runs the shared contract checks and returns the df."""
    return check_contract


def check_statistics_and_shards(cls: type[GeoDataset], root: Path, out: Path,
                                split: str = "train") -> pd.DataFrame:
    """The dataset through image statistics (every df row, no problems) and both shard
    formats (read back equal to the map-style dataset); returns the statistics table."""
    from geovision.data.shards.hdf import HdfDataset, write_hdf_splits
    from geovision.data.shards.streaming import StreamingGeoDataset, write_streaming_splits
    from geovision.data.statistics import check_statistics, class_column, compute_image_statistics

    df = cls.build_df(root)
    table = compute_image_statistics(cls, root, df, workers=1, progress=False).table
    assert len(table) == len(df) and check_statistics(table, cls.BANDS, df) == []
    if cls.TASK == "segmentation":
        pixels = table[[class_column(c, "pixels") for c in cls.CLASS_NAMES]].sum(axis=1)
        assert (pixels <= table["height"] * table["width"]).all()
    transform = data_standardiser(cls, root, df) if cls.MEANS is None else None
    source = cls(root, df=df, split=split, image_transform=transform)
    hdf = write_hdf_splits(cls, root, out / "hdf", df=df, splits=(split,), progress=False)[split]
    mds = write_streaming_splits(cls, root, out / "mds", df=df, splits=(split,),
                                 progress=False)[split]
    readers = (HdfDataset(hdf.path, source.sample_transform),
               StreamingGeoDataset(str(mds.path), source.sample_transform))
    for reader in readers:
        assert len(reader) == len(source) > 0
        for index in range(len(source)):
            assert same_sample(reader[index], source[index]), index
    return table


@pytest.fixture(scope="session")
def pipeline_checks() -> Callable[..., pd.DataFrame]:
    """pipeline_checks(cls, root, out) runs statistics and both shard formats on a dataset."""
    return check_statistics_and_shards
