"""Scene inference: a trained model over a GeoTIFF of any size, in bounded memory.

The scene is cut with the chip grid of `geovision.data.tiling` (only the bands the model
needs are read, matched by name or centre wavelength), standardised with the training
statistics, run through the model in batches, and the chips' class probabilities are
stitched back by `geovision.data.stitching` (mean blending across the overlap) into a
georeferenced raster with the scene's CRS and transform. Written to `out/`:

    probabilities.tif   cloud-optimised GeoTIFF, one uint8 band per class (probability x 255;
                        0 in every band where the scene has no data: no nodata is declared,
                        since 0 is also a probability)
    labels.tif          cloud-optimised GeoTIFF, uint8 class index, 255 = nodata
    quicklook.png       the labels in colour, at most 1024 px a side
    prediction.json     classes, band matching, class areas (km²), chips, timings
(`output="logits"` writes logits.tif, float32 model outputs, instead of the first two.)

Memory: the stitcher holds about two chip heights of output rows; a batch of chips and its
outputs; the label pass reads BLOCK rows at a time; GDAL writes the COGs from the tiled files.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from geovision.data.stitching import stitch
from geovision.data.tiling import chip_index, open_raster, read_window
from geovision.data.transforms import unit_scale
from geovision.errors import ConfigError, DataError, MissingDataError
from geovision.inference.bands import BandMatch, SceneBand, match_bands
from geovision.io.atomic import atomic_file

OUTPUTS = ("probabilities", "logits")
NODATA_LABEL = 255
LABEL_BLOCK_ROWS = 1024
QUICKLOOK_SIZE = 1024
GDAL_CACHE_MB = 256  # GDAL's block cache (default: 5% of RAM) counts in the memory bound
COG_BLOCK = 256
# Compression levels: on the 4096 px 5-class probabilities of bench/inference.py deflate's
# level 1 wrote the COG in 1.7-2.2 s against 6.9-7.7 s at its default 6, for a file 10% larger
# (16.4 vs 14.9 MiB); zstd level 1: 1.4-1.9 s, 20.0 MiB
LEVELS = {"DEFLATE": 1, "ZSTD": 1}
PALETTE = np.array([(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
                    (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
                    (188, 189, 34), (23, 190, 207)], dtype=np.uint8)


@dataclass
class SceneModel:
    """A model and what it needs to be applied: its bands, training statistics and task."""

    model: nn.Module
    bands: tuple[str, ...]
    means: tuple[float, ...]
    std_devs: tuple[float, ...]
    task: str
    class_names: tuple[str, ...]
    scale: float | None = None  # the training dataset's SCALE, for integer scenes
    source: str = ""


@dataclass
class ScenePrediction:
    out_dir: Path
    files: dict[str, Path]
    class_names: list[str]
    class_areas_km2: dict[str, float]
    bands: list[dict[str, Any]]
    shape: tuple[int, int]
    crs: str | None
    transform: tuple[float, ...]
    num_chips: int
    seconds: dict[str, float] = field(default_factory=dict)


def load_scene_model(run: str | Path) -> SceneModel:
    """A SceneModel from a training run folder (its chosen checkpoint and recorded
    statistics) or from a `models/<dataset>/<recipe>.json` record."""
    from geovision.experiment.model_record import ModelRecord
    from geovision.experiment.runfolders.inputs import load_run
    from geovision.experiment.runtime.fit import read_fit_result
    from geovision.experiment.workflows import load_module

    path = Path(run)
    if path.is_file() and path.suffix == ".json":
        record = ModelRecord.from_json(path.read_text(), path)
        path, checkpoint = record.run_dir, record.checkpoint
    else:
        checkpoint = None
    if not path.is_dir():
        raise MissingDataError(f"no training run at {run}: pass a run folder (runs/<project>/"
                               "<name>/<stamp>) or a models/<dataset>/<recipe>.json record.")
    inputs = load_run(path)
    checkpoint = checkpoint or read_fit_result(path).final_checkpoint
    module = load_module(checkpoint)
    dataset_cls = inputs.dataset_cls
    stats = inputs.normalisation or {"means": dataset_cls.MEANS,
                                     "std_devs": dataset_cls.STD_DEVS}
    return SceneModel(model=module.model, bands=tuple(dataset_cls.BANDS),
                      means=tuple(stats["means"]), std_devs=tuple(stats["std_devs"]),
                      task=dataset_cls.TASK, class_names=tuple(dataset_cls.CLASS_NAMES),
                      scale=dataset_cls.SCALE, source=str(checkpoint))


def scene_bands(path: str | Path) -> list[SceneBand]:
    """The bands of a scene: names from the band descriptions, centre wavelengths from the
    per-band `wavelength_nm` tags (the analysis-ready scene contract)."""
    from geovision.satellite import open_scene

    info = open_scene(path)
    return [SceneBand(name, wave) for name, wave in
            zip(info.band_names, info.wavelengths_nm, strict=True)]


def _chips_in_batches(src: Any, chips: Any, indexes: list[int], batch_size: int,
                      fill: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(chip_idx array, (B, C, h, w) stored values) batches in index (row) order.

    The next batch is read on a background thread while the caller works on this one (GDAL
    decodes without holding the GIL: on a 4096 px deflate scene reading was a third of the
    time, in series with the model). Two buffers take turns, so a batch is valid until the
    caller asks for the one after the next; every chip has the same size (the chip grid)."""
    windows = chips[["row_off", "col_off", "height", "width"]].to_numpy()
    labels = chips.index.to_numpy()
    if len(chips) == 0:
        return
    _, _, height, width = (int(v) for v in windows[0])
    dtype = np.dtype(src.dtypes[indexes[0] - 1])
    shape = (min(batch_size, len(chips)), len(indexes), height, width)
    buffers = [np.empty(shape, dtype=dtype), np.empty(shape, dtype=dtype)]
    starts = list(range(0, len(chips), batch_size))

    def read(k: int) -> np.ndarray:
        part = windows[starts[k]:starts[k] + batch_size]
        batch = buffers[k % 2][:len(part)]
        for i, (r, c, h, w) in enumerate(part):
            read_window(src, int(r), int(c), int(h), int(w), fill, indexes, out=batch[i])
        return batch

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="scene-reader") as pool:
        pending = pool.submit(read, 0)
        for k, start in enumerate(starts):
            batch = pending.result()
            if k + 1 < len(starts):
                pending = pool.submit(read, k + 1)
            yield labels[start:start + batch_size], batch


