"""S3IO and ArtifactStore against moto's S3 server on loopback, through the real s5cmd."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from geovision.errors import MissingDataError, RemoteError
from geovision.hashing import hash_directory, sha256_file
from geovision.io.s3 import S3IO
from geovision.io.store import MARKER_SUFFIX, ArtifactStore


@pytest.fixture()
def s3(s3_env) -> S3IO:
    return S3IO(endpoint_url=s3_env.endpoint_url, timeout=60)


@pytest.fixture()
def bucket(s3: S3IO) -> str:
    name = "gv-" + secrets.token_hex(6)
    s3.make_bucket(name)
    return name


def shard_folder(root: Path, seed: int = 0) -> Path:
    """A folder shaped like an MDS shard set: index.json + binary shards in split folders."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", 3), ("val", 1)):
        folder = root / split
        folder.mkdir(parents=True)
        for i in range(count):
            (folder / f"shard.{i:05d}.mds").write_bytes(rng.bytes(50_000 + 777 * i))
        (folder / "index.json").write_text(f'{{"version": 2, "seed": {seed}}}')
    (root / "empty.bin").write_bytes(b"")
    return root


def test_folder_round_trip_is_byte_identical(s3, bucket, tmp_path):
    src = shard_folder(tmp_path / "mds")
    assert s3.upload_dir(src, f"s3://{bucket}/shards/mds") == 7
    listed = s3.list(f"s3://{bucket}/shards/mds")
    assert [o.key for o in listed] == sorted(
        f"shards/mds/{p.relative_to(src).as_posix()}" for p in src.rglob("*") if p.is_file())
    assert {o.key: o.size for o in listed}["shards/mds/train/shard.00002.mds"] == 51_554
    dst = tmp_path / "back"
    assert s3.download_dir(f"s3://{bucket}/shards/mds", dst) == 7
    assert hash_directory(dst) == hash_directory(src)
    assert (dst / "empty.bin").stat().st_size == 0


def test_single_files_sync_and_remove(s3, bucket, tmp_path):
    one = tmp_path / "weights.pt"
    one.write_bytes(secrets.token_bytes(10_000))
    s3.upload_file(one, f"s3://{bucket}/w/weights.pt")
    assert s3.exists(f"s3://{bucket}/w/weights.pt")
    assert not s3.exists(f"s3://{bucket}/w/other.pt")
    back = s3.download_file(f"s3://{bucket}/w/weights.pt", tmp_path / "d" / "weights.pt")
    assert sha256_file(back) == sha256_file(one)
    s3.write_bytes(f"s3://{bucket}/m.json", b'{"a": 1}')
    assert s3.read_bytes(f"s3://{bucket}/m.json") == b'{"a": 1}'

    src = shard_folder(tmp_path / "src")
    assert s3.sync(src, f"s3://{bucket}/sync") == 7
    (src / "val" / "index.json").write_text('{"changed": true}')
    (src / "empty.bin").unlink()
    assert s3.sync(src, f"s3://{bucket}/sync", delete=True) >= 1
    local = tmp_path / "local"
    s3.sync(f"s3://{bucket}/sync", local)
    assert hash_directory(local) == hash_directory(src)
    assert s3.remove(f"s3://{bucket}/sync/") == 6
    assert s3.list(f"s3://{bucket}/sync") == []


def test_errors_name_bucket_key_and_cause(s3, bucket, tmp_path):
    with pytest.raises(RemoteError) as info:
        s3.download_file("s3://no-such-bucket-here/a/b.bin", tmp_path / "x")
    message = str(info.value)
    assert "'no-such-bucket-here'" in message and "'a/b.bin'" in message
    assert "NoSuchBucket" in message and "bucket name" in message
    assert not (tmp_path / "x").exists()
    with pytest.raises(RemoteError, match=r"key 'missing/thing/'.*not there"):
        s3.download_dir(f"s3://{bucket}/missing/thing", tmp_path / "y")
    assert not (tmp_path / "y").exists()
    refused = S3IO(endpoint_url="http://127.0.0.1:9", timeout=30, retries=0)
    with pytest.raises(RemoteError, match="reachable"):
        refused.list(f"s3://{bucket}/x")


def test_timeout_kills_s5cmd(s3, bucket, tmp_path):
    src = tmp_path / "many"
    src.mkdir()
    for i in range(300):
        (src / f"{i}.bin").write_bytes(b"x" * 1000)
    slow = S3IO(endpoint_url=s3.endpoint_url, timeout=0.05, num_workers=1)
    with pytest.raises(RemoteError, match="did not finish within 0.05 s"):
        slow.upload_dir(src, f"s3://{bucket}/many")
    # the killed process is gone: nothing named s5cmd with our bucket is still running
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"s3://{bucket}/many" not in ps


