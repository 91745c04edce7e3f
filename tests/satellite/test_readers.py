"""Product readers on tiny products in the real layouts, and the analysis-ready contract."""

from __future__ import annotations

import math
import zipfile
from datetime import UTC, datetime

import h5py
import numpy as np
import pytest
import rasterio
from PIL import Image

from geovision.errors import DataError
from geovision.satellite import open_scene, samples
from geovision.satellite.readers import (
    earth_sun_distance_au,
    read_enmap,
    read_imd,
    read_prisma,
    read_worldview,
    write_scene,
)

T = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)


def test_prisma_l2d_bands_scaling_nodata_and_grid(tmp_path):
    he5 = samples.make_prisma(tmp_path, T, rows=8, cols=9, seed=3, zipped=False)
    product = read_prisma(he5)
    # 66 VNIR with one zero placeholder + 173 SWIR with one: 237 bands, ascending
    wavelengths = [b.wavelength_nm for b in product.bands]
    assert len(wavelengths) == 237 and wavelengths == sorted(wavelengths)
    assert 0.0 not in wavelengths and min(wavelengths) == 400.0
    assert (product.width, product.height) == (9, 8)  # cols, rows: not swapped
    assert product.transform.c == 500000.0 and product.transform.f == 4600020.0
    assert product.transform.a == 30.0 and product.transform.e == -30.0
    assert product.crs.to_epsg() == 32633 and product.acquired == T
    planes = list(product.planes())
    with h5py.File(he5) as f:
        swir = f["HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/SWIR_Cube"][()]
        centres = f.attrs["List_Cw_Swir"]
    # the longest SWIR wavelength is stored first (descending): the last output band
    index = int(np.argmax(centres))
    expected = 0.0 + swir[:, index, :].astype(np.float32) * np.float32(0.8 / 65535)
    expected[swir[:, index, :] == 0] = np.nan
    np.testing.assert_allclose(planes[-1], expected, rtol=1e-6)
    assert product.bands[-1].name == f"swir_{index + 1:03d}"
    assert np.isnan(planes[0][0, 0])  # DN 0 is fill


def test_prisma_other_levels_are_refused(tmp_path):
    he5 = tmp_path / "PRS_L1_STD_OFFL_20200524103704_20200524103708_0001.he5"
    with h5py.File(he5, "w") as f:
        f.create_group("HDFEOS/SWATHS/PRS_L1_HCO/Data Fields")
    with pytest.raises(DataError, match="only L2D is geocoded"):
        read_prisma(he5)


def test_enmap_l2a_gain_offset_nodata_and_wavelengths(tmp_path):
    pid = samples.enmap_id(24647, 25, T)
    folder = samples.make_enmap(tmp_path, pid, T, width=5, height=6, seed=7)
    product = read_enmap(folder)
    assert len(product.bands) == 224
    np.testing.assert_allclose([b.wavelength_nm for b in product.bands],
                               samples.enmap_wavelengths())
    assert product.bands[1].fwhm_nm == 9.0
    with rasterio.open(next(folder.glob("*SPECTRAL_IMAGE_COG.TIF"))) as src:
        dn = src.read(10)
    plane = list(product.planes())[9]
    assert np.isnan(plane[0, 0]) and dn[0, 0] == -32768
    np.testing.assert_allclose(plane[1:], dn[1:].astype(np.float32) * np.float32(1e-4),
                               rtol=1e-6)
    assert product.acquired == T and product.crs.to_epsg() == 32632


def test_worldview_imd_and_toa_reflectance(tmp_path):
    root = samples.make_worldview(tmp_path, "013663600010", "1040010012345600", T, zipped=False)
    imd = read_imd(next(root.rglob("*.IMD")))
    assert imd["satId"] == "WV03" and imd["CatId"] == "1040010012345600"
    assert imd["bands"] == ["C", "B", "G", "Y", "R", "RE", "N", "N2"]
    assert imd["cloudCover"] == 0.02 and imd["meanSunEl"] == 55.1
    product = read_worldview(root)
    assert product.quantity == "toa_reflectance"
    assert [b.name for b in product.bands] == imd["bands"]  # already ascending
    with rasterio.open(next(root.rglob("*.TIF"))) as src:
        dn = src.read(3).astype(np.float64)  # green
    d = earth_sun_distance_au(T)
    radiance = dn * imd["absCalFactor"][2] / imd["effectiveBandwidth"][2]
    expected = radiance * d * d * math.pi / (1830.18 * math.cos(math.radians(90 - 55.1)))
    np.testing.assert_allclose(list(product.planes())[2], expected, rtol=1e-5)
    assert 0.98 < earth_sun_distance_au(datetime(2026, 1, 3, tzinfo=UTC)) < 0.984  # perihelion


def test_analysis_ready_scene_contract(tmp_path):
    archive = samples.make_prisma(tmp_path, T, rows=8, cols=9)
    zipfile.ZipFile(archive).extractall(tmp_path / "x")
    product = read_prisma(next((tmp_path / "x").glob("*.he5")))
    written = write_scene(product, tmp_path / "scene", provider="prisma", scene_key="k1")
    with rasterio.open(written["scene"]) as src:
        assert src.dtypes[0] == "float32" and src.count == 237 and math.isnan(src.nodata)
        assert src.tags()["provider"] == "prisma" and src.tags()["scene_key"] == "k1"
        assert src.tags()["acquired"] == T.isoformat()
        assert src.descriptions[0] == product.bands[0].name
        assert float(src.tags(1)["wavelength_nm"]) == product.bands[0].wavelength_nm
        assert src.tags(5)["fwhm_nm"] == "12.0"
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.read(1).shape == (8, 9)
    info = open_scene(tmp_path / "scene")
    assert info.band_names == tuple(b.name for b in product.bands)
    assert info.wavelengths_nm == tuple(round(b.wavelength_nm, 4) for b in product.bands)
    assert info.crs.to_epsg() == 32633 and info.bounds == (500000.0, 4599780.0, 500270.0,
                                                           4600020.0)
    assert info.provider == "prisma" and info.acquired == T
    with Image.open(written["quicklook"]) as ql:
        assert ql.size == (9, 8) and ql.mode == "RGBA"
        assert ql.getpixel((0, 0))[3] == 0  # the fill pixel is transparent


def test_worldview_tiles_are_mosaicked(tmp_path):
    root = samples.make_worldview(tmp_path, "058800151040", "1040010012345601", T, width=8,
                                  height=5, zipped=False)
    [tif] = list(root.rglob("*.TIF"))
    with rasterio.open(tif) as src:
        data, profile = src.read(), src.profile
    for col, (start, stop) in enumerate(((0, 5), (5, 8)), 1):
        name = tif.name.replace("-M2AS-", f"-M2AS_R1C{col}-")
        transform = profile["transform"] * rasterio.Affine.translation(start, 0)
        with rasterio.open(tif.with_name(name), "w", **{**profile, "width": stop - start,
                                                        "transform": transform}) as dst:
            dst.write(data[:, :, start:stop])
    tif.unlink()
    product = read_worldview(root)
    assert (product.width, product.height) == (8, 5)
    planes = list(product.planes())
    ratio = planes[0] / data[0].astype(np.float32)  # one factor per band: the tiles line up
    np.testing.assert_allclose(ratio, ratio[0, 0], rtol=1e-5)
