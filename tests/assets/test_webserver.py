"""`make ui`: the webserver serves the code location and the history of the demo's instance."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import requests
from dagster import DagsterInstance, materialize
from dagster._core.instance.ref import InstanceRef

from geovision_assets.assets.datasets import dataset_index, raw_dataset
from geovision_assets.definitions import default_resources

QUERY = """
query {
  assetNodes { assetKey { path } }
  assetsLatestInfo(assetKeys: [{path: ["dataset_index"]}]) {
    latestMaterialization { partition metadataEntries { label } }
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_webserver_shows_assets_and_their_history(tmp_path, monkeypatch):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy("dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("GEOVISION_HOME", str(tmp_path / "home"))
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        assert materialize([raw_dataset, dataset_index], partition_key="synthetic",
                           instance=instance, resources=default_resources()).success
    port = free_port()
    webserver = subprocess.Popen(
        [str(os.path.join(os.path.dirname(sys.executable), "dagster-webserver")), "-h",
         "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        env=os.environ | {"DAGSTER_HOME": str(dagster_home)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        deadline = time.monotonic() + 120
        while True:
            try:
                answer = requests.post(url, json={"query": QUERY}, timeout=10).json()
                if answer.get("data", {}).get("assetNodes"):
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "the webserver did not answer within 120 s"
            assert webserver.poll() is None, "the webserver exited"
            time.sleep(1)
        keys = {"/".join(node["assetKey"]["path"]) for node in answer["data"]["assetNodes"]}
        assert {"raw_dataset", "dataset_index", "trained_model", "region_features"} <= keys
        (info,) = answer["data"]["assetsLatestInfo"]
        latest = info["latestMaterialization"]
        assert latest["partition"] == "synthetic"
        labels = {entry["label"] for entry in latest["metadataEntries"]}
        assert {"num_rows", "class_balance", "git_commit"} <= labels
    finally:
        webserver.terminate()
        webserver.wait(timeout=30)