def test_credentials_never_reach_messages(s3_env, bucket, tmp_path):
    secret = "SECRET-" + secrets.token_hex(12)
    s3 = S3IO(endpoint_url=s3_env.endpoint_url, credentials={
        "AWS_ACCESS_KEY_ID": s3_env.access_key, "AWS_SECRET_ACCESS_KEY": secret})
    f = tmp_path / "f.txt"
    f.write_text("hello")
    s3.upload_file(f, f"s3://{bucket}/f.txt")  # moto accepts any secret
    assert secret not in repr(s3)
    with pytest.raises(RemoteError) as info:
        s3.download_file("s3://absent-bucket-x/f.txt", tmp_path / "g")
    assert secret not in str(info.value) and s3_env.access_key not in str(info.value)
    args = " ".join(s3._global_args())
    assert secret not in args


def test_no_sign_request_and_requester_pays_flags(s3_env, bucket, tmp_path):
    s3 = S3IO(endpoint_url=s3_env.endpoint_url, no_sign_request=True, requester_pays=True)
    args = s3._global_args()
    assert "--no-sign-request" in args
    assert args[args.index("--request-payer") + 1] == "requester"
    signed = S3IO(endpoint_url=s3_env.endpoint_url)
    (tmp_path / "a").write_text("public")
    signed.upload_file(tmp_path / "a", f"s3://{bucket}/public/a")
    with pytest.raises(RemoteError, match="Forbidden.*credentials"):
        s3.read_bytes(f"s3://{bucket}/public/a")  # not public yet: unsigned reads refused
    import boto3
    client = boto3.client("s3", endpoint_url=s3_env.endpoint_url)
    client.put_bucket_acl(Bucket=bucket, ACL="public-read")
    client.put_object_acl(Bucket=bucket, Key="public/a", ACL="public-read")
    assert s3.read_bytes(f"s3://{bucket}/public/a") == b"public"  # as SpaceNet's bucket
    assert [o.key for o in s3.list(f"s3://{bucket}/public")] == ["public/a"]


def test_store_publish_fetch_and_versions(s3, bucket, tmp_path):
    cache = tmp_path / "cache"
    store = ArtifactStore(f"s3://{bucket}/root", cache, s3)
    artifact = shard_folder(cache / "shards" / "synthetic" / "mds", seed=1)
    first = store.publish(artifact)
    assert first.kind == "dir" and len(first.files) == 7
    assert store.publish(artifact).version == first.version  # unchanged: nothing uploaded
    other = tmp_path / "other"
    reader = ArtifactStore(f"s3://{bucket}/root", other, s3)
    got = reader.fetch(other / "shards" / "synthetic" / "mds")
    assert hash_directory(got) == hash_directory(artifact)
    single = cache / "index" / "synthetic.parquet"
    single.parent.mkdir(parents=True)
    single.write_bytes(b"PAR1" + secrets.token_bytes(500))
    store.publish(single)
    assert sha256_file(reader.fetch(other / "index" / "synthetic.parquet")) == \
        sha256_file(single)
    with pytest.raises(MissingDataError, match="never published"):
        reader.fetch(other / "index" / "absent.parquet")
    # three more versions: the marker keeps the newest and the one before it
    versions = [first.version]
    for seed in (2, 3, 4):
        shutil.rmtree(artifact)
        shard_folder(artifact, seed=seed)
        versions.append(store.publish(artifact).version)
    kept = {o.key.split("@")[1].split("/")[0]
            for o in s3.list(f"s3://{bucket}/root/shards/synthetic/mds@*")}
    assert kept == set(versions[-2:])
    assert store.published(artifact).previous == (versions[-2],)


def test_interrupted_sync_leaves_previous_version_readable(s3, bucket, tmp_path):
    cache = tmp_path / "cache"
    artifact = shard_folder(cache / "shards" / "synthetic" / "mds", seed=5)
    ArtifactStore(f"s3://{bucket}/root", cache, s3).publish(artifact)
    before = hash_directory(artifact)
    shutil.rmtree(artifact)
    shard_folder(artifact, seed=6)
    for i in range(200):  # enough work that the upload cannot finish in time
        (artifact / "train" / f"extra.{i}.mds").write_bytes(b"y" * 4000)
    killed = ArtifactStore(f"s3://{bucket}/root", cache,
                           S3IO(endpoint_url=s3.endpoint_url, timeout=0.3, num_workers=1))
    with pytest.raises(RemoteError, match="did not finish"):
        killed.publish(artifact)
    partial = s3.list(f"s3://{bucket}/root/shards/synthetic/mds@*")
    assert partial  # part of the new version did reach the bucket...
    reader_root = tmp_path / "reader"
    reader = ArtifactStore(f"s3://{bucket}/root", reader_root, s3)
    got = reader.fetch(reader_root / "shards" / "synthetic" / "mds")
    assert hash_directory(got) == before  # ...but readers still get the whole previous one
    again = ArtifactStore(f"s3://{bucket}/root", cache, s3).publish(artifact)
    assert hash_directory(reader.fetch(got)) == hash_directory(artifact)
    assert reader.published(got).version == again.version