class _Standardise:
    """Stored values -> the model's input: scaled to [0, 1] as in training, standardised,
    nodata (NaN or the declared value) set to the mean (0) and reported."""

    def __init__(self, means: Sequence[float], stds: Sequence[float], dtype: np.dtype,
                 scale: float | None, nodata: float | None) -> None:
        divisor = unit_scale(dtype, scale if np.issubdtype(dtype, np.integer) else None)
        std = torch.tensor(stds, dtype=torch.float32).view(1, -1, 1, 1)
        self.gain = 1.0 / (divisor * std)
        self.offset = -torch.tensor(means, dtype=torch.float32).view(1, -1, 1, 1) / std
        self.nodata = nodata

    def __call__(self, values: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = torch.from_numpy(values).float()
        if self.nodata is None and not values.dtype.kind == "f":  # integers cannot be NaN
            return x.mul_(self.gain).add_(self.offset), None
        if self.nodata is None or math.isnan(self.nodata):
            # a NaN anywhere makes the sum NaN: one pass and no mask for the usual batch
            # without any (a sum that is NaN from infinities only takes the full check)
            invalid = torch.isnan(x) if bool(torch.isnan(x.sum())) else None
        else:
            invalid = x == self.nodata
        missing = invalid.all(dim=1) if invalid is not None and bool(invalid.any()) else None
        x = x.mul_(self.gain).add_(self.offset)
        if missing is not None:
            x = torch.where(invalid, torch.zeros(()), x)
        return x, missing


def predict_scene(model_or_run: SceneModel | str | Path, scene: str | Path, out: str | Path,
                  chip_size: int = 512, overlap: int = 32, batch_size: int = 16,
                  device: str = "cpu", output: str = "probabilities", compress: str = "deflate",
                  write_probabilities: bool = True, progress: bool = True) -> ScenePrediction:
    """Apply a model (a SceneModel, a run folder or a model record) to a scene GeoTIFF and
    write the outputs listed in the module docstring under `out/` (each file atomically;
    `write_probabilities=False` keeps only the labels of the probabilities)."""
    import rasterio

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        return _predict_scene(model_or_run, scene, out, chip_size, overlap, batch_size, device,
                              output, compress, write_probabilities, progress)


def _predict_scene(model_or_run: SceneModel | str | Path, scene: str | Path, out: str | Path,
                   chip_size: int, overlap: int, batch_size: int, device: str, output: str,
                   compress: str, write_probabilities: bool, progress: bool
                   ) -> ScenePrediction:
    if output not in OUTPUTS:
        raise ConfigError(f"output={output!r}: use one of {OUTPUTS}.")
    spec = model_or_run if isinstance(model_or_run, SceneModel) else \
        load_scene_model(model_or_run)
    scene, out = Path(scene), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    model = spec.model.eval().float().to(device)
    with open_raster(scene) as src:
        matches = match_bands(spec.bands, scene_bands(scene))
        indexes = [m.scene_index + 1 for m in matches]
        dtype = np.dtype(src.dtypes[indexes[0] - 1])
        nodata = src.nodata
        height, width = src.height, src.width
        crs = src.crs.to_wkt() if src.crs else None
        transform = tuple(src.transform)[:6]
        border = "shift" if height >= chip_size and width >= chip_size else "pad"
        chips = chip_index([scene], chip_size, overlap, border=border, progress=False)
        standardise = _Standardise(spec.means, spec.std_devs, dtype, spec.scale, nodata)
        fill = nodata if nodata is not None else 0
        num_classes = len(spec.class_names)

        def predictions() -> Iterator[tuple[int, np.ndarray]]:
            batches = _chips_in_batches(src, chips, indexes, batch_size, fill)
            with torch.inference_mode(), closing(batches):
                for labels, values in batches:
                    x, missing = standardise(values)
                    logits = model(x.to(device)).float().cpu()
                    if logits.ndim == 2:  # a classifier: its answer over the whole chip
                        logits = logits[:, :, None, None].expand(-1, -1, *x.shape[-2:])
                    if output == "logits":
                        result = logits.contiguous().numpy()
                    else:
                        probs = torch.sigmoid(logits) if spec.task == "multilabel" else \
                            torch.softmax(logits, dim=1)
                        if missing is not None:
                            probs = probs.masked_fill(missing[:, None], 0.0)
                        # +0.5 then truncation rounds (probabilities are not negative)
                        result = probs.mul_(255).add_(0.5).to(torch.uint8).numpy()
                    yield from zip(labels.tolist(), result, strict=True)

        name = "logits.tif" if output == "logits" else "probabilities.tif"
        tiled = out / f".{name}.tiled.tif"
        predicted = predictions()
        try:
            result = stitch(predicted, chips, tiled, like=scene, blend="mean",
                            fill_value=0, compress=None, progress=progress)
        finally:
            predicted.close()  # the reader thread stops before the scene is closed
        if result.shape[0] != num_classes and output == "probabilities":
            raise DataError(f"the model returns {result.shape[0]} classes but its dataset names "
                            f"{num_classes}: check the run's dataset.")
    timings["predict_and_stitch"] = time.perf_counter() - started
    files: dict[str, Path] = {}
    try:
        areas: dict[str, float] = {}
        if output == "probabilities":
            labels_tiled = out / ".labels.tiled.tif"
            started = time.perf_counter()
            counts = _labels_from_probabilities(tiled, labels_tiled, scene, progress)
            timings["labels"] = time.perf_counter() - started
            pixel_km2 = _pixel_area_km2(scene)
            areas = {n: round(float(counts[i]) * pixel_km2, 6)
                     for i, n in enumerate(spec.class_names)}
            started = time.perf_counter()
            files["labels"] = _to_cog(labels_tiled, out / "labels.tif", compress,
                                      nodata=NODATA_LABEL, resampling="NEAREST")
            files["quicklook"] = _quicklook(out / "labels.tif", out / "quicklook.png")
            timings["labels_cog"] = time.perf_counter() - started
        if output == "logits" or write_probabilities:
            started = time.perf_counter()
            files[output] = _to_cog(tiled, out / name, compress,
                                resampling="AVERAGE" if output == "probabilities" else "NEAREST")
            timings["cog"] = time.perf_counter() - started
    finally:
        for tmp in out.glob(".*.tiled.tif"):
            tmp.unlink()
    prediction = ScenePrediction(
        out_dir=out, files=files, class_names=list(spec.class_names), class_areas_km2=areas,
        bands=[asdict(m) for m in matches], shape=(height, width), crs=crs,
        transform=transform, num_chips=len(chips),
        seconds={k: round(v, 3) for k, v in timings.items()})
    with atomic_file(out / "prediction.json") as tmp:
        tmp.write_text(json.dumps({
            "scene": str(scene), "model": spec.source, "task": spec.task, "output": output,
            "chip_size": chip_size, "overlap": overlap, "batch_size": batch_size,
            **{k: v for k, v in asdict(prediction).items() if k not in ("out_dir", "files")},
            "files": {k: str(v) for k, v in files.items()}}, indent=1))
    files["json"] = out / "prediction.json"
    return prediction


def _labels_from_probabilities(probabilities: Path, labels: Path, like: Path,
                               progress: bool) -> np.ndarray:
    """Argmax of the stitched probabilities, LABEL_BLOCK_ROWS rows at a time, into a tiled
    uint8 GeoTIFF (255 where every probability is 0: nodata); returns pixels per class."""
    import rasterio
    from rasterio.windows import Window

    with open_raster(probabilities) as src:
        profile = {"driver": "GTiff", "height": src.height, "width": src.width, "count": 1,
                   "dtype": "uint8", "crs": src.crs, "transform": src.transform,
                   "tiled": True, "blockxsize": 256, "blockysize": 256,
                   "nodata": NODATA_LABEL}
        counts = np.zeros(src.count, dtype=np.int64)
        with rasterio.open(labels, "w", **profile) as dst:
            rows = range(0, src.height, LABEL_BLOCK_ROWS)
            for row in tqdm(rows, desc=f"labels {like.name}", unit="block", leave=True,
                            disable=not progress):
                window = Window(0, row, src.width, min(LABEL_BLOCK_ROWS, src.height - row))
                probs = src.read(window=window)
                label = _argmax(probs)
                counts += np.bincount(label.ravel(), minlength=256)[:src.count]
                dst.write(label, 1, window=window)
    return counts


def _argmax(probs: np.ndarray) -> np.ndarray:
    """(K, h, w) uint8 probabilities -> (h, w) uint8 labels (the first of equal maxima),
    NODATA_LABEL where all are 0: class by class over contiguous planes, which is 10x faster
    than numpy's argmax along the first axis."""
    label = np.zeros(probs.shape[1:], dtype=np.uint8)
    best = probs[0].copy()
    for k in range(1, probs.shape[0]):
        better = probs[k] > best
        label[better] = k
        np.maximum(best, probs[k], out=best)
    label[best == 0] = NODATA_LABEL
    return label


def overview_factors(height: int, width: int, block: int = COG_BLOCK) -> list[int]:
    """The overview levels GDAL's COG driver makes with OVERVIEWS=AUTO: halvings until the
    image fits in one block."""
    factors, factor = [], 2
    while max(height, width) / (factor // 2) > block:
        factors.append(factor)
        factor *= 2
    return factors


def _to_cog(tiled: Path, path: Path, compress: str, nodata: float | None = None,
            resampling: str = "AVERAGE") -> Path:
    """The tiled GeoTIFF rewritten as a cloud-optimised GeoTIFF (overviews, ordered tiles).
    The overviews are built in the tiled file first and copied (FORCE_USE_EXISTING): the COG
    driver's own overview pass (OVERVIEWS=AUTO) took 3-4x longer on 5-band probabilities.
    Labels take NEAREST overviews (classes stay classes). `nodata` is declared (None: none,
    so that a probability of 0 is averaged into the overviews as the value it is)."""
    import rasterio
    import rasterio.shutil
    from rasterio.enums import Resampling

    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(tiled, "r+") as dst:
        dst.nodata = nodata
        factors = overview_factors(dst.height, dst.width)
        if factors:
            dst.build_overviews(factors, Resampling[resampling.lower()])
    options = {"driver": "COG", "compress": compress.upper(), "blocksize": COG_BLOCK,
               "overviews": "FORCE_USE_EXISTING" if factors else "NONE",
               "num_threads": "ALL_CPUS"}
    if compress.upper() in LEVELS:
        options["level"] = LEVELS[compress.upper()]
    with atomic_file(path) as tmp:
        tmp.unlink(missing_ok=True)
        rasterio.shutil.copy(str(tiled), str(tmp), **options)
    return path


def _pixel_area_km2(scene: Path) -> float:
    """One pixel's ground area: from the transform in a projected CRS (metres), at the
    scene's centre latitude in a geographic one."""
    with open_raster(scene) as src:
        a, b, _, d, e, _ = tuple(src.transform)[:6]
        area = abs(a * e - b * d)
        if src.crs is not None and src.crs.is_geographic:
            lat = math.radians(src.xy(src.height / 2, src.width / 2)[1])
            metres = 111_320.0
            return area * metres * metres * math.cos(lat) / 1e6
        factor = src.crs.linear_units_factor[1] if src.crs is not None else 1.0
    return area * factor * factor / 1e6


def _quicklook(labels: Path, path: Path) -> Path:
    """The labels in colour (nodata transparent), read decimated from the COG's overviews."""
    from PIL import Image

    with open_raster(labels) as src:
        factor = max(1, math.ceil(max(src.height, src.width) / QUICKLOOK_SIZE))
        shape = (max(1, src.height // factor), max(1, src.width // factor))
        label = src.read(1, out_shape=shape)
    rgba = np.zeros((*shape, 4), dtype=np.uint8)
    valid = label != NODATA_LABEL
    rgba[..., :3] = PALETTE[label % len(PALETTE)]
    rgba[..., 3] = np.where(valid, 255, 0)
    with atomic_file(path) as tmp:
        Image.fromarray(rgba, mode="RGBA").save(tmp, format="PNG")
    return path


def band_summary(matches: Sequence[BandMatch]) -> str:
    return ", ".join(f"{m.model_band}<-{m.scene_band} ({m.how})" for m in matches)
