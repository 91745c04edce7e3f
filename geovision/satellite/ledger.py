"""The quota ledger: the one authority on how many scenes each provider has used per UTC day.

One row per (provider, scene key) in `satellite_quota`: a scene is charged to the UTC day it was
first reserved, once. `reserve` is atomic (SQLite `BEGIN IMMEDIATE`, Postgres a per-provider
transaction lock), so sensors, manual materializations, backfills and retries running at the
same time can never take more than the day's budget between them. States:

    reserved   taken from the budget, fetch in progress (or interrupted: a retry reuses it)
    done       fetched and verified; never fetched again
    failed-consumed  failed after the provider had delivered (corrupt product): still counted
    released   failed before anything was charged: no longer counted, may be reserved again

A second table, `satellite_found`, remembers every scene a search found (its SceneRef as JSON), so a
run, the CLI or a report can go from a partition key to the scene, and nothing found is
forgotten: `pending` lists what is found but not done.

SQLite (WAL) under the artifact root by default; a `postgresql://` URL when the instance
uses Postgres.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from geovision.errors import ConfigError, MissingDataError, QuotaError
from geovision.satellite.scene import SceneRef

COUNTED = ("reserved", "done", "failed-consumed")
STATES = (*COUNTED, "released")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS satellite_quota (
        provider TEXT NOT NULL, scene_key TEXT NOT NULL, product_id TEXT,
        utc_day TEXT NOT NULL, state TEXT NOT NULL, run_id TEXT,
        reserved_at TEXT NOT NULL, finished_at TEXT, bytes BIGINT, attempts INTEGER NOT NULL,
        error TEXT, PRIMARY KEY (provider, scene_key))""",
    "CREATE INDEX IF NOT EXISTS satellite_quota_day ON satellite_quota (provider, utc_day, state)",
    """CREATE TABLE IF NOT EXISTS satellite_found (
        provider TEXT NOT NULL, scene_key TEXT NOT NULL, product_id TEXT NOT NULL,
        acquired TEXT NOT NULL, ref TEXT NOT NULL, first_seen TEXT NOT NULL,
        PRIMARY KEY (provider, scene_key))""",
)


@dataclass(frozen=True)
class Reservation:
    provider: str
    scene_key: str
    utc_day: str
    state: str  # the state found: "reserved" (new or reused) or "done"
    attempts: int

    @property
    def already_done(self) -> bool:
        return self.state == "done"


@dataclass(frozen=True)
class Row:
    provider: str
    scene_key: str
    product_id: str | None
    utc_day: str
    state: str
    run_id: str | None
    reserved_at: str
    finished_at: str | None
    bytes: int | None
    attempts: int
    error: str | None


def utc_day(now: datetime) -> str:
    return now.astimezone(UTC).date().isoformat()


def next_window(day: str) -> str:
    """When the budget of `day` renews: the next 00:00 UTC."""
    return f"{date.fromisoformat(day) + timedelta(days=1)} 00:00 UTC"


def _now() -> datetime:
    return datetime.now(UTC)


