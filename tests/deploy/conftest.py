"""A whole deployment on loopback for the tests: a fresh PostgreSQL database for Dagster's
storage, the queued run coordinator and the daemon, a Redis database for the celery broker and
two celery workers, each as its own subprocess, all stopped and dropped afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_service

REPO = Path(__file__).resolve().parents[2]
PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass
class Deployment:
    root: Path
    dagster_home: Path
    workspace: Path
    home: Path
    env: dict[str, str]
    database: str
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    daemon: subprocess.Popen | None = None

    def instance(self):
        from dagster import DagsterInstance

        return DagsterInstance.from_config(str(self.dagster_home))

    def launch(self, job: str, tags: dict[str, str]) -> None:
        """Submit a run as a user would: `dagster job launch` (it goes to the queue)."""
        done = subprocess.run(
            [str(Path(sys.executable).with_name("dagster")), "job", "launch", "-w",
             str(self.workspace), "-j", job, "--tags", json.dumps(tags)],
            env=self.env, cwd=self.root, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr

    def wait(self, instance, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate(instance)
            if found:
                return found
            for name, process in [*self.workers.items(), ("daemon", self.daemon)]:
                assert process.poll() is None or name.startswith("killed"), \
                    f"{name} exited {process.returncode}: {self.log(name)[-3000:]}"
            time.sleep(0.2)
        runs = [(r.run_id[:8], r.job_name, r.status.value, r.tags.get("dagster/partition"))
                for r in instance.get_runs()]
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; runs: {runs}; "
                             f"daemon log: {self.log('daemon')[-3000:]}")

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _start(deployment: Deployment, name: str, args: list[str]) -> subprocess.Popen:
    log = open(deployment.root / f"{name}.log", "w")
    return subprocess.Popen(args, env=deployment.env, cwd=deployment.root, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def _free_redis_db(redis_module) -> int:
    for db in range(15, 0, -1):
        client = redis_module.Redis(host=REDIS[0], port=REDIS[1], db=db)
        if client.dbsize() == 0:
            client.set("geovision-test-claim", uuid.uuid4().hex)
            return db
    pytest.fail("no empty Redis database (1-15) to use as the test broker")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    require_service("PostgreSQL", *PG)
    require_service("Redis", *REDIS)
    import psycopg2
    import redis

    root = tmp_path_factory.mktemp("deployment")
    database = f"geovision_deploy_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host=PG[0], port=PG[1], user="postgres", dbname="test")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {database}")
    db = _free_redis_db(redis)
    broker = f"redis://{REDIS[0]}:{REDIS[1]}/{db}"

    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    config = yaml.safe_load((REPO / "docker" / "dagster.yaml").read_text())
    config["storage"]["postgres"]["postgres_db"]["hostname"] = PG[0]
    config["run_coordinator"]["config"] = {"dequeue_interval_seconds": 1}
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config))
    workspace = root / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": {
        "module_name": "geovision_assets.definitions", "attribute": "defs",
        "working_directory": str(REPO), "location_name": "geovision"}}]}))
    recipes = root / "recipes"
    recipes.mkdir()
    demo = yaml.safe_load((REPO / "recipes" / "demo.yaml").read_text())
    # Two recipes of the demo, so that two trainings compete for the gpu pool.
    for name, epochs in (("first", 3), ("second", 1)):
        recipe = demo | {"name": name, "trainer": demo["trainer"] | {"max_epochs": epochs}}
        (recipes / f"{name}.yaml").write_text(yaml.safe_dump(recipe))

    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, DAGSTER_HOME=str(dagster_home), POSTGRES_USER="postgres",
               POSTGRES_PASSWORD="trust-auth", POSTGRES_DB=database,
               GEOVISION_HOME=str(root / "home"), GEOVISION_RECIPES=str(recipes),
               GEOVISION_CELERY_BROKER=broker, GEOVISION_CELERY_BACKEND=broker,
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                         os.environ.get("PYTHONPATH")])),
               PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    deployment = Deployment(root=root, dagster_home=dagster_home, workspace=workspace,
                            home=root / "home", env=env, database=database)
    worker_config = root / "celery.yaml"
    worker_config.write_text(yaml.safe_dump({"execution": {"config": {
        "broker": broker, "backend": broker}}}))
    saved = {k: os.environ.get(k) for k in ("POSTGRES_USER", "POSTGRES_PASSWORD",
                                            "POSTGRES_DB", "DAGSTER_HOME")}
    os.environ.update({k: env[k] for k in saved})
    try:
        for name in ("worker1", "worker2"):
            deployment.workers[name] = _start(deployment, name, [
                str(Path(bin_dir) / "dagster-celery"), "worker", "start", "-A",
                "dagster_celery.app", "-y", str(worker_config), "-n", f"{name}@%h",
                "--", "--concurrency=1", "--without-gossip", "--without-mingle"])
        deployment.daemon = _start(deployment, "daemon", [
            str(Path(bin_dir) / "dagster-daemon"), "run", "-w", str(workspace)])
        yield deployment
    finally:
        for process in [deployment.daemon, *deployment.workers.values()]:
            _stop(process)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        redis.Redis(host=REDIS[0], port=REDIS[1], db=db).flushdb()
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()
