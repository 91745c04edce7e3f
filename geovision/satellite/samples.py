"""Tiny products in the providers' real layouts, and a static STAC catalogue of them.

Used by the tests, the benchmark and `make satellite-demo`: a PRISMA L2D `.he5` zipped as
delivered, an EnMAP L2A folder (COG + METADATA.XML + quality layers) and a WorldView ISD order
tree zipped as delivered, each a few kB to a few MB, with the file names, attributes and XML
paths the readers use. Values are random but seeded, so checks can recompute them.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from geovision.satellite.fetch import sha256_of
from geovision.satellite.readers import cog_blocksize

ENMAP_COLLECTION = "ENMAP_HSI_L2A"
WORLDVIEW_COLLECTION = "wv03-vnir"
ENMAP_BANDS = 224


def prisma_name(start: datetime, suffix: str = ".he5", version: str = "0001") -> str:
    stop = start + timedelta(seconds=4)
    return f"PRS_L2D_STD_{start:%Y%m%d%H%M%S}_{stop:%Y%m%d%H%M%S}_{version}{suffix}"


def prisma_wavelengths(count: int, low: float, high: float, zeros: Sequence[int]) -> np.ndarray:
    """Descending centres with zero placeholders, as PRISMA stores them."""
    values = np.linspace(high, low, count)
    values[list(zeros)] = 0.0
    return values


def make_prisma(dest: Path, start: datetime, *, rows: int = 8, cols: int = 9, vnir: int = 66,
                swir: int = 173, seed: int = 0, zipped: bool = True,
                epsg: int = 32633, ul: tuple[float, float] = (500000.0, 4600020.0)) -> Path:
    """A PRISMA L2D product; returns the `.zip` (or the `.he5` when not zipped)."""
    import h5py

    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    he5 = dest / prisma_name(start)
    with h5py.File(he5, "w") as f:
        fields = f.create_group("HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields")
        geo = f.create_group("HDFEOS/SWATHS/PRS_L2D_HCO/Geolocation Fields")
        for name, count in (("VNIR", vnir), ("SWIR", swir)):
            cube = rng.integers(1, 65535, size=(rows, count, cols), dtype=np.uint16)
            cube[0, :, 0] = 0  # a fill pixel
            fields.create_dataset(f"{name}_Cube", data=cube, chunks=(rows, 1, cols))
            fields.create_dataset(f"{name}_PIXEL_L2_ERR_MATRIX",
                                  data=np.zeros((rows, count, cols), np.uint8))
        geo.create_dataset("Latitude", data=np.full((rows, cols), 41.5, np.float32))
        geo.create_dataset("Longitude", data=np.full((rows, cols), 15.0, np.float32))
        pan = f.create_group("HDFEOS/SWATHS/PRS_L2D_PCO/Data Fields")
        pan.create_dataset("Cube", data=np.zeros((rows * 6, cols * 6), np.uint16))
        f.attrs["List_Cw_Vnir"] = prisma_wavelengths(vnir, 400.0, 1010.0, [0])
        f.attrs["List_Cw_Swir"] = prisma_wavelengths(swir, 920.0, 2505.0, [swir - 1])
        f.attrs["List_Fwhm_Vnir"] = np.full(vnir, 12.0)
        f.attrs["List_Fwhm_Swir"] = np.full(swir, 10.0)
        f.attrs["List_Cw_Vnir_Flags"] = (f.attrs["List_Cw_Vnir"] > 0).astype(np.int8)
        f.attrs["List_Cw_Swir_Flags"] = (f.attrs["List_Cw_Swir"] > 0).astype(np.int8)
        for sensor, (low, high) in (("Vnir", (0.0, 1.0)), ("Swir", (0.0, 0.8)),
                                    ("Pan", (0.0, 1.0))):
            f.attrs[f"L2Scale{sensor}Min"] = low
            f.attrs[f"L2Scale{sensor}Max"] = high
        f.attrs["Epsg_Code"] = epsg
        f.attrs["Product_ULcorner_easting"] = ul[0]
        f.attrs["Product_ULcorner_northing"] = ul[1]
        f.attrs["Product_LRcorner_easting"] = ul[0] + 30.0 * cols
        f.attrs["Product_LRcorner_northing"] = ul[1] - 30.0 * rows
        f.attrs["Product_StartTime"] = np.bytes_(f"{start:%Y-%m-%dT%H:%M:%S}.000000")
        f.attrs["Projection_Name"] = np.bytes_("UTM")
    if not zipped:
        return he5
    archive = he5.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(he5, he5.name)
    he5.unlink()
    return archive


def enmap_id(datatake: int, tile: int, acquired: datetime, version: str = "V010402",
             processed: datetime | None = None) -> str:
    processed = processed or acquired + timedelta(days=1)
    return (f"ENMAP01-____L2A-DT{datatake:010d}_{acquired:%Y%m%dT%H%M%S}Z_{tile:03d}_{version}_"
            f"{processed:%Y%m%dT%H%M%S}Z")


def enmap_wavelengths(count: int = ENMAP_BANDS) -> np.ndarray:
    return np.round(np.linspace(418.0, 2445.0, count), 3)


def make_enmap(dest: Path, product_id: str, acquired: datetime, *, width: int = 5,
               height: int = 6, bands: int = ENMAP_BANDS, seed: int = 0) -> Path:
    """An EnMAP L2A product folder `dest/<id>/` with the COGs and METADATA.XML."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    folder = dest / product_id
    folder.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "COG", "width": width, "height": height, "crs": "EPSG:32632",
               "blocksize": cog_blocksize(width, height),
               "transform": from_origin(600000.0, 5300010.0, 30.0, 30.0)}
    data = rng.integers(0, 10000, size=(bands, height, width), dtype=np.int16)
    data[:, 0, 0] = -32768
    with rasterio.open(folder / f"{product_id}-SPECTRAL_IMAGE_COG.TIF", "w", count=bands,
                       dtype="int16", nodata=-32768, **profile) as dst:
        dst.write(data)
    for layer in ("QL_PIXELMASK_COG", "QL_QUALITY_CLOUD_COG"):
        with rasterio.open(folder / f"{product_id}-{layer}.TIF", "w", count=1, dtype="uint8",
                           **profile) as dst:
            dst.write(np.zeros((1, height, width), np.uint8))
    centres = enmap_wavelengths(bands)
    chars = "\n".join(
        f'      <bandID number="{i + 1}"><wavelengthCenterOfBand>{w:.3f}'
        f"</wavelengthCenterOfBand><FWHMOfBand>{8.0 + i % 5:.1f}</FWHMOfBand>"
        "<GainOfBand>0.0001</GainOfBand><OffsetOfBand>0</OffsetOfBand></bandID>"
        for i, w in enumerate(centres))
    (folder / f"{product_id}-METADATA.XML").write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<level_X>
  <metadata><name>{product_id}</name></metadata>
  <base>
    <temporalCoverage><startTime>{acquired:%Y-%m-%dT%H:%M:%S}.000000Z</startTime></temporalCoverage>
    <spatialCoverage><boundingPolygon>
      <point><frame>upper_left</frame><latitude>47.84</latitude><longitude>10.33</longitude></point>
      <point><frame>lower_right</frame><latitude>47.83</latitude><longitude>10.34</longitude></point>
    </boundingPolygon></spatialCoverage>
  </base>
  <specific>
    <widthOfOrthoScene>{width}</widthOfOrthoScene>
    <heightOfOrthoScene>{height}</heightOfOrthoScene>
    <pixelSizeOfOrthoScene>30</pixelSizeOfOrthoScene>
    <bandCharacterisation>
{chars}
    </bandCharacterisation>
  </specific>