class QuotaLedger:
    """The ledger at `url`: a SQLite file path, or a `postgresql://` URL."""

    def __init__(self, url: str | Path) -> None:
        self.url = re.sub(r"^postgres(ql)?\+psycopg2://", "postgresql://", str(url))
        self.postgres = self.url.startswith(("postgresql://", "postgres://"))
        self._connections: dict[tuple[int, int], object] = {}
        if not self.postgres:
            Path(self.url).parent.mkdir(parents=True, exist_ok=True)
        with self._transaction(lock="geovision-quota-schema") as cur:
            for statement in SCHEMA:
                cur.execute(statement)

    def __repr__(self) -> str:  # never the URL: it may hold a password
        return f"QuotaLedger({'postgres' if self.postgres else self.url})"

    # ----- connections -------------------------------------------------------------------
    def _connect(self):
        """This thread's connection (opened once: a SQLite open and close costs an fsync)."""
        key = (os.getpid(), threading.get_ident())
        conn = self._connections.get(key)
        if conn is not None:
            return conn
        if self.postgres:
            import psycopg2

            try:
                conn = psycopg2.connect(self.url, connect_timeout=10)
            except psycopg2.Error as exc:
                raise ConfigError(f"Cannot open the quota ledger database ({exc}); check the "
                                  "Postgres URL in satellite.yaml (ledger:).") from exc
        else:
            conn = sqlite3.connect(self.url, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives a crash of the process, fsyncs at checkpoints
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
        self._connections[key] = conn
        return conn

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

    @contextmanager
    def _transaction(self, lock: str | None = None) -> Iterator[object]:
        """A transaction; with `lock`, a write serialised against other `lock` holders
        (SQLite: BEGIN IMMEDIATE; Postgres: a transaction-scoped advisory lock)."""
        conn = self._connect()
        cur = conn.cursor()
        try:
            if self.postgres:
                if lock is not None:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)",
                                (zlib.crc32(lock.encode()),))
            else:
                cur.execute("BEGIN IMMEDIATE" if lock is not None else "BEGIN")
            yield _Cursor(cur, self.postgres)
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            cur.close()
    # ----- the budget --------------------------------------------------------------------
    def used(self, provider: str, day: str) -> int:
        """Scenes charged to `provider` on UTC `day` (reserved, done or failed-consumed)."""
        with self._transaction() as cur:
            return _used(cur, provider, day)

    def reserve(self, scene: SceneRef | tuple[str, str], budget: int, *,
                now: datetime | None = None, run_id: str | None = None) -> Reservation:
        """Take one unit of today's budget for the scene, or reuse its earlier reservation.

        A scene already done returns state "done" (fetch nothing); one reserved or failed
        before keeps its original day's charge (a retry costs nothing more); a new or released
        scene is charged to today, or refused with QuotaError when today's budget is used.
        """
        provider, key = ((scene.provider, scene.scene_key) if isinstance(scene, SceneRef)
                         else scene)
        product_id = scene.product_id if isinstance(scene, SceneRef) else None
        now = now or _now()
        day = utc_day(now)
        with self._transaction(lock=f"geovision-quota-{provider}") as cur:
            cur.execute("SELECT state, utc_day, attempts FROM satellite_quota WHERE "
                        "provider = ? AND scene_key = ?", (provider, key))
            found = cur.fetchone()
            if found is not None and found[0] == "done":
                return Reservation(provider, key, found[1], "done", found[2])
            if found is not None and found[0] in COUNTED:
                cur.execute("UPDATE satellite_quota SET state = 'reserved', run_id = ?, "
                            "attempts = attempts + 1, error = NULL WHERE provider = ? AND "
                            "scene_key = ?", (run_id, provider, key))
                return Reservation(provider, key, found[1], "reserved", found[2] + 1)
            used = _used(cur, provider, day)
            if used >= budget:
                raise QuotaError(
                    f"{provider}: {used}/{budget} scenes used for {day}; next window "
                    f"{next_window(day)}. {provider}:{key} was not fetched; it stays found and "
                    "is requested again then (or raise daily_budget in satellite.yaml).")
            attempts = found[2] + 1 if found is not None else 1
            if found is None:
                cur.execute("INSERT INTO satellite_quota (provider, scene_key, product_id, "
                            "utc_day, state, run_id, reserved_at, attempts) VALUES "
                            "(?, ?, ?, ?, 'reserved', ?, ?, 1)",
                            (provider, key, product_id, day, run_id, now.isoformat()))
            else:
                cur.execute("UPDATE satellite_quota SET product_id = COALESCE(?, product_id), "
                            "utc_day = ?, state = 'reserved', run_id = ?, reserved_at = ?, "
                            "attempts = ?, error = NULL, finished_at = NULL WHERE "
                            "provider = ? AND scene_key = ?",
                            (product_id, day, run_id, now.isoformat(), attempts, provider,
                             key))
            return Reservation(provider, key, day, "reserved", attempts)

    def finish(self, provider: str, key: str, *, nbytes: int, product_id: str | None = None,
               now: datetime | None = None) -> None:
        self._set(provider, key, "done", now, nbytes=nbytes, product_id=product_id)

    def fail(self, provider: str, key: str, error: str, *, consumed: bool,
             now: datetime | None = None) -> None:
        """Record a failed fetch: still charged (`consumed`) or given back to the day."""
        state = "failed-consumed" if consumed else "released"
        self._set(provider, key, state, now, error=error[:2000])

    def release(self, provider: str, key: str, now: datetime | None = None) -> None:
        self._set(provider, key, "released", now)

    def _set(self, provider: str, key: str, state: str, now: datetime | None, *,
             nbytes: int | None = None, error: str | None = None,
             product_id: str | None = None) -> None:
        with self._transaction(lock=f"geovision-quota-{provider}") as cur:
            cur.execute("UPDATE satellite_quota SET state = ?, finished_at = ?, "
                        "bytes = COALESCE(?, bytes), error = ?, "
                        "product_id = COALESCE(?, product_id) WHERE provider = ? AND "
                        "scene_key = ?", (state, (now or _now()).isoformat(), nbytes, error,
                                          product_id, provider, key))
            if cur.rowcount == 0:
                raise MissingDataError(f"{provider}:{key} has no reservation in the quota "
                                       "ledger; reserve it before fetching.")

    # ----- reading -----------------------------------------------------------------------
    def rows(self, provider: str | None = None, day: str | None = None,
             states: Sequence[str] | None = None) -> list[Row]:
        sql, args = "SELECT * FROM satellite_quota WHERE 1 = 1", []
        if provider:
            sql, args = sql + " AND provider = ?", [*args, provider]
        if day:
            sql, args = sql + " AND utc_day = ?", [*args, day]
        if states:
            sql += f" AND state IN ({', '.join('?' for _ in states)})"
            args += list(states)
        with self._transaction() as cur:
            cur.execute(sql + " ORDER BY provider, reserved_at, scene_key", tuple(args))
            return [Row(*r) for r in cur.fetchall()]

    def state(self, provider: str, key: str) -> str | None:
        with self._transaction() as cur:
            cur.execute("SELECT state FROM satellite_quota WHERE provider = ? AND scene_key = ?",
                        (provider, key))
            found = cur.fetchone()
        return None if found is None else found[0]

    def states(self, provider: str) -> dict[str, str]:
        """{scene key: state} of every scene of `provider` in the ledger."""
        with self._transaction() as cur:
            cur.execute("SELECT scene_key, state FROM satellite_quota WHERE provider = ?",
                        (provider,))
            return dict(cur.fetchall())

    # ----- what searches found -----------------------------------------------------------
    def record_found(self, scenes: Sequence[SceneRef], now: datetime | None = None) -> None:
        """Remember scenes a search found; a newer processing of a key replaces the older
        unless that key is already done."""
        stamp = (now or _now()).isoformat()
        with self._transaction(lock="geovision-quota-found") as cur:
            for scene in scenes:
                cur.execute("SELECT product_id FROM satellite_found WHERE provider = ? AND "
                            "scene_key = ?", (scene.provider, scene.scene_key))
                found = cur.fetchone()
                if found is None:
                    cur.execute("INSERT INTO satellite_found VALUES (?, ?, ?, ?, ?, ?)",
                                (scene.provider, scene.scene_key, scene.product_id,
                                 scene.acquired.isoformat(), scene.to_json(), stamp))
                elif scene.product_id > found[0]:
                    cur.execute("SELECT state FROM satellite_quota WHERE provider = ? AND "
                                "scene_key = ?", (scene.provider, scene.scene_key))
                    state = cur.fetchone()
                    if state is None or state[0] != "done":
                        cur.execute("UPDATE satellite_found SET product_id = ?, ref = ? WHERE "
                                    "provider = ? AND scene_key = ?",
                                    (scene.product_id, scene.to_json(), scene.provider,
                                     scene.scene_key))

    def found(self, provider: str, key: str) -> SceneRef:
        with self._transaction() as cur:
            cur.execute("SELECT ref FROM satellite_found WHERE provider = ? AND scene_key = ?",
                        (provider, key))
            row = cur.fetchone()
        if row is None:
            raise MissingDataError(f"{provider}:{key} was never found by a search; run "
                                   f"`geovision satellite search {provider}` (or let its "
                                   "sensor tick) first.")
        return SceneRef.from_json(row[0])

    def found_scenes(self, provider: str | None = None) -> list[SceneRef]:
        sql, args = "SELECT ref FROM satellite_found", ()
        if provider:
            sql, args = sql + " WHERE provider = ?", (provider,)
        with self._transaction() as cur:
            cur.execute(sql + " ORDER BY acquired, scene_key", args)
            return [SceneRef.from_json(r[0]) for r in cur.fetchall()]

    def pending(self, provider: str | None = None) -> list[SceneRef]:
        """Scenes found but not done (never reserved, released, failed or in progress)."""
        done = {(r.provider, r.scene_key) for r in self.rows(provider, states=["done"])}
        return [s for s in self.found_scenes(provider) if (s.provider, s.scene_key) not in done]


def _used(cur, provider: str, day: str) -> int:
    cur.execute("SELECT COUNT(*) FROM satellite_quota WHERE provider = ? AND utc_day = ? AND "
                "state IN ('reserved', 'done', 'failed-consumed')", (provider, day))
    return int(cur.fetchone()[0])


class _Cursor:
    """A DB-API cursor that takes `?` placeholders on both backends."""

    def __init__(self, cur, postgres: bool) -> None:
        self._cur = cur
        self._postgres = postgres

    def execute(self, sql: str, args: Sequence = ()) -> None:
        if self._postgres:
            sql = sql.replace("?", "%s")
        self._cur.execute(sql, tuple(args))

    def fetchone(self):
        return self._cur.fetchone()

    def fetchall(self):
        return self._cur.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount
