"""One opt-in sensor per satellite provider: search, then request at most the day's budget.

A tick only searches (seconds) and returns RunRequests for `satellite_scene` partitions plus
the new partitions; the runs do the downloads. The quota ledger decides what is left today;
queued and running runs of the provider count as used. Turn a sensor on in the UI
(Automation), or with `dagster sensor start satellite_<provider>`.
"""

import os

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from geovision_assets.partitions import satellite_scene_partitions
from geovision_assets.resources import GeovisionHome, SatelliteSettings

PROVIDERS = ("enmap", "worldview", "prisma")
INTERVAL_ENV = "GEOVISION_SATELLITE_SENSOR_INTERVAL"
PROVIDER_TAG = "geovision/provider"
WAITING = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
           DagsterRunStatus.STARTED]


def in_flight(context: SensorEvaluationContext, provider: str) -> list[str]:
    """Scene keys of this provider's runs that are queued or running."""
    runs = context.instance.get_runs(filters=RunsFilter(tags={PROVIDER_TAG: provider},
                                                        statuses=WAITING))
    keys = [run.tags.get("dagster/partition", "") for run in runs]
    return [k.split(":", 1)[1] for k in keys if ":" in k]


def evaluate(context: SensorEvaluationContext, provider: str, home: GeovisionHome,
             satellite: SatelliteSettings):
    """One tick for `provider` (the body of each sensor)."""
    from geovision.errors import GeovisionError
    from geovision.layout import Layout
    from geovision.satellite import plan_tick

    config = satellite.load()
    if provider not in config.providers:
        return SkipReason(f"{provider}: not configured in {config.path}; add it under "
                          "providers: (see README, 'Daily satellite downloads')")
    layout = Layout(home.root())
    try:
        plan = plan_tick(config, provider, layout,
                         satellite.ledger(config, layout, context.instance),
                         in_flight=in_flight(context, provider))
    except GeovisionError as exc:
        return SkipReason(f"{provider}: {exc}")
    if plan.skip_reason:
        return SkipReason(plan.skip_reason)
    keys = [scene.partition_key for scene in plan.requests]
    context.log.info(f"{provider}: {plan.found} found, requesting {len(keys)} "
                     f"({plan.used}/{plan.budget} used for {plan.day})")
    return SensorResult(
        run_requests=[RunRequest(partition_key=key, run_key=f"{key}@{plan.day}",
                                 tags={PROVIDER_TAG: provider, "geovision/quota_day": plan.day})
                      for key in keys],
        dynamic_partitions_requests=[satellite_scene_partitions.build_add_request(keys)],
    )


def satellite_sensor(provider: str):
    @sensor(name=f"satellite_{provider}", asset_selection=["satellite_scene"],
            minimum_interval_seconds=int(os.environ.get(INTERVAL_ENV, "3600")),
            default_status=DefaultSensorStatus.STOPPED,
            description=f"Daily {provider} scenes within the budget of satellite.yaml (opt-in)")
    def _sensor(context: SensorEvaluationContext, home: GeovisionHome,
                satellite: SatelliteSettings):
        return evaluate(context, provider, home, satellite)

    return _sensor


satellite_sensors = [satellite_sensor(provider) for provider in PROVIDERS]