</level_X>
""")
    return folder


WORLDVIEW_IMD_BANDS = ("C", "B", "G", "Y", "R", "RE", "N", "N2")


def worldview_stem(acquired: datetime, order: str) -> str:
    return f"{acquired:%y%b%d%H%M%S}".upper() + f"-M2AS-{order}_01_P001"


def make_worldview(dest: Path, order: str, catid: str, acquired: datetime, *,
                   bands: int = 8, width: int = 7, height: int = 5, seed: int = 0,
                   cloud_cover: float = 0.02, zipped: bool = True) -> Path:
    """A WorldView-3 ISD order `<order>_01/` (GeoTIFF + .IMD ...), zipped as delivered."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    root = dest / f"{order}_01"
    mul = root / f"{order}_01_P001_MUL"
    mul.mkdir(parents=True, exist_ok=True)
    (root / "GIS_FILES").mkdir(exist_ok=True)
    stem = worldview_stem(acquired, order)
    names = WORLDVIEW_IMD_BANDS[:bands] if bands == 8 else ("B", "G", "R", "N")
    with rasterio.open(mul / f"{stem}.TIF", "w", driver="GTiff", width=width, height=height,
                       count=len(names), dtype="uint16", crs="EPSG:32633",
                       transform=from_origin(400000.0, 4500002.0, 2.0, 2.0)) as dst:
        dst.write(rng.integers(1, 2047, size=(len(names), height, width), dtype=np.uint16))
    groups = "".join(
        f"BEGIN_GROUP = BAND_{name}\n\tULLon = 15.0;\n\tULLat = 40.6;\n"
        f"\tabsCalFactor = {0.01 + 0.001 * i:.6f};\n"
        f"\teffectiveBandwidth = {0.05 + 0.004 * i:.6f};\n"
        f"\tTDILevel = 24;\nEND_GROUP = BAND_{name}\n" for i, name in enumerate(names))
    (mul / f"{stem}.IMD").write_text(
        'version = "28.3";\n'
        f'productOrderId = "{order}_01_P001";\nproductCatalogId = "{catid}";\n'
        'imageDescriptor = "ORStandard2A";\nbandId = "Multi";\n'
        f"numRows = {height};\nnumColumns = {width};\nproductLevel = \"LV2A\";\n"
        f"bitsPerPixel = 16;\n{groups}"
        "BEGIN_GROUP = IMAGE_1\n\tsatId = \"WV03\";\n"
        f"\tCatId = \"{catid}\";\n\tfirstLineTime = {acquired:%Y-%m-%dT%H:%M:%S}.000000Z;\n"
        "\tmeanSunAz = 160.2;\n\tmeanSunEl = 55.1;\n\tmeanOffNadirViewAngle = 18.3;\n"
        f"\tcloudCover = {cloud_cover};\n\trevNumber = 12345;\nEND_GROUP = IMAGE_1\nEND;\n")
    for suffix in (".RPB", ".TIL", ".XML", ".ATT", ".EPH", ".GEO"):
        (mul / f"{stem}{suffix}").write_text(f"{suffix[1:]} of {stem}\n")
    (mul / f"{stem}_README.TXT").write_text("Product readme\n")
    (root / f"{order}_01_README.TXT").write_text("Order readme\n")
    if not zipped:
        return root
    archive = dest / f"{order}_01.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            zf.write(path, path.relative_to(dest).as_posix())
    shutil.rmtree(root)
    return archive


