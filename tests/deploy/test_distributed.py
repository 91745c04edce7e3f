"""The deployment for real on loopback: Dagster on PostgreSQL storage with the queued run
coordinator and the daemon; the dataset assets of the demo on two celery workers (one killed
mid-step, the run retried from the failure); two training runs held apart by the `gpu` pool.
Together they materialize the whole demo graph into the Postgres-backed instance."""

from __future__ import annotations

import os
import signal
import time

import pandas as pd
import psutil
import pytest
from dagster import AssetKey, DagsterEventType, DagsterRunStatus, RunsFilter

from geovision.layout import Layout

DATASET_KEYS = ("raw_dataset", "dataset_index", "image_statistics", "eda_report", "hdf_shards",
                "streaming_shards", "region_features")
MODEL_KEYS = ("trained_model", "model_evaluation", "attribution_report")
DONE = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
# Whole runs of the demo's steps through the daemon and workers: minutes on a busy machine.
pytestmark = pytest.mark.timeout(1500)


def step_events(instance, run_id: str, event_type: DagsterEventType) -> dict:
    records = instance.get_records_for_run(run_id, of_type=event_type).records
    return {r.event_log_entry.dagster_event.step_key: r.event_log_entry for r in records}


def failures(instance, run_id: str) -> str:
    """The errors of a run's failed steps and of the run itself, for assertion messages."""
    lines = []
    for kind in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
        for record in instance.get_records_for_run(run_id, of_type=kind).records:
            event = record.event_log_entry.dagster_event
            error = getattr(event.event_specific_data, "error", None)
            lines.append(f"{event.step_key}: {event.message} "
                         f"{error.to_string()[-2000:] if error else ''}")
    return "\n".join(lines)


