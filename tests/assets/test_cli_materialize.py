"""`dagster asset materialize --select ... --partition ...` from a shell, with fresh history."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from dagster import AssetKey, DagsterInstance
from dagster._core.instance.ref import InstanceRef


def test_dagster_cli_materializes_dataset_assets(tmp_path):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy("dagster.yaml", dagster_home / "dagster.yaml")
    env = os.environ | {"DAGSTER_HOME": str(dagster_home),
                        "GEOVISION_HOME": str(tmp_path / "home")}
    dagster = Path(sys.executable).parent / "dagster"
    done = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "geovision_assets.definitions",
         "--select", "raw_dataset,dataset_index", "--partition", "synthetic"],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    index = pd.read_parquet(tmp_path / "home" / "index" / "synthetic.parquet")
    assert len(index) == 400
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        for key in ("raw_dataset", "dataset_index"):
            event = instance.get_latest_materialization_event(AssetKey(key))
            assert event is not None, key
            materialization = event.asset_materialization
            assert materialization.partition == "synthetic"
            assert "git_commit" in materialization.metadata
        index_meta = instance.get_latest_materialization_event(
            AssetKey("dataset_index")).asset_materialization.metadata
        assert index_meta["num_rows"].value == 400
