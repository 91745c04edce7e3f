"""Product readers: PRISMA L2D (.he5), EnMAP L2A (COG + METADATA.XML) and WorldView (ISD
GeoTIFF + .IMD) to one analysis-ready scene, and `open_scene` to read that scene back.

The analysis-ready scene (the contract with scene inference) is `scene.tif`: a cloud-optimised
GeoTIFF of float32 reflectance with NaN as nodata, one band per spectral channel in ascending
wavelength, each band's description its name and its tags `wavelength_nm` / `fwhm_nm`; the
dataset tags `provider`, `scene_key`, `acquired` (ISO UTC) and `quantity`. Beside it a
`quicklook.png` (true colour where the bands allow).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from geovision.errors import DataError, MissingDataError
from geovision.io.atomic import atomic_file

SCENE_FILE = "scene.tif"
QUICKLOOK_FILE = "quicklook.png"
QUICKLOOK_MAX_PX = 1024
TRUE_COLOUR_NM = (640.0, 550.0, 470.0)


@dataclass(frozen=True)
class Band:
    name: str
    wavelength_nm: float | None = None
    fwhm_nm: float | None = None


@dataclass(frozen=True)
class Product:
    """A product read into memory-light form: bands are produced one at a time by `planes`."""

    bands: tuple[Band, ...]
    width: int
    height: int
    crs: object  # rasterio CRS
    transform: object  # affine.Affine
    acquired: datetime
    quantity: str  # surface_reflectance | toa_reflectance | toa_radiance
    metadata: dict
    planes: object  # Callable[[], Iterator[np.ndarray]] of float32 (height, width)


@dataclass(frozen=True)
class SceneInfo:
    """What `open_scene` reports: band names and wavelengths plus the georeferencing."""

    path: Path
    band_names: tuple[str, ...]
    wavelengths_nm: tuple[float | None, ...]
    fwhm_nm: tuple[float | None, ...]
    width: int
    height: int
    crs: object
    transform: object
    bounds: tuple[float, float, float, float]
    nodata: float | None
    provider: str | None
    scene_key: str | None
    acquired: datetime | None
    quantity: str | None


# ----- PRISMA L2D ------------------------------------------------------------------------


def _attr(attrs, name: str, default=None):
    value = attrs.get(name, default)
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind == "S":
        value = value.astype(str)
    return value


def read_prisma(path: str | Path) -> Product:
    """A PRISMA L2D `.he5` (HDF-EOS5): VNIR then SWIR cubes stored (rows, bands, cols).

    Wavelength lists carry zero placeholders and descend; channels with a zero centre are
    dropped and the rest sorted ascending. Reflectance = Min + DN (Max - Min) / 65535 with
    `L2Scale{Vnir,Swir}{Min,Max}`; DN 0 is fill (NaN). The grid's upper-left corner is
    `Product_ULcorner_{easting,northing}` in `Epsg_Code`, 30 m pixels.
    """
    import h5py
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path} is not a readable HDF5 file ({exc}); fetch it again.") from exc
    with f:
        swaths = f.get("HDFEOS/SWATHS")
        names = [n for n in (swaths or {}) if n.endswith("_HCO")]
        if not names:
            raise DataError(f"{path} has no /HDFEOS/SWATHS/PRS_<level>_HCO swath: not a PRISMA "
                            "hyperspectral product.")
        level = names[0].split("_")[1]
        if level != "L2D":
            raise DataError(f"{path} is a PRISMA {level} product; only L2D is geocoded. Order "
                            "the L2D processing of this scene.")
        fields = swaths[names[0]]["Data Fields"]
        attrs = f.attrs
        parts = []  # (wavelength, fwhm, name, cube, band index, min, max)
        for sensor in ("Vnir", "Swir"):
            cube_name = f"{sensor.upper()}_Cube"
            if cube_name not in fields:
                continue
            cube = fields[cube_name]
            centres = np.asarray(_attr(attrs, f"List_Cw_{sensor}"), dtype=float)
            fwhm = np.asarray(_attr(attrs, f"List_Fwhm_{sensor}", np.zeros_like(centres)),
                              dtype=float)
            if centres.shape[0] != cube.shape[1]:
                raise DataError(f"{path}: List_Cw_{sensor} has {centres.shape[0]} values for "
                                f"{cube.shape[1]} bands of {cube_name} (rows, bands, cols).")
            low = float(_attr(attrs, f"L2Scale{sensor}Min", 0.0))
            high = float(_attr(attrs, f"L2Scale{sensor}Max", 1.0))
            for index in np.flatnonzero(centres > 0):
                parts.append((float(centres[index]), float(fwhm[index]),
                              f"{sensor.lower()}_{index + 1:03d}", cube_name, int(index),
                              low, high))
        if not parts:
            raise DataError(f"{path} has no VNIR/SWIR band with a wavelength.")
        rows, _, cols = fields[parts[0][3]].shape
        parts.sort(key=lambda p: (p[0], p[2]))
        epsg = int(_attr(attrs, "Epsg_Code"))
        east = float(_attr(attrs, "Product_ULcorner_easting"))
        north = float(_attr(attrs, "Product_ULcorner_northing"))
        start = _attr(attrs, "Product_StartTime")
    acquired = _parse_time(start) if start else datetime.fromtimestamp(0, UTC)

    def planes() -> Iterator[np.ndarray]:
        with h5py.File(path, "r") as f:
            fields = f["HDFEOS/SWATHS"][names[0]]["Data Fields"]
            cubes = {name: fields[name][()] for name in {p[3] for p in parts}}
            for _, _, _, cube_name, index, low, high in parts:
                dn = cubes[cube_name][:, index, :]
                plane = (low + dn.astype(np.float32) * np.float32((high - low) / 65535.0))
                plane[dn == 0] = np.nan
                yield plane

    bands = tuple(Band(p[2], p[0], p[1] or None) for p in parts)
    transform = Affine.translation(east, north) @ Affine.scale(30.0, -30.0)
    return Product(bands, int(cols), int(rows), CRS.from_epsg(epsg), transform, acquired,
                   "surface_reflectance", {"level": level, "epsg": epsg}, planes)


def _parse_time(text: str) -> datetime:
    text = str(text).strip().rstrip("Z")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y%m%d%H%M%S",
                "%Y%m%dT%H%M%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise DataError(f"Unreadable acquisition time {text!r}.")


# ----- EnMAP L2A -------------------------------------------------------------------------


def _one(folder: Path, pattern: str, what: str) -> Path:
    found = sorted(folder.rglob(pattern))
    if not found:
        raise MissingDataError(f"No {what} ({pattern}) under {folder}; fetch the scene again.")
    return found[0]


def read_enmap(folder: str | Path) -> Product:
    """An EnMAP L2A product folder: `*-SPECTRAL_IMAGE*.TIF` (int16) and `*-METADATA.XML`.

    Reflectance = DN * GainOfBand + OffsetOfBand per band of
    `specific/bandCharacterisation`; DN -32768 (or the file's nodata) is NaN.
    """
    import rasterio

    folder = Path(folder)
    image = _one(folder, "*SPECTRAL_IMAGE*.TIF", "EnMAP spectral image")
    xml_path = _one(folder, "*METADATA.XML", "EnMAP METADATA.XML")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise DataError(f"{xml_path} is not valid XML ({exc}).") from exc
    chars = root.findall("./specific/bandCharacterisation/bandID")
    with rasterio.open(image) as src:
        if len(chars) != src.count:
            raise DataError(f"{xml_path} describes {len(chars)} bands, {image.name} has "
                            f"{src.count}.")
        nodata = src.nodata if src.nodata is not None else -32768
        width, height, crs, transform = src.width, src.height, src.crs, src.transform
    bands, gains = [], []
    for number, band in enumerate(chars, 1):
        def value(tag: str, default: float | None = None, band=band) -> float | None:
            text = band.findtext(tag)
            return float(text) if text not in (None, "") else default
        bands.append(Band(f"band_{int(band.get('number', number)):03d}",
                          value("wavelengthCenterOfBand"), value("FWHMOfBand")))
        gains.append((value("GainOfBand", 1.0), value("OffsetOfBand", 0.0)))
    start = root.findtext("./base/temporalCoverage/startTime")
    acquired = _parse_time(start) if start else _enmap_name_time(image.name)
    order = sorted(range(len(bands)), key=lambda i: (bands[i].wavelength_nm or 0.0, i))

    def planes() -> Iterator[np.ndarray]:
        with rasterio.open(image) as src:
            cube = src.read()  # one pass: pixel-interleaved tiles hold every band
        for i in order:
            dn = cube[i]
            gain, offset = gains[i]
            plane = dn.astype(np.float32) * np.float32(gain) + np.float32(offset)
            plane[dn == nodata] = np.nan
            yield plane

    return Product(tuple(bands[i] for i in order), width, height, crs, transform, acquired,
                   "surface_reflectance", {"nodata": nodata}, planes)


def _enmap_name_time(name: str) -> datetime:
    match = re.search(r"_(\d{8}T\d{6})Z_", name)
    if match is None:
        return datetime.fromtimestamp(0, UTC)
    return datetime.strptime(match[1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


# ----- WorldView (Maxar ISD) -------------------------------------------------------------

# Effective centre wavelengths (nm) and Thuillier 2003 band-averaged solar irradiance
# (W m-2 um-1) of Maxar's radiometric-use notes for WorldView-2 and -3.
WORLDVIEW_BANDS = {
    "WV02": {"P": (632.2, 1571.36), "C": (427.3, 1773.81), "B": (477.9, 2007.27),
             "G": (545.8, 1829.62), "Y": (607.7, 1701.85), "R": (658.8, 1538.85),
             "RE": (723.7, 1346.09), "N": (831.3, 1053.21), "N2": (908.0, 856.599)},
    "WV03": {"P": (649.4, 1574.41), "C": (427.4, 1757.89), "B": (481.9, 2004.61),
             "G": (547.1, 1830.18), "Y": (604.3, 1712.07), "R": (660.1, 1535.33),
             "RE": (722.7, 1348.08), "N": (824.0, 1055.94), "N2": (913.6, 858.77)},
}


def parse_imd(text: str) -> dict:
    """An .IMD (PVL: `key = value;`, BEGIN_GROUP/END_GROUP) as nested dicts; groups keep
    their order of appearance. Quoted strings lose their quotes; numbers stay strings."""
    root: dict = {}
    stack = [root]
    pending: list[str] = []  # a multi-line value in parentheses
    key = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line == "END;":
            continue
        if pending:
            pending.append(line)
            if line.endswith(");"):
                stack[-1][key] = " ".join(pending).rstrip(";")
                pending = []
            continue
        if "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        value = value.rstrip(";").strip()
        if key == "BEGIN_GROUP":
            group: dict = {}
            stack[-1][value] = group
            stack.append(group)
        elif key == "END_GROUP":
            if len(stack) > 1:
                stack.pop()
        elif value.startswith("(") and not value.endswith(")"):
            pending = [value]
        else:
            stack[-1][key] = value.strip('"')
    return root


def read_imd(path: str | Path) -> dict:
    """The .IMD of a WorldView product: its parsed groups plus satId, CatId, cloud cover,
    time and the bands (group order = band order in the image)."""
    path = Path(path)
    imd = parse_imd(path.read_text(errors="replace"))
    image = imd.get("IMAGE_1", {})
    bands = [name[5:] for name in imd if name.startswith("BAND_")]
    return {
        "satId": image.get("satId"),
        "CatId": image.get("CatId") or imd.get("productCatalogId"),
        "cloudCover": _float(image.get("cloudCover")),
        "firstLineTime": image.get("firstLineTime"),
        "meanSunEl": _float(image.get("meanSunEl")),
        "bandId": imd.get("bandId"),
        "bands": bands,
        "absCalFactor": [_float(imd[f"BAND_{b}"].get("absCalFactor")) for b in bands],
        "effectiveBandwidth": [_float(imd[f"BAND_{b}"].get("effectiveBandwidth"))
                               for b in bands],
        "groups": imd,
    }


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def earth_sun_distance_au(when: datetime) -> float:
    """Earth-Sun distance in AU (the almanac's approximation, better than 1e-4 AU)."""
    days = (when - datetime(2000, 1, 1, 12, tzinfo=UTC)).total_seconds() / 86400.0
    g = math.radians(357.529 + 0.98560028 * days)
    return 1.00014 - 0.01671 * math.cos(g) - 0.00014 * math.cos(2 * g)


def read_worldview(folder: str | Path) -> Product:
    """A WorldView ISD product: the first `.IMD` under `folder` and its image tile(s).

    DN -> top-of-atmosphere radiance L = DN absCalFactor / effectiveBandwidth, then
    reflectance = L d^2 pi / (Esun cos(solar zenith)) for WorldView-2/-3, whose centre
    wavelengths and Esun are known; other satellites stay radiance (tag quantity).
    Several tiles (R1C1, R1C2, ...) of one product are mosaicked.
    """
    import rasterio
    from rasterio.merge import merge

    folder = Path(folder)
    imds = sorted(p for p in folder.rglob("*") if p.suffix.upper() == ".IMD")
    if not imds:
        raise MissingDataError(f"No WorldView .IMD file under {folder}; fetch the scene again.")
    imd_path = imds[0]
    meta = read_imd(imd_path)
    stem = re.sub(r"_R\d+C\d+", "", imd_path.stem)
    tiles = sorted(p for p in imd_path.parent.iterdir()
                   if p.suffix.upper() in (".TIF", ".TIFF")
                   and re.sub(r"_R\d+C\d+", "", p.stem) == stem)
    if not tiles:
        raise MissingDataError(f"No image (.TIF) beside {imd_path}; only GeoTIFF ISD "
                               "deliveries are read (order GeoTIFF, not NITF).")
    with rasterio.open(tiles[0]) as src:
        count, crs, nodata = src.count, src.crs, src.nodata
        width, height, transform = src.width, src.height, src.transform
    if len(tiles) > 1:
        first, transform = merge([str(t) for t in tiles], indexes=[1])
        height, width = (int(n) for n in first.shape[1:])
    names = meta["bands"] or [str(i + 1) for i in range(count)]
    if len(names) != count:
        raise DataError(f"{imd_path.name} lists {len(names)} bands, {tiles[0].name} has {count}.")
    table = WORLDVIEW_BANDS.get(meta["satId"] or "")
    acquired = _parse_time(meta["firstLineTime"]) if meta["firstLineTime"] else \
        datetime.fromtimestamp(0, UTC)
    sun_el = meta["meanSunEl"]
    reflectance = table is not None and sun_el is not None and all(n in table for n in names)
    factors = []
    for i, name in enumerate(names):
        cal, bw = meta["absCalFactor"][i], meta["effectiveBandwidth"][i]
        factor = (cal / bw) if cal is not None and bw else 1.0
        if reflectance:
            esun = table[name][1]
            d = earth_sun_distance_au(acquired)
            factor *= d * d * math.pi / (esun * math.cos(math.radians(90.0 - sun_el)))
        factors.append(factor)
    bands = [Band(name, table[name][0] if table and name in table else None) for name in names]
    order = sorted(range(count), key=lambda i: (bands[i].wavelength_nm or 0.0, i))

    def planes() -> Iterator[np.ndarray]:
        if len(tiles) > 1:
            data, _ = merge([str(t) for t in tiles], nodata=0)
            sources = lambda i: data[i]  # noqa: E731
        else:
            src = rasterio.open(tiles[0])
            sources = lambda i: src.read(i + 1)  # noqa: E731
        for i in order:
            dn = sources(i)
            plane = dn.astype(np.float32) * np.float32(factors[i])
            plane[dn == (nodata if nodata is not None else 0)] = np.nan
            yield plane
        if len(tiles) == 1:
            src.close()

    quantity = "toa_reflectance" if reflectance else "toa_radiance"
    metadata = {k: meta[k] for k in ("satId", "CatId", "cloudCover", "firstLineTime",
                                     "bandId", "absCalFactor", "effectiveBandwidth")}
    return Product(tuple(bands[i] for i in order), width, height, crs, transform, acquired,
                   quantity, metadata, planes)


READERS = {"prisma": read_prisma, "enmap": read_enmap, "worldview": read_worldview}


def read_product(reader: str, source: Path) -> Product:
    """Read the product under `source` (a folder, or the file itself) with `reader`."""
    if reader not in READERS:
        raise DataError(f"Unknown product reader {reader!r}; one of {', '.join(READERS)}.")
    if reader == "prisma" and source.is_dir():
        found = sorted(source.rglob("PRS_*.he5"))
        if not found:
            raise MissingDataError(f"No PRS_*.he5 under {source}; fetch the scene again.")
        source = found[0]
    return READERS[reader](source)


# ----- the analysis-ready scene ----------------------------------------------------------


def write_scene(product: Product, dest: Path, *, provider: str, scene_key: str) -> dict:
    """Write `scene.tif` (COG) and `quicklook.png` into `dest`; return their facts."""
    import rasterio

    dest.mkdir(parents=True, exist_ok=True)
    wavelengths = [b.wavelength_nm for b in product.bands]
    picks = _true_colour(wavelengths)
    kept: dict[int, np.ndarray] = {}
    profile = {"driver": "COG", "width": product.width, "height": product.height,
               "count": len(product.bands), "dtype": "float32", "crs": product.crs,
               "transform": product.transform, "nodata": float("nan"), "compress": "deflate",
               "predictor": 3, "BIGTIFF": "IF_SAFER",
               "blocksize": cog_blocksize(product.width, product.height)}
    with atomic_file(dest / SCENE_FILE) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            for i, plane in enumerate(product.planes(), 1):
                if plane.shape != (product.height, product.width):
                    raise DataError(f"Band {i} of {provider}:{scene_key} has shape "
                                    f"{plane.shape}, expected {(product.height, product.width)}.")
                dst.write(plane, i)
                if i - 1 in picks:
                    kept[i - 1] = plane
            dst.descriptions = tuple(b.name for b in product.bands)
            dst.update_tags(provider=provider, scene_key=scene_key,
                            acquired=product.acquired.astimezone(UTC).isoformat(),
                            quantity=product.quantity)
            for i, band in enumerate(product.bands, 1):
                tags = {}
                if band.wavelength_nm is not None:
                    tags["wavelength_nm"] = str(round(band.wavelength_nm, 4))
                if band.fwhm_nm is not None:
                    tags["fwhm_nm"] = str(round(band.fwhm_nm, 4))
                if tags:
                    dst.update_tags(i, **tags)
    quicklook = write_quicklook([kept[i] for i in picks], dest / QUICKLOOK_FILE)
    return {"scene": dest / SCENE_FILE, "quicklook": quicklook, "bands": len(product.bands)}


def cog_blocksize(width: int, height: int) -> int:
    """Tile size: 256, or 128 (the least the COG driver takes) for small images. Tiles are
    pixel-interleaved, so each holds every band: a 512 tile of 224 float32 bands is 235 MB
    to encode even when the image is 6 x 5 (3 s, where 128 px take 0.15 s)."""
    return min(256, max(128, -(-max(width, height) // 16) * 16))


def _true_colour(wavelengths: Sequence[float | None]) -> list[int]:
    """Indexes of the bands nearest red, green, blue; the first band alone without them."""
    known = [(i, w) for i, w in enumerate(wavelengths) if w is not None]
    if len(wavelengths) < 3 or len(known) < 3:
        return [0]
    picks = [min(known, key=lambda iw, t=t: abs(iw[1] - t))[0] for t in TRUE_COLOUR_NM]
    return picks if len(set(picks)) == 3 else [0]


def write_quicklook(planes: Sequence[np.ndarray], path: Path) -> Path:
    """A PNG of 1 or 3 planes, each stretched between its 2nd and 98th percentiles."""
    from PIL import Image

    step = max(1, math.ceil(max(planes[0].shape) / QUICKLOOK_MAX_PX))
    channels = []
    valid = np.ones(planes[0][::step, ::step].shape, dtype=bool)
    for plane in planes:
        small = plane[::step, ::step]
        finite = np.isfinite(small)
        valid &= finite
        if finite.any():
            low, high = np.percentile(small[finite], [2, 98])
        else:
            low, high = 0.0, 1.0
        scaled = (small - low) / (high - low if high > low else 1.0)
        channels.append(np.clip(np.nan_to_num(scaled, nan=0.0) * 255, 0, 255).astype(np.uint8))
    rgb = np.stack(channels * 3 if len(channels) == 1 else channels, axis=-1)
    alpha = np.where(valid, 255, 0).astype(np.uint8)
    with atomic_file(path) as tmp:
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp, format="PNG")
    return path


def open_scene(path: str | Path) -> SceneInfo:
    """Band names, centre wavelengths and georeferencing of an analysis-ready scene
    (`scene.tif`, or the scene folder holding it)."""
    import rasterio

    path = Path(path)
    if path.is_dir():
        path = path / SCENE_FILE
    if not path.is_file():
        raise MissingDataError(f"No analysis-ready scene at {path}; materialize the "
                               "satellite_scene partition (or `geovision satellite fetch`).")
    with rasterio.open(path) as src:
        names = tuple(d or f"band_{i}" for i, d in enumerate(src.descriptions, 1))
        per_band = [src.tags(i) for i in range(1, src.count + 1)]
        tags = src.tags()
        info = dict(width=src.width, height=src.height, crs=src.crs, transform=src.transform,
                    bounds=tuple(src.bounds), nodata=src.nodata)
    acquired = tags.get("acquired")
    return SceneInfo(
        path=path, band_names=names,
        wavelengths_nm=tuple(_float(t.get("wavelength_nm")) for t in per_band),
        fwhm_nm=tuple(_float(t.get("fwhm_nm")) for t in per_band),
        provider=tags.get("provider"), scene_key=tags.get("scene_key"),
        acquired=datetime.fromisoformat(acquired) if acquired else None,
        quantity=tags.get("quantity"), **info)
