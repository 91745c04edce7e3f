"""`geovision satellite search|fetch|quota|inbox`: the daily-download library from a shell.

The same calls as the sensors and the `satellite_scene` asset, on the same ledger: a scene
fetched here counts against the day's budget and is not fetched again by a sensor. A user's
error (a GeovisionError) reaches `geovision.cli.main`, which prints it as one line and exits 2.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, time
from pathlib import Path

import typer

satellite_app = typer.Typer(help="Daily satellite scenes: search providers, fetch within the "
                            "daily budget, show the quota ledger, manage delivery inboxes.",
                            no_args_is_help=True, rich_markup_mode=None)

CONFIG = typer.Option(None, "--config", help="satellite.yaml (default: "
                      "$GEOVISION_SATELLITE_CONFIG or ./satellite.yaml)")
HOME = typer.Option(None, "--home", help="artifact root (default: $GEOVISION_HOME or "
                    "./.geovision_home)")


def _open(config: Path | None, home: Path | None):
    from geovision.layout import Layout
    from geovision.satellite import load_config

    layout = Layout(home)
    settings = load_config(config)
    return settings, layout, settings.open_ledger(layout)


def _day(value: str | None, end: bool = False) -> datetime | None:
    if value is None:
        return None
    moment = time.max if end else time.min
    return datetime.combine(date.fromisoformat(value), moment, UTC)


@satellite_app.command("search")
def search_command(
    provider: str = typer.Argument(..., help="provider name in satellite.yaml"),
    start: str | None = typer.Option(None, "--start", help="YYYY-MM-DD (default: the "
                                     "provider's window)"),
    end: str | None = typer.Option(None, "--end", help="YYYY-MM-DD (default: now)"),
    config: Path | None = CONFIG, home: Path | None = HOME,
) -> None:
    """Search the provider's areas (nothing is downloaded) and remember what was found."""
    from geovision.satellite import search_scenes

    settings, layout, ledger = _open(config, home)
    scenes = search_scenes(settings, provider, layout, ledger, start=_day(start),
                           end=_day(end, end=True))
    states = ledger.states(provider)
    for scene in scenes:
        cloud = "-" if scene.cloud_cover is None else f"{scene.cloud_cover:g}%"
        typer.echo(f"{scene.partition_key:48s} {scene.acquired:%Y-%m-%d %H:%M} UTC  "
                   f"cloud {cloud:6s} {states.get(scene.scene_key, 'new'):16s} "
                   f"{scene.product_id}")
    typer.echo(f"{len(scenes)} scenes found")


@satellite_app.command("fetch")
def fetch_command(
    provider: str = typer.Argument(..., help="provider name in satellite.yaml"),
    keys: list[str] = typer.Argument(None, help="scene keys (default: what a sensor tick "
                                     "would request now)"),
    config: Path | None = CONFIG, home: Path | None = HOME,
) -> None:
    """Fetch scenes within today's budget and write their analysis-ready form."""
    from geovision.satellite import download_scene, plan_tick

    settings, layout, ledger = _open(config, home)
    if not keys:
        plan = plan_tick(settings, provider, layout, ledger)
        if plan.skip_reason:
            typer.echo(plan.skip_reason)
            return
        keys = [scene.scene_key for scene in plan.requests]
    for key in keys:
        result = download_scene(settings, f"{provider}:{key}", layout, ledger)
        state = "already there" if result.reused else "fetched"
        typer.echo(f"{result.partition_key}: {state}, {len(result.band_names)} bands, "
                   f"{result.bytes} bytes -> {result.scene}")


@satellite_app.command("quota")
def quota_command(
    provider: str | None = typer.Argument(None, help="one provider (default: all)"),
    day: str | None = typer.Option(None, "--day", help="UTC day YYYY-MM-DD (default: today)"),
    config: Path | None = CONFIG, home: Path | None = HOME,
) -> None:
    """What the ledger shows: each provider's use of the day's budget, its scenes, and the
    scenes found but not fetched yet or left for a person to look at."""
    from geovision.satellite.ledger import next_window, utc_day

    settings, _, ledger = _open(config, home)
    day = day or utc_day(datetime.now(UTC))
    names = [provider] if provider else list(settings.providers)
    for name in names:
        budget = settings.provider(name).daily_budget
        max_attempts = settings.provider(name).max_attempts
        used = ledger.used(name, day)
        typer.echo(f"{name} {day}: {used}/{budget} used; next window {next_window(day)}")
        for row in ledger.rows(name, day=day):
            size = "" if row.bytes is None else f" {row.bytes} bytes"
            typer.echo(f"  {row.state:16s} {row.scene_key}{size} (attempt {row.attempts})"
                       + (f": {row.error.splitlines()[0][:160]}" if row.error else ""))
        pending = ledger.pending(name)
        rows = {r.scene_key: r for r in ledger.rows(name)}
        stuck = [rows[s.scene_key] for s in pending if s.scene_key in rows
                 and rows[s.scene_key].attempts >= max_attempts
                 and rows[s.scene_key].state != "reserved"]
        typer.echo(f"  found, not fetched yet: {len(pending) - len(stuck)}")
        for row in stuck:
            typer.echo(f"  needs a look: {row.scene_key} ({row.state}, {row.attempts} "
                       f"attempts): {(row.error or '').splitlines()[0][:160]}")


@satellite_app.command("inbox")
def inbox_command(
    provider: str = typer.Argument(..., help="an inbox provider (prisma, worldview...)"),
    add: list[Path] = typer.Option(None, "--add", help="copy a delivered zip into the inbox"),
    add_link: list[str] = typer.Option(None, "--add-link", help="append a delivery URL to "
                                       "links.txt"),
    config: Path | None = CONFIG, home: Path | None = HOME,
) -> None:
    """Show (and add to) a delivery inbox: zips in the folder and URLs in links.txt."""
    from geovision.errors import ConfigError
    from geovision.satellite.providers import LINKS_FILE

    settings, layout, ledger = _open(config, home)
    if settings.provider(provider).kind != "inbox":
        raise ConfigError(f"{provider} is a {settings.provider(provider).kind} provider, not "
                          "an inbox; `geovision satellite search` it instead.")
    folder = layout.inbox(provider)
    folder.mkdir(parents=True, exist_ok=True)
    for path in add or []:
        if not path.is_file() or path.suffix.lower() != ".zip":
            raise ConfigError(f"{path} is not a .zip delivery.")
        shutil.copyfile(path, folder / path.name)
    if add_link:
        with (folder / LINKS_FILE).open("a") as f:
            for url in add_link:
                f.write(url.strip() + "\n")
    from geovision.satellite import search_scenes

    scenes = search_scenes(settings, provider, layout, ledger,
                           start=datetime(1970, 1, 1, tzinfo=UTC))
    states = ledger.states(provider)
    typer.echo(f"inbox {folder}")
    for scene in scenes:
        source = "link" if scene.extra.get("source") == "link" else "zip"
        typer.echo(f"  {scene.scene_key:32s} {scene.acquired:%Y-%m-%d %H:%M} UTC  {source:4s} "
                   f"{states.get(scene.scene_key, 'new')}")
    typer.echo(f"{len(scenes)} deliveries")
