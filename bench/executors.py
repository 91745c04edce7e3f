"""Executors: the demo's dataset assets (seven steps) through the dagster-celery executor with
two local celery workers (Redis broker and backend, Postgres storage) against Dagster's
multiprocess executor on the same instance.

Each contender runs the `dataset_assets` job (or its celery twin) for the built-in dataset
with `dagster job execute`, into an artifact root of its own, so both do the same work from
nothing. The ratio is the multiprocess run's wall time over the celery run's; the per-step
overhead is the difference spread over the steps, and each run's wall time beside the sum of
its steps' own durations shows where the time went. Needs PostgreSQL on 127.0.0.1:5432
(user postgres, database test) and Redis on 127.0.0.1:6379, as the deployment tests do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
REDIS = ("127.0.0.1", 6379)
DATASET = "synthetic"
GOAL = 0.8  # celery may add at most a quarter to the wall time of these seven steps


def free_redis_db() -> int:
    import redis

    for db in range(15, 0, -1):
        client = redis.Redis(host=REDIS[0], port=REDIS[1], db=db)
        if client.dbsize() == 0:
            client.set("geovision-bench-claim", uuid.uuid4().hex)
            return db
    raise SystemExit("no empty Redis database (1-15) for the benchmark's broker")


def instance_config(database: str) -> dict:
    config = yaml.safe_load((REPO / "docker" / "dagster.yaml").read_text())
    config["storage"]["postgres"]["postgres_db"]["hostname"] = PG["host"]
    for key in ("run_coordinator", "run_retries", "run_monitoring"):
        config.pop(key, None)  # runs execute in the calling process, once
    return config


def run_job(job: str, env: dict[str, str], home: Path) -> float:
    dagster = str(Path(sys.executable).with_name("dagster"))
    start = time.perf_counter()
    done = subprocess.run([dagster, "job", "execute", "-m", "geovision_assets.definitions",
                           "-j", job, "--tags", json.dumps({"dagster/partition": DATASET})],
                          env=env | {"GEOVISION_HOME": str(home)}, cwd=REPO,
                          capture_output=True, text=True, timeout=3600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{job} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def step_seconds(instance, job: str) -> tuple[int, float]:
    """(number of steps, sum of their durations) of the latest run of `job`."""
    from dagster import RunsFilter

    run = instance.get_runs(RunsFilter(job_name=job), limit=1)[0]
    stats = instance.get_run_step_stats(run.run_id)
    assert all(s.status.value == "SUCCESS" for s in stats), [s.step_key for s in stats]
    return len(stats), sum(s.end_time - s.start_time for s in stats)


def main() -> None:
    import psycopg2
    import redis

    from bench.common import bench_line

    database = f"geovision_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(**PG)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {database}")
    db = free_redis_db()
    broker = f"redis://{REDIS[0]}:{REDIS[1]}/{db}"
    workers: list[subprocess.Popen] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-executors-") as tmp:
            root = Path(tmp)
            dagster_home = root / "dagster_home"
            dagster_home.mkdir()
            (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(database)))
            bin_dir = str(Path(sys.executable).parent)
            env = dict(os.environ, DAGSTER_HOME=str(dagster_home), POSTGRES_USER=PG["user"],
                       POSTGRES_PASSWORD="trust", POSTGRES_DB=database,
                       GEOVISION_CELERY_BROKER=broker, GEOVISION_CELERY_BACKEND=broker,
                       PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                                 os.environ.get("PYTHONPATH")])),
                       PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
            worker_config = root / "celery.yaml"
            worker_config.write_text(yaml.safe_dump({"execution": {"config": {
                "broker": broker, "backend": broker}}}))
            for name in ("worker1", "worker2"):
                workers.append(subprocess.Popen(
                    [str(Path(bin_dir) / "dagster-celery"), "worker", "start", "-A",
                     "dagster_celery.app", "-y", str(worker_config), "-n", f"{name}@%h", "--",
                     "--concurrency=1", "--without-gossip", "--without-mingle"],
                    env=env, cwd=REPO, stdout=open(root / f"{name}.log", "w"),
                    stderr=subprocess.STDOUT, start_new_session=True))
            os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "POSTGRES_USER",
                                                  "POSTGRES_PASSWORD", "POSTGRES_DB")})
            from dagster import DagsterInstance

            multiprocess = run_job("dataset_assets", env, root / "home-multiprocess")
            celery = run_job("dataset_assets_celery", env, root / "home-celery")
            with DagsterInstance.get() as instance:
                steps, mp_steps = step_seconds(instance, "dataset_assets")
                _, celery_steps = step_seconds(instance, "dataset_assets_celery")
    finally:
        for worker in workers:
            try:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(worker.pid, signal.SIGKILL)
        redis.Redis(host=REDIS[0], port=REDIS[1], db=db).flushdb()
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()

    print(f"multiprocess: {multiprocess:.1f} s wall, its {steps} steps {mp_steps:.1f} s")
    print(f"celery (2 workers): {celery:.1f} s wall, its {steps} steps {celery_steps:.1f} s")
    print(f"per-step overhead of celery: {(celery - multiprocess) / steps:+.2f} s "
          f"(wall), {(celery_steps - mp_steps) / steps:+.2f} s (inside the steps)")
    bench_line("executors_celery_vs_multiprocess", multiprocess / celery, "x",
               "multiprocess_wall", 1.0, GOAL)
