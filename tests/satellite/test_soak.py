"""Sixty simulated days of the daily cycle with tiny PRISMA deliveries behind delivery links:
new scenes every day, four ticks a day, runs that wait past a tick, killed runs, restarts,
manual runs and injected faults. Never more than the budget on any day, no scene fetched
twice, none lost."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import yaml

from geovision.errors import AuthError, GeovisionError, QuotaError
from geovision.layout import Layout
from geovision.satellite import download_scene, load_config, plan_tick
from geovision.satellite.ledger import COUNTED, QuotaLedger, utc_day
from geovision.satellite.samples import make_prisma
from geovision.satellite.scene import prisma_key

DAYS, DRAIN_DAYS, BUDGET, TICK_HOURS = 60, 12, 4, (1, 7, 13, 19)
START = datetime(2026, 1, 1, tzinfo=UTC)
FAULTS = ("429", "503", "truncate", "reset", "html", "403")


def test_sixty_days(tmp_path, files, monkeypatch):
    rng = random.Random(2026)
    home = tmp_path / "home"
    layout = Layout(home)
    config_path = tmp_path / "satellite.yaml"
    config_path.write_text(yaml.safe_dump({"providers": {"prisma": {
        "daily_budget": BUDGET, "start": "2026-01-01", "lookback_days": 120, "retries": 2,
        "max_attempts": 4}}}))
    config = load_config(config_path)
    ledger = QuotaLedger(layout.quota_ledger())
    links = layout.inbox("prisma") / "links.txt"
    links.parent.mkdir(parents=True, exist_ok=True)
    links.write_text("")
    sleeps: list[float] = []

    published: dict[str, str] = {}  # scene key -> request path of its file
    fetched = Counter()  # scene key -> fresh (not reused) successful fetches
    done_at: dict[str, int] = {}  # scene key -> file-server log length when it was done
    charged_per_day: dict[str, set[str]] = defaultdict(set)
    queue: list[str] = []  # requested, not yet run (the instance's queued runs)
    restarts = kills = manual = refused = 0

    def run(key: str, now: datetime, *, faults: bool) -> None:
        """One run with the asset's retry policy: up to 3 tries, none for quota/auth."""
        nonlocal refused
        if faults and rng.random() < 0.3:
            files.inject(published[key], rng.choice(FAULTS), retry_after="0")
        for _ in range(3):
            try:
                result = download_scene(config, f"prisma:{key}", layout, ledger, now=now,
                                        sleep=sleeps.append)
            except QuotaError:
                refused += 1
                return
            except AuthError:
                return
            except GeovisionError:
                continue
            if not result.reused:
                fetched[key] += 1
                done_at[key] = len(files.state.log)
            return

    for day in range(DAYS + DRAIN_DAYS):
        midnight = START + timedelta(days=day)
        if day < DAYS:
            for n in range(rng.choice([0, 1, 3, 5, 6, 8])):
                acquired = midnight + timedelta(hours=2 + n, minutes=rng.randrange(60))
                token = f"t{day:02d}{n}"
                path = make_prisma(files.state.root / "Products" / token, acquired, rows=4,
                                   cols=5, vnir=6, swir=8, seed=day * 10 + n)
                key = prisma_key(path.name)[0]
                published[key] = f"/Products/{token}/{path.name}"
                with links.open("a") as f:
                    f.write(f"{files.url}{published[key]}\n")
        for hour in TICK_HOURS:
            now = midnight + timedelta(hours=hour)
            if rng.random() < 0.1:  # the daemon restarts: fresh objects, same storage
                config, ledger, restarts = load_config(config_path), QuotaLedger(
                    layout.quota_ledger()), restarts + 1
            plan = plan_tick(config, "prisma", layout, ledger, now=now, in_flight=queue)
            queue += [s.scene_key for s in plan.requests if s.scene_key not in queue]
            if rng.random() < 0.2:
                continue  # the runs wait past this tick (pool busy)
            while queue:
                key = queue.pop(0)
                if day < DAYS and rng.random() < 0.05:  # killed after reserving
                    ledger.reserve(ledger.found("prisma", key), BUDGET, now=now)
                    kills += 1
                    continue
                run(key, now, faults=day < DAYS)
            if day < DAYS and rng.random() < 0.15:  # someone materializes one by hand
                pending = [s.scene_key for s in ledger.pending("prisma")]
                if pending:
                    manual += 1
                    run(rng.choice(pending), now, faults=True)
            used = ledger.used("prisma", utc_day(now))
            assert used <= BUDGET, (utc_day(now), used)
        for row in ledger.rows("prisma", day=utc_day(midnight), states=COUNTED):
            charged_per_day[row.utc_day].add(row.scene_key)
        assert len(charged_per_day[utc_day(midnight)]) <= BUDGET

    states = ledger.states("prisma")
    done = {k for k, s in states.items() if s == "done"}
    assert len(published) > 150  # the budget was the bottleneck: a backlog built up
    assert set(fetched) == done and max(fetched.values()) == 1  # no scene twice
    reported = {r.scene_key: r for r in ledger.rows("prisma") if r.state != "done"}
    assert done | set(reported) == set(published)  # none lost
    for row in reported.values():  # left for a person: tried max_attempts times, reason kept
        assert row.attempts >= 4 and row.error
    assert len(reported) <= 3
    # after a scene was done, its file was never requested again
    log = files.state.log
    for key, index in done_at.items():
        assert all(path != published[key] for path, _, _ in log[index:]), key
    # days that had a backlog used the whole budget
    full_days = sum(len(v) == BUDGET for v in charged_per_day.values())
    assert full_days >= 30, full_days
    assert restarts and kills and manual and refused  # every disturbance happened
    assert sleeps and max(sleeps) <= 10
