"""`make ui`: the webserver serves the code location and the history of the demo's instance."""

from __future__ import annotations

import shutil

import requests
from dagster import DagsterInstance, materialize
from dagster._core.instance.ref import InstanceRef

from geovision_assets.assets.datasets import dataset_index, raw_dataset
from geovision_assets.definitions import default_resources
from tests.servers import dagster_webserver

QUERY = """
query {
  assetNodes { assetKey { path } }
  assetsLatestInfo(assetKeys: [{path: ["dataset_index"]}]) {
    latestMaterialization { partition metadataEntries { label } }
  }
}
"""


def test_webserver_shows_assets_and_their_history(tmp_path, monkeypatch):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy("dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("GEOVISION_HOME", str(tmp_path / "home"))
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        assert materialize([raw_dataset, dataset_index], partition_key="synthetic",
                           instance=instance, resources=default_resources()).success
    with dagster_webserver(dagster_home, tmp_path / "webserver.log") as url:
        answer = requests.post(f"{url}/graphql", json={"query": QUERY}, timeout=30).json()
    keys = {"/".join(node["assetKey"]["path"]) for node in answer["data"]["assetNodes"]}
    assert {"raw_dataset", "dataset_index", "trained_model", "region_features"} <= keys
    (info,) = answer["data"]["assetsLatestInfo"]
    latest = info["latestMaterialization"]
    assert latest["partition"] == "synthetic"
    labels = {entry["label"] for entry in latest["metadataEntries"]}
    assert {"num_rows", "class_balance", "git_commit"} <= labels
