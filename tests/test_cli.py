"""The `geovision` command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from geovision.cli import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "datasets"):
        assert command in result.output


def test_datasets_list():
    result = runner.invoke(app, ["datasets", "list"])
    assert result.exit_code == 0
    assert "synthetic " in result.output and "classification" in result.output


def test_prepare_writes_raw_files_and_index(geovision_home):
    result = runner.invoke(app, ["datasets", "prepare", "synthetic"])
    assert result.exit_code == 0, result.output
    assert "802 files" in result.output
    assert (geovision_home / "index" / "synthetic.parquet").is_file()


def test_console_script_reports_user_errors_without_traceback(tmp_path):
    script = Path(sys.executable).parent / "geovision"
    done = subprocess.run([str(script), "train", "recipes/demo.yaml", "--dataset", "nope"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("error: Invalid ExperimentConfig")
    assert "unknown dataset_name 'nope'" in done.stderr and "Traceback" not in done.stderr
    assert subprocess.run([str(script), "--help"], capture_output=True).returncode == 0
