"""The built-in `synthetic_temporal` dataset: crop fields whose classes differ only in their
seasonal curve, written in PASTIS-R's layout so it is read by the same code.

    <root>/SYNTHETIC-TEMPORAL/DATA_S2/S2_<id>.npy        (T, 4, size, size) int16, x 10,000
    <root>/SYNTHETIC-TEMPORAL/ANNOTATIONS/TARGET_<id>.npy (3, size, size): class, field, 0
    <root>/SYNTHETIC-TEMPORAL/metadata.geojson           ID_PATCH, Fold, dates-S2
    <root>/generator.json                                 the generation settings

Each crop's greenness over the year is the same bell-shaped curve shifted in time (peaks
CROP_PEAKS days apart around the calendar), and each patch is observed on T dates (T varies)
over one year from a random start day. At any one date a crop's reflectance is thus drawn
from the same distribution whatever the crop (the date's day of the year being uniform), so
a single image cannot tell crops apart; the series of dated images can. Background is bare
soil all year.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from geovision.data.datasets.pastis import PastisR
from geovision.io.atomic import atomic_dir

GENERATOR_VERSION = 1
CLASSES = ("background", "winter_crop", "summer_crop", "autumn_crop")
BANDS = ("B2", "B4", "B8", "B11")  # blue, red, near infrared, short-wave infrared
FOLDER = "SYNTHETIC-TEMPORAL"
REFERENCE_DATE = dt.date(2021, 1, 1)
YEAR = 365
CROP_PEAKS = (60, 182, 304)  # day of the year of each crop's greenest date (a third apart)
SEASON_WIDTH = 45.0  # days: the bell's standard deviation
# Reflectance x 10,000 of bare soil and of full green cover per band.
SOIL = np.array([900.0, 1400.0, 2200.0, 2800.0])
GREEN = np.array([300.0, 350.0, 4800.0, 1600.0])
NOISE = 150.0


def greenness(day_of_year: np.ndarray, crop: int) -> np.ndarray:
    """Green cover in [0, 1] of crop `crop` (1-based class index) on the given days."""
    distance = np.abs(day_of_year - CROP_PEAKS[crop - 1]) % YEAR
    distance = np.minimum(distance, YEAR - distance)  # around the calendar
    return np.exp(-0.5 * (distance / SEASON_WIDTH) ** 2)


def generate_patch(random_seed: int, index: int, size: int, min_dates: int, max_dates: int
                   ) -> tuple[np.ndarray, np.ndarray, list[dt.date]]:
    """One patch: (T, 4, size, size) int16 series, (3, size, size) uint8 target, its dates.

    Fields are the cells of a 2 x 2 grid separated by 1-pixel bare tracks, each of a random
    class, with its own amplitude of greenness.
    """
    rng = np.random.default_rng([random_seed, index])
    num_dates = int(rng.integers(min_dates, max_dates + 1))
    start = float(rng.uniform(0, YEAR))
    step = YEAR / num_dates
    offsets = (np.arange(num_dates) + rng.uniform(-0.3, 0.3, num_dates)) * step
    days = np.floor(start + np.sort(offsets)).astype(int)
    semantic = np.zeros((size, size), np.uint8)
    fields = np.zeros((size, size), np.uint8)
    amplitude = np.zeros((size, size))
    half = size // 2
    for k, (y, x) in enumerate(((0, 0), (0, half), (half, 0), (half, half))):
        cls = int(rng.integers(0, len(CLASSES)))
        window = (slice(y + 1, y + half - 1), slice(x + 1, x + half - 1))
        semantic[window], fields[window] = cls, k + 1
        amplitude[window] = rng.uniform(0.7, 1.0)
    green = np.zeros((num_dates, size, size))
    for cls in range(1, len(CLASSES)):
        where = semantic == cls
        curve = greenness(days % YEAR, cls)  # (T,)
        green[:, where] = curve[:, None] * amplitude[where][None, :]
    cover = green[:, None]  # (T, 1, H, W): a mix of bare soil and green cover per band
    mix = SOIL[None, :, None, None] * (1 - cover) + GREEN[None, :, None, None] * cover
    series = mix + rng.normal(0.0, NOISE, size=mix.shape)
    series = np.clip(np.round(series), 0, 10000).astype(np.int16)
    target = np.stack([semantic, fields, np.zeros_like(semantic)])
    dates = [REFERENCE_DATE + dt.timedelta(days=int(d)) for d in days]
    return series, target, dates


def generate(root: str | os.PathLike, num_patches: int = 200, size: int = 32,
             min_dates: int = 6, max_dates: int = 10, random_seed: int = 0,
             progress: bool = True) -> Path:
    """Write the dataset under `root` (atomically); skip if the same settings already exist.
    Patch i is in fold i % 5 + 1."""
    root = Path(root)
    settings = {"version": GENERATOR_VERSION, "num_patches": num_patches, "size": size,
                "min_dates": min_dates, "max_dates": max_dates, "random_seed": random_seed}
    marker = root / "generator.json"
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return root
    with atomic_dir(root) as tmp:
        folder = tmp / FOLDER
        (folder / "DATA_S2").mkdir(parents=True)
        (folder / "ANNOTATIONS").mkdir()
        features = []
        for index in tqdm(range(num_patches), desc="synthetic_temporal patches", leave=True,
                          disable=not progress):
            series, target, dates = generate_patch(random_seed, index, size, min_dates,
                                                   max_dates)
            np.save(folder / "DATA_S2" / f"S2_{index}.npy", series)
            np.save(folder / "ANNOTATIONS" / f"TARGET_{index}.npy", target)
            x0, y0 = 500_000 + (index % 20) * size * 10, 5_000_000 - (index // 20) * size * 10
            features.append({"type": "Feature", "properties": {
                "ID_PATCH": index, "Fold": index % 5 + 1,
                "dates-S2": {str(k): int(d.strftime("%Y%m%d")) for k, d in enumerate(dates)}},
                "geometry": {"type": "Polygon", "coordinates": [[
                    [x0, y0], [x0 + size * 10, y0], [x0 + size * 10, y0 - size * 10],
                    [x0, y0 - size * 10], [x0, y0]]]}})
        (folder / "metadata.geojson").write_text(json.dumps(
            {"type": "FeatureCollection", "crs": {"type": "name", "properties": {
                "name": "urn:ogc:def:crs:EPSG::32633"}}, "features": features}))
        (tmp / "generator.json").write_text(json.dumps(settings, indent=2) + "\n")
    return root


class SyntheticTemporal(PastisR):
    """Crop-type segmentation of synthetic series (background + 3 crops), read as PASTIS-R
    is: folds 1-3 train, 4 val, 5 test; dates count from 2021-01-01."""

    NAME = "synthetic_temporal"
    CLASS_NAMES = CLASSES
    IGNORE_INDEX = None
    BANDS = BANDS
    FOLDER = FOLDER
    REFERENCE_DATE = REFERENCE_DATE
    # Computed with geovision.data.statistics over the train split of the default generation
    # (200 patches, seed 0), every real date counted, on images scaled to [0, 1]; a test
    # recomputes and compares.
    MEANS = (0.0809, 0.1242, 0.2592, 0.2619)
    STD_DEVS = (0.0216, 0.0312, 0.0694, 0.0347)
    RESOURCES = ()

    @classmethod
    def download_and_extract(cls, root: str | os.PathLike) -> Path:
        """Nothing to download: generate the patches deterministically into `root`."""
        return generate(root)