def test_public_dataset_objects_download_unsigned_through_s3io(s3, s3_env, tmp_path,
                                                               monkeypatch):
    """SpaceNet's way: an s3:// Resource of a public bucket, fetched without credentials."""
    import hashlib

    import boto3

    from geovision.data.datasets.spacenet import SpaceNet1
    from geovision.data.download import (
        DATASETS_S3_ENDPOINT_ENV,
        ChecksumMismatchError,
        DownloadError,
        Resource,
        fetch,
    )

    bucket = "gv-public-" + secrets.token_hex(4)
    s3.make_bucket(bucket)
    payload = secrets.token_bytes(200_000)
    client = boto3.client("s3", endpoint_url=s3_env.endpoint_url)
    client.put_bucket_acl(Bucket=bucket, ACL="public-read")
    client.put_object(Bucket=bucket, Key="spacenet/SN1/tarballs/a.tar.gz", Body=payload,
                      ACL="public-read")
    private = "gv-private-" + secrets.token_hex(4)
    s3.make_bucket(private)
    client.put_object(Bucket=private, Key="private/b.tar.gz", Body=payload)
    monkeypatch.setenv(DATASETS_S3_ENDPOINT_ENV, s3_env.endpoint_url)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)  # no credentials at all: the request must go unsigned
    md5 = hashlib.md5(payload).hexdigest()
    url = f"s3://{bucket}/spacenet/SN1/tarballs/a.tar.gz"
    got = fetch(Resource(url, "a.tar.gz", md5=md5, size=len(payload), public=True),
                tmp_path / "dl", progress=False)
    assert got.read_bytes() == payload and not list((tmp_path / "dl").glob("*.part"))
    with pytest.raises(ChecksumMismatchError, match="md5"):
        fetch(Resource(url, "c.tar.gz", md5="0" * 32, public=True), tmp_path / "dl")
    assert not (tmp_path / "dl" / "c.tar.gz").exists()
    with pytest.raises(DownloadError, match=r"b\.tar\.gz.*'private/b\.tar\.gz'.*Forbidden"):
        fetch(Resource(f"s3://{private}/private/b.tar.gz", "b.tar.gz", public=True),
              tmp_path / "dl")
    assert all(r.public and r.url.startswith("s3://spacenet-dataset/spacenet/SN1_buildings/")
               for r in SpaceNet1.RESOURCES)


def test_publish_artifact_hook_follows_the_environment(s3, bucket, tmp_path, monkeypatch):
    """The hook steps outside the asset graph call after each save (e.g. ported weights)."""
    from geovision.errors import ConfigError
    from geovision.io.store import ARTIFACT_ROOT_ENV, ENDPOINT_ENV, publish_artifact
    from geovision.layout import Layout

    layout = Layout(tmp_path / "home")
    weights = layout.weights("resnet18")
    weights.mkdir(parents=True)
    (weights / "weights.pt").write_bytes(secrets.token_bytes(3000))
    monkeypatch.delenv(ARTIFACT_ROOT_ENV, raising=False)
    assert publish_artifact(weights, layout.home) is None  # a local root: nothing to do
    monkeypatch.setenv(ARTIFACT_ROOT_ENV, f"s3://{bucket}/root")
    monkeypatch.setenv(ENDPOINT_ENV, s3.endpoint_url)
    published = publish_artifact(weights, layout.home)
    assert published.relative == "weights/resnet18" and published.kind == "dir"
    reader = ArtifactStore(f"s3://{bucket}/root", tmp_path / "other", s3)
    assert hash_directory(reader.fetch(tmp_path / "other" / "weights" / "resnet18")) == \
        hash_directory(weights)
    monkeypatch.setenv(ARTIFACT_ROOT_ENV, "/mnt/somewhere")
    with pytest.raises(ConfigError, match="not an S3 prefix"):
        publish_artifact(weights, layout.home)


def uploaded(s3_env, bucket: str, since: int = 0) -> dict[str, int]:
    """Body bytes the server received per object (PUTs and multipart parts; markers left
    out), from request `since` of the bucket's log on."""
    sent: dict[str, int] = {}
    for r in s3_env.requests(bucket)[since:]:
        if r.method in ("PUT", "POST") and r.body_bytes and not r.copy_source and \
                not r.key.endswith(MARKER_SUFFIX):
            sent[r.key] = sent.get(r.key, 0) + r.body_bytes
    return sent