# ----- a static STAC catalogue -----------------------------------------------------------


@dataclass(frozen=True)
class CatalogueItem:
    """One item to publish: its collection, id, time, bbox, properties and asset files."""

    collection: str
    item_id: str
    acquired: datetime
    bbox: tuple[float, float, float, float]
    properties: dict
    assets: dict  # key -> (relative file path under the file server root, roles, media type)


def enmap_item(files_root: Path, datatake: int, tile: int, acquired: datetime, *,
               version: str = "V010402", processed: datetime | None = None,
               bbox: tuple[float, float, float, float] = (10.3, 47.8, 10.7, 48.1),
               cloud: float = 5.0, quality: int = 0, seed: int = 0, width: int = 5,
               height: int = 6, bands: int = ENMAP_BANDS) -> CatalogueItem:
    """Build an EnMAP product under `files_root` (the download tree) and its STAC item."""
    product_id = enmap_id(datatake, tile, acquired, version, processed)
    rel = Path(f"ENMAP/files/L2A/{acquired:%Y/%m/%d}/DT{datatake:010d}/{tile:03d}")
    folder = make_enmap(files_root / rel, product_id, acquired, width=width, height=height,
                        bands=bands, seed=seed)
    base = rel / folder.name
    props = {"platform": "enmap", "eo:cloud_cover": cloud, "processing:level": "L2A",
             "enmap:overallQuality": quality, "enmap:datatakeID": datatake,
             "enmap:imageID": tile, "enmap:nodata": -32768,
             "enmap:archivedVersion": version, "start_datetime": acquired.isoformat(),
             "end_datetime": (acquired + timedelta(seconds=4)).isoformat()}
    cog = "image/tiff; application=geotiff; profile=cloud-optimized"
    assets = {
        "image": (base / f"{product_id}-SPECTRAL_IMAGE_COG.TIF", ["data"], cog),
        "metadata": (base / f"{product_id}-METADATA.XML", ["metadata"], "application/xml"),
        "pixelmask": (base / f"{product_id}-QL_PIXELMASK_COG.TIF", ["quality", "data-mask"],
                      cog),
        "cloud": (base / f"{product_id}-QL_QUALITY_CLOUD_COG.TIF", ["quality"], cog),
    }
    return CatalogueItem(ENMAP_COLLECTION, product_id, acquired, bbox, props, assets)