def test_dataset_assets_on_two_celery_workers_survive_a_killed_worker(deployment):
    instance = deployment.instance()
    deployment.launch("dataset_assets_celery", {"dagster/partition": "synthetic"})
    first = deployment.wait(instance, lambda i: i.get_runs(limit=1), 120, "the run")[0]

    def started(i):
        return step_events(i, first.run_id, DagsterEventType.STEP_START).get("raw_dataset")
    start = deployment.wait(instance, started, 180, "raw_dataset to start on a worker")
    victim = psutil.Process(start.dagster_event.pid)
    owner = next(name for name, w in deployment.workers.items()
                 if victim.pid in [c.pid for c in psutil.Process(w.pid).children(True)])
    os.kill(victim.pid, signal.SIGKILL)  # the worker's process running the step
    victim.wait(10)
    layout = Layout(deployment.home)
    assert not layout.dataset("synthetic").exists()  # nothing half-written where readers look
    assert "raw_dataset" not in step_events(instance, first.run_id,
                                            DagsterEventType.STEP_SUCCESS), \
        "raw_dataset finished before the kill: the test must kill it mid-step"

    def retried(i):
        runs = i.get_runs(RunsFilter(tags={"dagster/parent_run_id": first.run_id}))
        return runs and runs[0].status in DONE and runs[0]
    retry = deployment.wait(instance, retried, 1200, "the retry run to finish")
    failed = instance.get_run_by_id(first.run_id)
    assert failed.status == DagsterRunStatus.FAILURE
    failure = step_events(instance, first.run_id, DagsterEventType.RUN_FAILURE)
    message = " ".join(e.message or "" for e in failure.values()) + " ".join(
        e.dagster_event.event_specific_data.error.to_string()
        for e in failure.values()
        if getattr(e.dagster_event.event_specific_data, "error", None))
    assert "raw_dataset" in message and "WorkerLost" in message, message
    assert retry.status == DagsterRunStatus.SUCCESS, failures(instance, retry.run_id)
    assert retry.tags.get("dagster/retry_strategy", "FROM_FAILURE") == "FROM_FAILURE"

    starts = step_events(instance, retry.run_id, DagsterEventType.STEP_START)
    assert set(starts) == set(DATASET_KEYS)  # the retry re-ran every step, raw_dataset first
    worker_of = {}
    for name, worker in deployment.workers.items():
        children = {c.pid for c in psutil.Process(worker.pid).children(recursive=True)}
        for step, entry in starts.items():
            if entry.dagster_event.pid in children:
                worker_of[step] = name
    assert set(worker_of) == set(DATASET_KEYS)  # each step ran in a celery worker...
    assert set(worker_of.values()) == {"worker1", "worker2"}  # ...on both of them
    assert owner in deployment.workers  # the killed one kept serving (a new pool process)

    checks = [e for r in (instance.get_records_for_run(
        retry.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records)
        for e in [r.event_log_entry.dagster_event.event_specific_data]]
    assert checks and all(c.passed for c in checks), [c.check_name for c in checks]
    index = pd.read_parquet(layout.index("synthetic"))
    assert len(index) == 400
    leftovers = [p for p in deployment.home.rglob("*") if p.name.endswith(".partial")
                 and p.is_dir() and any(p.iterdir())]
    assert all(".synthetic." in p.name for p in leftovers)  # only the killed step's scratch


def test_gpu_pool_holds_the_second_training_until_the_first_ends(deployment):
    instance = deployment.instance()
    instance.add_dynamic_partitions("recipe", ["first", "second"])

    def launch(recipe: str) -> None:
        deployment.launch("model_assets", {
            "dagster/partition": f"synthetic|{recipe}", "dagster/partition/dataset": "synthetic",
            "dagster/partition/recipe": recipe})

    # Both submitted at once, as a user queueing two recipes would: whichever trains first
    # holds the pool's one slot, and the other waits (its run in the queue, or its step).
    launch("first")
    launch("second")

    def finished(i):
        runs = i.get_runs(RunsFilter(job_name="model_assets"))
        return len(runs) == 2 and all(r.status in DONE for r in runs) and runs
    runs = deployment.wait(instance, finished, 1200, "both training runs")
    assert all(r.status == DagsterRunStatus.SUCCESS for r in runs), \
        "\n".join(failures(instance, r.run_id) for r in runs)
    spans = []
    for run in runs:
        starts = step_events(instance, run.run_id, DagsterEventType.STEP_START)
        ends = step_events(instance, run.run_id, DagsterEventType.STEP_SUCCESS)
        stats = instance.get_run_stats(run.run_id)
        # Shown when the test fails: where each run's time went (start, seconds per step).
        print(run.tags.get("dagster/partition"), "queued", stats.enqueued_time, "launched",
              stats.launch_time, "started", stats.start_time, "ended", stats.end_time,
              {k: (round(starts[k].timestamp, 1),
                   round(ends[k].timestamp - starts[k].timestamp, 1))
               for k in starts if k in ends})
        spans.append((starts["trained_model"].timestamp, ends["trained_model"].timestamp,
                      stats.enqueued_time))
    spans.sort()
    (_, first_end, first_queued), (second_begin, _, second_queued) = spans
    assert second_begin >= first_end  # never two training steps at once
    # ...although both were submitted before the first training ended: without the pool
    # the queue (no run limit) would have run them side by side
    assert max(first_queued, second_queued) < first_end
    assert all(s[1] - s[0] > 0 for s in spans)


def test_whole_demo_graph_is_recorded_in_postgres(deployment):
    instance = deployment.instance()
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    for key in DATASET_KEYS:
        event = instance.get_latest_materialization_event(AssetKey(key))
        assert event is not None and event.asset_materialization.partition == "synthetic", key
    for key in MODEL_KEYS:
        partitions = {e.partition for e in instance.fetch_materializations(
            AssetKey(key), limit=10).records[0:10] for e in [e.asset_materialization]}
        assert partitions == {"synthetic|first", "synthetic|second"}, key
    latest = instance.get_latest_materialization_event(AssetKey("trained_model"))
    assert 0.0 <= latest.asset_materialization.metadata["test_accuracy"].value <= 1.0
    assert time.time() - latest.timestamp < 3600