def test_folder_publish_copies_what_the_store_already_holds(s3, s3_env, bucket, tmp_path):
    """A run folder's checkpoints, published as each was saved, are not uploaded again when
    the whole folder is published: S3 copies them from their own versions."""
    cache = tmp_path / "cache"
    store = ArtifactStore(f"s3://{bucket}/root", cache, s3)
    run = cache / "runs" / "demo" / "run-1"
    checkpoint = run / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(secrets.token_bytes(3_000_000))
    (run / "hparams.yaml").write_text("lr: 0.1\n")
    (run / "metrics.csv").write_text("epoch,loss\n0,1.0\n")
    saved = store.publish(checkpoint)
    assert uploaded(s3_env, bucket) == {
        f"root/runs/demo/run-1/checkpoints/last.ckpt@{saved.version}/last.ckpt": 3_000_000}
    # the same bytes saved beside it under another name (Lightning's best and last) are
    # copied from the first, not sent again
    best = checkpoint.with_name("epoch001.ckpt")
    shutil.copyfile(checkpoint, best)
    start = len(s3_env.requests(bucket))
    beside = store.publish(best)
    assert uploaded(s3_env, bucket, start) == {}
    assert [r.copy_source for r in s3_env.requests(bucket)[start:] if r.copy_source] == [
        f"{bucket}/root/runs/demo/run-1/checkpoints/last.ckpt@{saved.version}/last.ckpt"]
    assert sha256_file(ArtifactStore(f"s3://{bucket}/root", tmp_path / "r0", s3).fetch(
        tmp_path / "r0" / beside.relative)) == sha256_file(best)

    start = len(s3_env.requests(bucket))
    folder = store.publish(run)
    sent = uploaded(s3_env, bucket, start)
    version = f"root/runs/demo/run-1@{folder.version}"
    assert sent == {f"{version}/hparams.yaml": 8, f"{version}/metrics.csv": 17}
    copies = [r for r in s3_env.requests(bucket)[start:] if r.copy_source]
    assert sorted(r.key for r in copies) == [f"{version}/checkpoints/epoch001.ckpt",
                                             f"{version}/checkpoints/last.ckpt"]
    assert all(r.body_bytes == 0 for r in copies)
    assert {r.copy_source.lstrip("/") for r in copies} <= {
        f"{bucket}/root/runs/demo/run-1/checkpoints/last.ckpt@{saved.version}/last.ckpt",
        f"{bucket}/{beside.url[len('s3://'):].split('/', 1)[1]}/epoch001.ckpt"}

    # another machine fetches the whole folder, checkpoint included, byte for byte
    reader_root = tmp_path / "reader"
    reader = ArtifactStore(f"s3://{bucket}/root", reader_root, s3)
    got = reader.fetch(reader_root / "runs" / "demo" / "run-1")
    assert hash_directory(got) == hash_directory(run)
    # the folder's copy is its own: withdrawing the checkpoint artifact leaves it whole
    store.unpublish(checkpoint)
    shutil.rmtree(got)
    assert hash_directory(reader.fetch(got)) == hash_directory(run)

    # republished with one new file: only that file goes up, the rest is copied from the
    # folder's current version
    (run / "evaluation.yaml").write_text("accuracy: 0.9\n")
    start = len(s3_env.requests(bucket))
    again = store.publish(run)
    assert uploaded(s3_env, bucket, start) == {
        f"root/runs/demo/run-1@{again.version}/evaluation.yaml": 14}
    assert hash_directory(reader.fetch(got)) == hash_directory(run)


def test_folder_publish_uploads_when_a_held_copy_is_gone(s3, s3_env, bucket, tmp_path):
    """A marker whose version objects were removed (pruned by another process meanwhile): the
    copy fails, the files are uploaded instead, and the folder is still published whole."""
    cache = tmp_path / "cache"
    store = ArtifactStore(f"s3://{bucket}/root", cache, s3)
    run = cache / "runs" / "r"
    weights = run / "checkpoints" / "best.ckpt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(secrets.token_bytes(200_000))
    (run / "notes.txt").write_text("x")
    saved = store.publish(weights)
    s3.remove(f"{saved.url}/")
    start = len(s3_env.requests(bucket))
    folder = store.publish(run)
    assert uploaded(s3_env, bucket, start) == {
        f"root/runs/r@{folder.version}/checkpoints/best.ckpt": 200_000,
        f"root/runs/r@{folder.version}/notes.txt": 1}
    reader_root = tmp_path / "reader"
    got = ArtifactStore(f"s3://{bucket}/root", reader_root, s3).fetch(reader_root / "runs" / "r")
    assert hash_directory(got) == hash_directory(run)
