"""Which scene band feeds which model band: by name, else by nearest centre wavelength.

A model trained on red, green, blue and NIR runs on any scene that has those bands, whether
they are named so (a Sentinel-2 scene after its product reader: B04, B03, B02, B08 are found
through their wavelengths too) or are three of a hyperspectral sensor's hundreds of narrow
bands (EnMAP, PRISMA), where the band nearest each model band's centre wavelength is taken.

Centre wavelengths (nm): Sentinel-2A MSI, from ESA's Sentinel-2 spectral response functions
(COPE-GSEG-EOPG-TN-15-0007, v3.0); the generic names take the Sentinel-2 band that
defines them for our datasets (blue B02, green B03, red B04, nir B08), since the RGB+NIR
datasets (synthetic, Potsdam) carry no sensor response of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from geovision.errors import DataError

SENTINEL2_NM = {
    "B01": 442.7, "B02": 492.4, "B03": 559.8, "B04": 664.6, "B05": 704.1, "B06": 740.5,
    "B07": 782.8, "B08": 832.8, "B8A": 864.7, "B09": 945.1, "B10": 1373.5, "B11": 1613.7,
    "B12": 2202.4,
}
GENERIC_NM = {"blue": SENTINEL2_NM["B02"], "green": SENTINEL2_NM["B03"],
              "red": SENTINEL2_NM["B04"], "nir": SENTINEL2_NM["B08"]}
BAND_WAVELENGTHS_NM = {**{k.lower(): v for k, v in SENTINEL2_NM.items()}, **GENERIC_NM}
# How far (nm) a scene band's centre may lie from the model band's; Sentinel-2's broad NIR
# band is 106 nm wide, hyperspectral bands are spaced 6-12 nm apart.
MAX_OFFSET_NM = 30.0


def band_wavelength(name: str) -> float | None:
    """The centre wavelength of a known band name (case-insensitive; "B8" == "B08")."""
    key = name.strip().lower()
    if len(key) == 2 and key[0] == "b" and key[1].isdigit():
        key = f"b0{key[1]}"
    return BAND_WAVELENGTHS_NM.get(key)


@dataclass(frozen=True)
class SceneBand:
    name: str
    wavelength_nm: float | None = None


@dataclass(frozen=True)
class BandMatch:
    model_band: str
    scene_index: int  # 0-based position in the scene
    scene_band: str
    how: str  # "name" or "wavelength"
    offset_nm: float = 0.0


def match_bands(model_bands: Sequence[str], scene_bands: Sequence[SceneBand],
                max_offset_nm: float = MAX_OFFSET_NM) -> list[BandMatch]:
    """One scene band per model band, in the model's order; raises DataError naming each
    model band that neither a name nor a centre wavelength within `max_offset_nm` finds."""
    names = {band.name.strip().lower(): i for i, band in enumerate(scene_bands)}
    waves = [(i, band.wavelength_nm if band.wavelength_nm is not None
              else band_wavelength(band.name)) for i, band in enumerate(scene_bands)]
    waves = [(i, w) for i, w in waves if w is not None]
    matches, missing = [], []
    for model_band in model_bands:
        key = model_band.strip().lower()
        if key in names:
            i = names[key]
            matches.append(BandMatch(model_band, i, scene_bands[i].name, "name"))
            continue
        wanted = band_wavelength(model_band)
        if wanted is not None and waves:
            i, wave = min(waves, key=lambda iw: abs(iw[1] - wanted))
            if abs(wave - wanted) <= max_offset_nm:
                matches.append(BandMatch(model_band, i, scene_bands[i].name, "wavelength",
                                         round(wave - wanted, 2)))
                continue
        missing.append(model_band if wanted is None else f"{model_band} ({wanted} nm)")
    if missing:
        available = ", ".join(f"{b.name}" + (f" ({b.wavelength_nm} nm)" if b.wavelength_nm
                                             else "") for b in scene_bands[:12])
        raise DataError(f"the scene lacks the model's band(s) {', '.join(missing)}: no band of "
                        f"that name nor one within {max_offset_nm} nm of its centre. Scene "
                        f"bands: {available}{' ...' if len(scene_bands) > 12 else ''}. Use a "
                        "scene from a sensor that has it, or a model trained without it.")
    return matches