def worldview_item(files_root: Path, order: str, catid: str, acquired: datetime, *,
                   bbox: tuple[float, float, float, float] = (10.4, 47.9, 10.5, 48.0),
                   cloud: float = 2.0, seed: int = 0) -> CatalogueItem:
    """A WorldView-3 ISD zip under `files_root` and its item in the Maxar-style collection,
    keyed by its catalogue id."""
    rel = Path(f"maxar/orders/{order}")
    archive = make_worldview(files_root / rel, order, catid, acquired, seed=seed,
                             cloud_cover=cloud / 100)
    props = {"platform": "worldview-03", "eo:cloud_cover": cloud, "catalog_id": catid}
    assets = {"data": (rel / archive.name, ["data"], "application/zip")}
    return CatalogueItem(WORLDVIEW_COLLECTION, catid, acquired, bbox, props, assets)


def write_catalogue(root: Path, items: Sequence[CatalogueItem], files_url: str,
                    files_root: Path) -> Path:
    """A self-contained static catalogue under `root` (catalog.json, one folder per
    collection and item); asset hrefs point at `files_url` + the file's path, with
    `file:size` and `file:checksum` (sha2-256 multihash) as providers publish them."""
    import pystac

    catalog = pystac.Catalog("standin", "Loopback stand-in for the providers' STAC APIs")
    collections: dict[str, pystac.Collection] = {}
    for item in items:
        if item.collection not in collections:
            extent = pystac.Extent(pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
                                   pystac.TemporalExtent([[datetime(2022, 4, 27, tzinfo=UTC),
                                                           None]]))
            collections[item.collection] = pystac.Collection(
                item.collection, f"{item.collection} (stand-in)", extent)
            catalog.add_child(collections[item.collection])
        west, south, east, north = item.bbox
        geometry = {"type": "Polygon", "coordinates": [[[west, south], [east, south],
                                                        [east, north], [west, north],
                                                        [west, south]]]}
        stac_item = pystac.Item(item.item_id, geometry, list(item.bbox), item.acquired,
                                dict(item.properties))
        for key, (rel, roles, media_type) in item.assets.items():
            path = files_root / rel
            extra = {"file:size": path.stat().st_size,
                     "file:checksum": "1220" + sha256_of(path)}
            stac_item.add_asset(key, pystac.Asset(f"{files_url.rstrip('/')}/{Path(rel).as_posix()}",
                                                  title=key, media_type=media_type, roles=roles,
                                                  extra_fields=extra))
        collections[item.collection].add_item(stac_item)
    catalog.normalize_hrefs(str(root))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"

