"""The artifact root on S3 (moto's server on loopback, s5cmd for the transfers): assets work in
the local cache and publish what they wrote, marker last; training streams its MDS shards from
S3 and publishes every checkpoint as it is saved; a wiped cache (a fresh machine) is filled
back from S3; the credentials reach no log, metadata or run file."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import pytest
import yaml
from dagster import (
    AssetKey,
    DagsterInstance,
    MultiPartitionKey,
    PipesSubprocessClient,
    materialize,
)
from dagster._serdes import serialize_value
from dagster_aws.s3 import S3Resource

from geovision.experiment.runfolders.folder import CHECKPOINTS, HPARAMS_FILE
from geovision.hashing import hash_directory, sha256_file
from geovision.io.s3 import S3IO
from geovision.io.store import MARKER_SUFFIX, VERSION_SEP, ArtifactStore
from geovision.layout import Layout
from geovision_assets.assets.datasets import dataset_index, raw_dataset
from geovision_assets.assets.evaluation import model_evaluation
from geovision_assets.assets.shards import streaming_shards
from geovision_assets.assets.statistics import image_statistics
from geovision_assets.assets.training import trained_model
from geovision_assets.resources import GeovisionHome, RecipeLibrary

DATASET_ASSETS = [raw_dataset, dataset_index, image_statistics, streaming_shards]


@pytest.fixture()
def deployment(s3_env, tmp_path, monkeypatch):
    """A bucket, a streaming recipe, the resources a deployment configures, an instance that
    keeps its event log and compute logs on disk (to be scanned for the credentials)."""
    s3 = S3IO(endpoint_url=s3_env.endpoint_url, timeout=120)
    bucket = "gv-root-" + secrets.token_hex(4)
    s3.make_bucket(bucket)
    root = f"s3://{bucket}/geovision"
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    recipe = yaml.safe_load(Path("recipes/demo.yaml").read_text())
    recipe["trainer"]["max_epochs"] = 2
    recipe["data"]["source"] = "streaming"
    recipe["checkpoint"] = {"save_top_k": 1}
    (recipes / "s3demo.yaml").write_text(yaml.safe_dump(recipe | {"name": "s3demo"}))
    home = tmp_path / "cache"
    # The resource alone configures these; an in-process step sets them in os.environ for
    # its children, so each is recorded (set, then deleted) to be restored after the test.
    for key in ("GEOVISION_ARTIFACT_ROOT", "S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    resources = {
        "home": GeovisionHome(path=str(home), artifact_root=root),
        "s3": S3Resource(endpoint_url=s3_env.endpoint_url, aws_access_key_id=s3_env.access_key,
                         aws_secret_access_key=s3_env.secret_key),
        "recipes": RecipeLibrary(path=str(recipes)), "pipes": PipesSubprocessClient()}
    (tmp_path / "dagster_home").mkdir()
    instance = DagsterInstance.local_temp(str(tmp_path / "dagster_home"))
    instance.add_dynamic_partitions("recipe", ["s3demo"])
    yield resources, instance, s3, root, Layout(home), tmp_path
    instance.dispose()


def test_assets_publish_to_s3_and_training_streams_from_it(deployment, s3_env):
    resources, instance, s3, root, layout, tmp_path = deployment
    runs = [materialize(DATASET_ASSETS, partition_key="synthetic", instance=instance,
                        resources=resources)]
    model_key = str(MultiPartitionKey({"dataset": "synthetic", "recipe": "s3demo"}))
    runs.append(materialize([trained_model], partition_key=model_key, instance=instance,
                            resources=resources))
    assert all(run.success for run in runs)

    # every artifact is published, and a second reader gets exactly the local bytes
    reader_cache = tmp_path / "reader"
    reader = ArtifactStore(root, reader_cache, s3)
    for local in (layout.statistics("synthetic"), layout.shards("synthetic", "mds")):
        relative = local.relative_to(layout.home)
        assert hash_directory(reader.fetch(reader_cache / relative)) == hash_directory(local)
    assert sha256_file(reader.fetch(reader_cache / "index" / "synthetic.parquet")) == \
        sha256_file(layout.index("synthetic"))
    event = instance.get_latest_materialization_event(AssetKey("streaming_shards"))
    published = event.asset_materialization.metadata["published"].value
    assert list(published) == ["shards/synthetic/mds"]
    assert published["shards/synthetic/mds"].startswith(f"{root}/shards/synthetic/mds@")

    # the training read its shards from S3 through MosaicML streaming, into its own cache
    record = json.loads(layout.model_record("synthetic", "s3demo").read_text())
    run_dir = Path(record["run_dir"])
    hparams = yaml.safe_load((run_dir / HPARAMS_FILE).read_text())
    assert hparams["shards_dir"] == published["shards/synthetic/mds"]
    streamed = sorted(p.name for p in layout.run_streaming_cache(run_dir, "train").iterdir())
    assert "index.json" in streamed and any(n.endswith(".mds") for n in streamed)

    # each checkpoint was published when saved, the pruned ones withdrawn
    local_checkpoints = {p.name for p in (run_dir / CHECKPOINTS).iterdir()}
    run_rel = run_dir.relative_to(layout.home).as_posix()
    prefix = f"{root}/{run_rel}/{CHECKPOINTS}/"
    markers = {o.url[len(prefix):-len(MARKER_SUFFIX)] for o in s3.list(prefix)
               if o.url.endswith(MARKER_SUFFIX)}
    assert markers == local_checkpoints and "last.ckpt" in markers

    # ...and went up once: every checkpoint content in one request carrying its bytes; the
    # same bytes saved again (last.ckpt beside the best one) and the run folder's version
    # (published when training ended) got them by copies inside S3, without a body
    bucket = root[len("s3://"):].split("/")[0]
    run_key = f"{root.split('/', 3)[3]}/{run_rel}"
    folder = ArtifactStore(root, layout.home, s3).published(run_dir)
    sent = [r for r in s3_env.requests(bucket) if r.method in ("PUT", "POST")
            and r.key.endswith(".ckpt") and not r.copy_source]
    copies = {r.key for r in s3_env.requests(bucket) if r.copy_source}
    assert sent and all(r.key.startswith(f"{run_key}/{CHECKPOINTS}/") for r in sent)
    digests = [r.body_sha256 for r in sent]
    assert len(digests) == len(set(digests))  # no content sent twice
    for path in (run_dir / CHECKPOINTS).iterdir():
        assert [r.body_bytes for r in sent if r.body_sha256 == sha256_file(path)] == \
            [path.stat().st_size]
        assert f"{run_key}{VERSION_SEP}{folder.version}/{CHECKPOINTS}/{path.name}" in copies
    # a fresh machine's fetch of the run folder is the local one, byte for byte
    fetched = reader.fetch(reader_cache / run_rel)
    assert hash_directory(fetched) == hash_directory(run_dir)
    assert {p.name for p in (fetched / CHECKPOINTS).iterdir()} == local_checkpoints

    # a machine with an empty cache evaluates the model from what S3 holds
    dataset_hash = hash_directory(layout.dataset("synthetic"))
    shutil.rmtree(layout.home)
    evaluated = materialize([model_evaluation], partition_key=model_key, instance=instance,
                            resources=resources)
    assert evaluated.success
    metrics = evaluated.asset_materializations_for_node("model_evaluation")[0].metadata
    assert metrics["test_accuracy"].value == pytest.approx(record["test_metrics"]["test_accuracy"])
    assert (run_dir / "evaluation" / "test_metrics.yaml").is_file()
    assert hash_directory(layout.dataset("synthetic")) == dataset_hash  # fetched back whole

    # the credentials are nowhere: event log, metadata, compute logs, run folders, artifacts
    access_key = resources["s3"].aws_access_key_id
    secret = resources["s3"].aws_secret_access_key
    events = serialize_value([e for run in runs + [evaluated]
                              for e in instance.all_logs(run.run_id)])
    assert access_key not in events and secret not in events
    scanned = 0
    for folder in (tmp_path / "dagster_home", layout.home, reader_cache):
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert access_key.encode() not in data and secret.encode() not in data, path
                scanned += 1
    assert scanned > 800 and (run_dir / HPARAMS_FILE).is_file()
    assert any(p.suffix in (".out", ".err", ".log")
               for p in (tmp_path / "dagster_home").rglob("*"))  # compute logs were scanned


def test_ported_weights_publish_and_training_fetches_them(deployment, torch_home):
    """A port made with an S3 root is published; a training whose recipe names it, on a
    machine whose cache lacks it, fetches it before starting from it."""
    from geovision.models.port import port_folder
    from geovision_assets.assets.weights import ported_weights
    from tests.checkpoints import torchvision_checkpoint

    torchvision_checkpoint(torch_home, "ResNet18_Weights.IMAGENET1K_V1")  # as downloaded
    resources, instance, s3, root, layout, tmp_path = deployment
    port = "resnet18.torchvision"
    assert materialize([ported_weights], partition_key=port, instance=instance,
                       resources=resources).success
    folder = port_folder(port, layout.home)
    ported = hash_directory(folder)
    reader_cache = tmp_path / "reader"
    reader = ArtifactStore(root, reader_cache, s3)
    assert hash_directory(reader.fetch(reader_cache / "weights" / port)) == ported

    recipe = yaml.safe_load(Path("recipes/demo.yaml").read_text())
    recipe |= {"name": "s3port", "model": {"name": "resnet18", "weights": port},
               "optimizer": {"name": "sgd", "lr": 1e-9, "momentum": 0.0},
               "scheduler": {"name": "none"}}
    recipe["trainer"]["max_epochs"] = 1
    recipe["data"]["source"] = "streaming"
    recipes = Path(resources["recipes"].path)
    (recipes / "s3port.yaml").write_text(yaml.safe_dump(recipe))
    instance.add_dynamic_partitions("recipe", ["s3port"])
    assert materialize(DATASET_ASSETS, partition_key="synthetic", instance=instance,
                       resources=resources).success
    shutil.rmtree(folder)  # the port was made on another machine
    model_key = str(MultiPartitionKey({"dataset": "synthetic", "recipe": "s3port"}))
    assert materialize([trained_model], partition_key=model_key, instance=instance,
                       resources=resources).success
    assert hash_directory(folder) == ported
    run_dir = Path(json.loads(layout.model_record("synthetic", "s3port").read_text())["run_dir"])
    weights = yaml.safe_load((run_dir / HPARAMS_FILE).read_text())["provenance"]["weights"]
    assert weights["port"] == port
    assert weights["sha256"] == sha256_file(folder / "weights.safetensors")
