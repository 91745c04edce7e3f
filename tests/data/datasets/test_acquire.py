"""Every registered dataset through the two first pipeline steps (what the raw_dataset and
dataset_index assets call): downloads from a loopback server, manual ones from files put in
place, and the registry entries the Dagster partitions come from."""

from __future__ import annotations

import functools
import hashlib
import re
import shutil
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from geovision.data import get_dataset, list_datasets
from geovision.data.acquire import acquire_dataset, build_index
from geovision.data.download import MARKER, ManualDownloadError, Resource
from geovision.layout import Layout

DOWNLOADED = ["imagenette", "imagenette_320", "imagenette_160", "oxford_pets",
              "oxford_pets_segmentation", "pascal_voc", "eurosat", "eurosat_rgb",
              "bigearthnet", "coco", "coco_voc", "spacenet1", "spacenet2", "hyspecnet11k",
              "pastis_r", "pastis_r_s1a"]
# Datasets that publish no per-band statistics: none are made up for them.
UNPUBLISHED_STATISTICS = {"hyspecnet11k", "pastis_r", "pastis_r_s1a", "pastis_r_s1d"}
MANUAL = ["inria", "massachusetts_buildings", "massachusetts_roads", "potsdam", "fmow",
          "crowdai_mapping", "crowdai_mapping_small"]
# Archives holding only part of a miniature's top-level folders; others hold all of them.
ARCHIVE_CONTENT = {"images.tar.gz": ["images"], "annotations.tar.gz": ["annotations"],
                   "train2017.zip": ["train2017"], "val2017.zip": ["val2017"],
                   "annotations_trainval2017.zip": ["annotations"],
                   "SN1_buildings_train_AOI_1_Rio_3band.tar.gz": ["3band"],
                   "SN1_buildings_train_AOI_1_Rio_geojson_buildings.tar.gz": ["geojson"],
                   **{f"SN2_buildings_train_AOI_{aoi}.tar.gz": [f"AOI_{aoi}_Train"]
                      for aoi in ("2_Vegas", "3_Paris", "4_Shanghai", "5_Khartoum")},
                   **{f"{part}.tar.gz": [f"{part}/hyspecnet-11k"] for part in (
                       *(f"hyspecnet-11k-{k:02d}" for k in range(1, 11)),
                       "hyspecnet-11k-splits")}}


def test_every_dataset_is_registered_with_its_facts():
    assert set(DOWNLOADED + MANUAL) <= set(list_datasets())
    for name in DOWNLOADED + MANUAL:
        cls = get_dataset(name)
        assert cls.NAME == name
        if name in UNPUBLISHED_STATISTICS:  # the statistics asset computes them
            assert cls.MEANS is None and cls.STD_DEVS is None, name
        else:
            assert len(cls.BANDS) == len(cls.MEANS) == len(cls.STD_DEVS)
            assert all(0 <= m < 1 for m in cls.MEANS) and all(0 < s < 1 for s in cls.STD_DEVS)
        assert all(re.fullmatch(r"[a-z0-9_]+", c) for c in cls.CLASS_NAMES), name
        assert len(set(cls.CLASS_NAMES)) == len(cls.CLASS_NAMES)
    for name in DOWNLOADED:
        resources = get_dataset(name).RESOURCES
        assert resources and all(r.checksum is not None for r in resources), name


def pack(source: Path, entries: list[str], dest: Path) -> None:
    if dest.name.endswith(".zip"):
        with zipfile.ZipFile(dest, "w") as zf:
            for entry in entries:
                for path in sorted((source / entry).rglob("*")):
                    zf.write(path, path.relative_to((source / entry).parent).as_posix())
    else:
        mode = "w" if dest.name.endswith(".tar") else "w:gz"
        with tarfile.open(dest, mode) as tar:
            for entry in entries:
                tar.add(source / entry, arcname=Path(entry).name)


@pytest.fixture()
def file_server(tmp_path):
    """Serves tmp_path/served over HTTP on 127.0.0.1; yields (folder, base URL, request log)."""
    served = tmp_path / "served"
    served.mkdir()
    log: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args) -> None:
            log.append(self.path)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/", log
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("name", DOWNLOADED)
def test_downloaded_dataset_acquires_and_indexes(name, miniature, file_server, geovision_home,
                                                 monkeypatch):
    cls = get_dataset(name)
    source = miniature(name)
    served, base_url, log = file_server
    local = []
    for resource in cls.RESOURCES:
        path = served / resource.filename
        if resource.is_archive:
            entries = ARCHIVE_CONTENT.get(resource.filename) or sorted(
                p.name for p in source.iterdir() if p.is_dir())
            pack(source, entries, path)
        else:
            shutil.copy(source / resource.filename, path)
        md5 = hashlib.md5(path.read_bytes()).hexdigest()
        local.append(Resource(base_url + resource.filename, resource.filename, md5=md5,
                              into=resource.into))
    monkeypatch.setattr(cls, "RESOURCES", tuple(local))
    raw = acquire_dataset(name, geovision_home)
    assert raw.root == Layout(geovision_home).dataset(name) and raw.num_files > 0
    assert (raw.root / MARKER).is_file() and not (raw.root / ".downloads").exists()
    requests = len(log)
    assert requests == len(local)
    again = acquire_dataset(name, geovision_home)
    assert len(log) == requests and again.data_version == raw.data_version  # nothing redone
    index = build_index(name, geovision_home)
    expected = cls.build_df(source)
    pd.testing.assert_frame_equal(index.df, expected)
    assert len(cls(raw.root, split="all")) == len(expected)


@pytest.mark.parametrize("name", MANUAL)
def test_manual_dataset_explains_then_indexes(name, miniature, geovision_home):
    with pytest.raises(ManualDownloadError) as err:
        acquire_dataset(name, geovision_home)
    assert str(Layout(geovision_home).dataset(name)) in str(err.value)
    shutil.copytree(miniature(name), Layout(geovision_home).dataset(name))
    raw = acquire_dataset(name, geovision_home)
    assert raw.num_files > 0
    index = build_index(name, geovision_home)
    pd.testing.assert_frame_equal(index.df, get_dataset(name).build_df(miniature(name)))
