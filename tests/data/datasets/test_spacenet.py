"""SpaceNet 1-3 from miniatures of the published training layouts."""

from __future__ import annotations

import numpy as np
import pytest

from geovision.data import get_dataset
from geovision.data.datasets.spacenet import BUCKET, PUBLIC_URL, object_url

SN1 = get_dataset("spacenet1")
SN2 = get_dataset("spacenet2")
SN3 = get_dataset("spacenet3")


def mask(cls, root, stem: str) -> np.ndarray:
    return cls.read_mask(root / "geovision_masks" / cls.NAME / f"{stem}.tif")


def test_sn1_contract_and_masks(miniature, contract):
    root = miniature("spacenet1")
    df = contract(SN1, root, val_split=0.2)
    assert len(df) == 6
    assert df["image_path"].iloc[0] == "3band/3band_AOI_1_RIO_img1.tif"
    assert df["mask_path"].iloc[0] == "geovision_masks/spacenet1/3band_AOI_1_RIO_img1.tif"
    for n in (1, 3):  # empty (0-byte) geojsons: empty masks
        assert mask(SN1, root, f"3band_AOI_1_RIO_img{n}").sum() == 0
    m = mask(SN1, root, "3band_AOI_1_RIO_img4")  # 406 x 439 as stored; a null geometry skipped
    assert m.shape == (406, 439) and m[100:150, 200:220].all() and m.sum() == 50 * 20
    m = mask(SN1, root, "3band_AOI_1_RIO_img6")  # EPSG:3857 footprint, reprojected
    assert m[300:310, 400:430].all() and m.sum() == 10 * 30


def test_sn1_chips_resampled_to_one_size(miniature):
    root = miniature("spacenet1")
    ds = SN1(root, split="all")
    for index in range(len(ds)):
        image, one_hot, _ = ds[index]
        assert image.shape == (3, 406, 439) and one_hot.shape == (2, 406, 439)
    # chip 2 is stored 406 x 438: its box (cols 30-59) lands on the 439-wide grid scaled
    m = mask(SN1, root, "3band_AOI_1_RIO_img2")
    assert m.shape == (406, 439)
    columns = np.flatnonzero(m.any(axis=0))
    assert columns[0] == 30 and columns[-1] in (59, 60) and m.any(axis=1).sum() == 10


def test_sn2_pairs_by_image_id_and_drops_unlabelled(miniature, contract):
    root = miniature("spacenet2")
    df = contract(SN2, root, val_split=0.25)
    assert len(df) == 16  # 4 AOIs x 4 labelled chips; chip 5 of each has no geojson
    assert not df["image_path"].str.contains("_img5").any()
    aoi = df["image_path"].str.extract(r"AOI_(\d)")[0]
    assert (df.assign(aoi=aoi).groupby("aoi")["split"].agg(sorted).map(tuple) == (
        "test", "train", "train", "val")).all()  # stratified by AOI
    assert df["image_path"].iloc[0] == (
        "AOI_2_Vegas_Train/RGB-PanSharpen/RGB-PanSharpen_AOI_2_Vegas_img1.tif")
    m = mask(SN2, root, "RGB-PanSharpen_AOI_3_Paris_img2")
    assert m[3:7, 3:9].all() and m[10:14, 10:16].all() and m.sum() == 24 + 24
    image, _, _ = SN2(root, split="all")[0]
    assert float(image.max()) <= (1 - 0.406) / 0.225 + 1e-4  # 11-bit scaled by 2047


def test_sn3_roads_are_one_pixel_lines(miniature, contract):
    root = miniature("spacenet3")
    contract(SN3, root, val_split=0.25)
    m = mask(SN3, root, "SN3_roads_train_AOI_2_Vegas_PS-RGB_img1")
    assert m[8].all() and m.sum() == 16  # all_touched=False: the centre row only
    assert mask(SN3, root, "SN3_roads_train_AOI_3_Paris_PS-RGB_img2").sum() == 0
    assert SN3.CLASS_NAMES == ("background", "road")


def test_tarballs_come_from_the_public_bucket():
    assert BUCKET == "s3://spacenet-dataset/spacenet"
    assert object_url("SN1_buildings", "x.tar.gz") == (
        f"{BUCKET}/SN1_buildings/tarballs/x.tar.gz")
    assert PUBLIC_URL == "https://spacenet-dataset.s3.amazonaws.com/spacenet"
    names = [r.filename for r in SN2.RESOURCES]
    assert names == [f"SN2_buildings_train_AOI_{a}.tar.gz"
                     for a in ("2_Vegas", "3_Paris", "4_Shanghai", "5_Khartoum")]
    for cls in (SN1, SN2, SN3):
        assert all(r.md5 and r.public and r.url.startswith(BUCKET) for r in cls.RESOURCES)


@pytest.mark.parametrize("name", ["spacenet1", "spacenet2"])
def test_statistics_and_shards(name, miniature, tmp_path, pipeline_checks):
    from geovision.data.statistics import class_column

    cls = get_dataset(name)
    table = pipeline_checks(cls, miniature(name), tmp_path)
    assert table[class_column("building", "pixels")].sum() > 0
