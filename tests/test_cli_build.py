"""`geovision train` on a fresh artifact root builds what the run needs (raw files, index,
shards) through the pipeline's own steps, skips them once they are there (as `geovision test`
does), and with --no-build stops naming what is missing. Run as a user would: the console
script in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "geovision"


def geovision(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args, "--home", str(home)], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def one_epoch_demo(tmp_path: Path) -> Path:
    """The demo recipe (HDF5 shards), one epoch, so the test stays short."""
    recipe = yaml.safe_load((REPO / "recipes" / "demo.yaml").read_text())
    recipe["trainer"]["max_epochs"] = 1
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_train_builds_missing_upstream_then_skips_it(tmp_path):
    home, recipe = tmp_path / "home", one_epoch_demo(tmp_path)

    strict = geovision("train", str(recipe), "--dataset", "synthetic", "--no-build",
                       home=home, cwd=tmp_path)
    assert strict.returncode == 2 and "Traceback" not in strict.stderr
    assert strict.stderr.startswith("error: ") and "labels.csv not found" in strict.stderr
    assert "geovision datasets prepare synthetic" in strict.stderr

    first = geovision("train", str(recipe), "--dataset", "synthetic", home=home, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    steps = [line for line in first.stderr.splitlines() if line.startswith("synthetic: ")]
    assert steps == ["synthetic: acquire the raw dataset ...", "synthetic: build the index ...",
                     "synthetic: write hdf shards ..."]
    assert "synthetic scenes" in first.stderr  # the generation's progress bar
    assert (home / "index" / "synthetic.parquet").is_file()
    assert sorted(p.name for p in (home / "shards" / "synthetic" / "hdf").iterdir()) == [
        "test.h5", "train.h5", "val.h5"]
    assert "run directory: " in first.stdout and "test_accuracy: " in first.stdout

    # `test` checks the same upstream steps before evaluating: all there, none runs again.
    again = geovision("test", "demo/small_cnn", home=home, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert not [line for line in again.stderr.splitlines() if line.startswith("synthetic: ")]
    assert "80 samples" in again.stdout and "test_accuracy: " in again.stdout


def test_a_manual_download_dataset_names_the_files_to_fetch(tmp_path):
    done = geovision("extract", "--dataset", "inria", "--detector", "tiny",
                     home=tmp_path / "home", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "inria" in error[0].lower()
    assert str(tmp_path / "home" / "datasets" / "inria") in done.stderr
