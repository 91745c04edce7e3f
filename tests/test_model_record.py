"""The model record between the pipeline steps: a typed value, stored as JSON and read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geovision.errors import DataError
from geovision.experiment.model_record import ModelRecord

RECORD = ModelRecord(
    dataset="synthetic", recipe="demo", run_dir=Path("/a/runs/demo/small_cnn/1"),
    checkpoint=Path("/a/runs/demo/small_cnn/1/checkpoints/epoch004.ckpt"), epochs=8,
    config_hash="0123456789abcdef", workflow="supervised", devices=1,
    means=[0.1, 0.2], std_devs=[0.3, 0.4], test_metrics={"test_accuracy": 0.9875},
    chance_accuracy=0.2625, checkpoint_sha256="f" * 64)


def test_the_record_round_trips_through_its_json():
    text = RECORD.to_json()
    assert json.loads(text)["checkpoint"] == "/a/runs/demo/small_cnn/1/checkpoints/epoch004.ckpt"
    assert ModelRecord.from_json(text) == RECORD
    assert isinstance(ModelRecord.from_json(text).run_dir, Path)


def test_a_record_of_another_version_says_what_is_missing():
    data = json.loads(RECORD.to_json())
    del data["checkpoint_sha256"], data["devices"]
    with pytest.raises(DataError, match=r"models/x.json lacks \['checkpoint_sha256', "
                                        r"'devices'\]: .*materialize trained_model again"):
        ModelRecord.from_json(json.dumps(data), "models/x.json")
