"""The quota ledger: exactly the budget per UTC day, atomic across processes, one charge per
scene, on SQLite and (when reachable) Postgres."""

from __future__ import annotations

import multiprocessing
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from geovision.errors import QuotaError
from geovision.satellite.ledger import QuotaLedger
from geovision.satellite.scene import SceneRef
from tests.conftest import require_service

DAY = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def scene(key: str, product: str | None = None) -> SceneRef:
    return SceneRef("enmap", key, product or f"P-{key}", DAY - timedelta(days=1))


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        yield QuotaLedger(tmp_path / "quota.sqlite")
        return
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg2

    schema = f"ledger_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, dbname="test", user="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE SCHEMA {schema}")
    try:
        yield QuotaLedger("postgresql://postgres@127.0.0.1:5432/test"
                          f"?options=-csearch_path%3D{schema}")
    finally:
        admin.cursor().execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def test_budget_is_exact_per_utc_day_and_the_message_says_why(ledger):
    for i in range(4):
        assert ledger.reserve(scene(f"k{i}"), 4, now=DAY + timedelta(hours=i)).state == "reserved"
    with pytest.raises(QuotaError) as err:
        ledger.reserve(scene("k4"), 4, now=DAY + timedelta(hours=15, minutes=59))
    message = str(err.value)
    assert "enmap: 4/4 scenes used for 2026-12-02" in message
    assert "next window 2026-12-03 00:00 UTC" in message and "enmap:k4" in message
    assert ledger.used("enmap", "2026-12-02") == 4
    # the next UTC day has its own budget
    tomorrow = ledger.reserve(scene("k4"), 4, now=datetime(2026, 12, 3, 0, 0, 1, tzinfo=UTC))
    assert tomorrow.utc_day == "2026-12-03" and ledger.used("enmap", "2026-12-03") == 1


def test_one_charge_per_scene_retries_and_done(ledger):
    ledger.reserve(scene("a"), 2, now=DAY)
    again = ledger.reserve(scene("a"), 2, now=DAY + timedelta(hours=1))  # a retry
    assert again.attempts == 2 and ledger.used("enmap", "2026-12-02") == 1
    ledger.fail("enmap", "a", "corrupt zip", consumed=True, now=DAY)
    assert ledger.used("enmap", "2026-12-02") == 1  # still charged
    # a retry on a later day keeps the original day's charge
    later = ledger.reserve(scene("a"), 2, now=DAY + timedelta(days=1))
    assert later.utc_day == "2026-12-02" and ledger.used("enmap", "2026-12-03") == 0
    ledger.finish("enmap", "a", nbytes=123, now=DAY)
    done = ledger.reserve(scene("a"), 2, now=DAY + timedelta(days=2))
    assert done.already_done
    row = ledger.rows("enmap")[0]
    assert (row.state, row.bytes, row.attempts) == ("done", 123, 3)


def test_released_units_go_back_to_the_day(ledger):
    ledger.reserve(scene("a"), 1, now=DAY)
    with pytest.raises(QuotaError):
        ledger.reserve(scene("b"), 1, now=DAY)
    ledger.fail("enmap", "a", "HTTP 503 after 5 tries", consumed=False, now=DAY)
    assert ledger.used("enmap", "2026-12-02") == 0
    assert ledger.reserve(scene("b"), 1, now=DAY).state == "reserved"
    assert ledger.rows("enmap", states=["released"])[0].error == "HTTP 503 after 5 tries"


def test_found_scenes_keep_the_newest_processing_until_done(ledger):
    ledger.record_found([scene("a", "V1"), scene("b", "V1")], now=DAY)
    ledger.record_found([scene("a", "V2")], now=DAY)
    assert ledger.found("enmap", "a").product_id == "V2"
    ledger.reserve(scene("b"), 4, now=DAY)
    ledger.finish("enmap", "b", nbytes=1, now=DAY)
    ledger.record_found([scene("b", "V2")], now=DAY)  # reprocessed after it was fetched
    assert ledger.found("enmap", "b").product_id == "V1"
    assert [s.scene_key for s in ledger.pending("enmap")] == ["a"]


def _reserve_many(url: str, worker: int, results) -> None:
    ledger = QuotaLedger(url)
    for i in range(5):
        try:
            ledger.reserve(scene(f"w{worker}-{i}"), 4, now=DAY)
            results.put("ok")
        except QuotaError:
            results.put("refused")


def test_reserve_is_atomic_across_processes(ledger):
    ctx = multiprocessing.get_context("fork")  # each process opens its own connection
    results = ctx.Queue()
    procs = [ctx.Process(target=_reserve_many, args=(ledger.url, w, results)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes = [results.get(timeout=5) for _ in range(20)]
    assert outcomes.count("ok") == 4 and outcomes.count("refused") == 16
    assert ledger.used("enmap", "2026-12-02") == 4
