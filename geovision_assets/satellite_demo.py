"""`make satellite-demo`: the providers' hosts stood in on loopback, then the Dagster UI.

Builds tiny EnMAP products dated over the last days behind a Basic-auth download host and a
STAC API (stac-fastapi-static, in `.venv-stac`), PRISMA and WorldView deliveries in their
inboxes, a `satellite.yaml` for them under the artifact root, and starts `dagster dev` with
sensors ticking every 30 s instead of hourly. Turn `satellite_enmap` on (Automation): it
requests 4 scenes, the runs materialize them one at a time (pool `satellite`), and later ticks
skip with "enmap: 4/4 used for <today>; next window 00:00 UTC". `--no-ui` does the same
without the UI (a few sensor ticks and their runs in this process) and prints what happened.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from geovision.layout import Layout
from geovision.satellite import samples
from geovision.satellite.standin import FileServer, StacServer

USER_ENV, PASSWORD_ENV = "GEOVISION_DEMO_ENMAP_USER", "GEOVISION_DEMO_ENMAP_PASSWORD"
DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"
ENMAP_SCENES = 7
AOI = [10.0, 47.5, 11.0, 48.5]


def build_products(root: Path, layout: Layout, now: datetime) -> list[samples.CatalogueItem]:
    """EnMAP products on the download tree, PRISMA and WorldView zips in their inboxes."""
    files = root / "files"
    items = [samples.enmap_item(files, 30000 + i, 1 + i % 3, now - timedelta(days=6 - i,
                                hours=3), seed=i, cloud=5.0 * i, width=40, height=30)
             for i in range(ENMAP_SCENES)]
    for i in range(3):
        samples.make_prisma(layout.inbox("prisma"), now - timedelta(days=3 - i, hours=2),
                            rows=20, cols=24, seed=i)
    samples.make_worldview(layout.inbox("worldview"), "013663600010",
                           "1040010012345600", now - timedelta(days=2), width=32, height=24)
    return items


def write_demo_config(path: Path, stac_url: str) -> Path:
    config = {"providers": {
        "enmap": {"preset": "enmap", "url": stac_url, "daily_budget": 4, "areas": [AOI],
                  "lookback_days": 14,
                  "auth": {"type": "basic", "username_env": USER_ENV,
                           "password_env": PASSWORD_ENV, "hosts": []}},
        "prisma": {"preset": "prisma", "daily_budget": 2, "lookback_days": 14},
        "worldview": {"preset": "worldview_esa", "daily_budget": 4, "lookback_days": 14},
    }}
    path.write_text("# written by `make satellite-demo`: the providers are loopback "
                    "stand-ins\n" + yaml.safe_dump(config, sort_keys=False))
    return path


def headless(ticks: int = 3) -> list[str]:
    """Tick the enmap sensor `ticks` times, running what it requests in between; return
    what each tick said (requests or its skip message)."""
    from dagster import DagsterInstance, SkipReason, build_sensor_context, materialize

    from geovision_assets.assets.satellite import satellite_scene
    from geovision_assets.definitions import default_resources, defs

    instance = DagsterInstance.get()
    resources = default_resources()
    said = []
    for _ in range(ticks):
        sensor = defs.get_sensor_def("satellite_enmap")
        result = sensor(build_sensor_context(instance=instance, resources=resources))
        if isinstance(result, SkipReason):
            said.append(result.skip_message)
            continue
        keys = [r.partition_key for r in result.run_requests]
        instance.add_dynamic_partitions("satellite_scene", keys)
        said.append("requested " + ", ".join(keys))
        for key in keys:
            run = materialize([satellite_scene], partition_key=key, instance=instance,
                              resources={"home": resources["home"],
                                         "satellite": resources["satellite"]},
                              tags={"geovision/provider": "enmap"})
            said.append(f"{key}: {'materialized' if run.success else 'failed'}")
    return said


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Satellite sensors on loopback stand-ins.")
    parser.add_argument("--no-ui", action="store_true", help="tick the enmap sensor here "
                        "instead of starting the UI")
    parser.add_argument("--port", type=int, default=3000, help="port of the UI")
    args = parser.parse_args(argv)
    if not os.environ.get("DAGSTER_HOME"):
        print("Set DAGSTER_HOME to keep the demo's history (make satellite-demo does this).",
              file=sys.stderr)
        return 2
    layout = Layout()
    root = layout.cache("satellite-demo")
    now = datetime.now(UTC)
    os.environ[USER_ENV], os.environ[PASSWORD_ENV] = DEMO_USER, DEMO_PASSWORD
    os.environ.setdefault("GEOVISION_SATELLITE_SENSOR_INTERVAL", "30")
    items = build_products(root, layout, now)
    with FileServer(root / "files", users={DEMO_USER: DEMO_PASSWORD},
                    login_redirect=True) as files:
        catalog = samples.write_catalogue(root / f"catalog-{now:%Y%m%dT%H%M%S}", items,
                                          files.url, root / "files")
        with StacServer(catalog) as stac:
            config = write_demo_config(layout.satellite() / "satellite-demo.yaml", stac.url)
            os.environ["GEOVISION_SATELLITE_CONFIG"] = str(config)
            print(f"STAC stand-in {stac.url}, download host {files.url}, config {config}")
            if args.no_ui:
                for line in headless():
                    print(line)
                return 0
            print(f"Open http://127.0.0.1:{args.port}, Automation: turn satellite_enmap on. "
                  "Ctrl-C stops the UI and the stand-ins.", flush=True)
            return run_ui(args.port)


def run_ui(port: int) -> int:
    """`dagster dev` until Ctrl-C (or SIGTERM), which it gets as SIGINT to stop cleanly."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    ui = subprocess.Popen([dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p",
                           str(port)])
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return ui.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if ui.poll() is None:
            ui.send_signal(signal.SIGINT)
            try:
                ui.wait(60)
            except subprocess.TimeoutExpired:
                ui.kill()

if __name__ == "__main__":
    sys.exit(main())
