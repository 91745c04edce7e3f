"""The recipe sensor: every `<recipe>.yaml` in the recipe folder becomes a `recipe` partition."""


from dagster import DefaultSensorStatus, SensorEvaluationContext, SensorResult, SkipReason, sensor

from geovision_assets.partitions import recipe_partitions
from geovision_assets.resources import RecipeLibrary


def new_recipes(existing: list[str], available: list[str]) -> list[str]:
    return sorted(set(available) - set(existing))


@sensor(minimum_interval_seconds=30, default_status=DefaultSensorStatus.RUNNING)
def recipe_sensor(context: SensorEvaluationContext, recipes: RecipeLibrary):
    """Register new recipe files as partitions (removing a file does not delete history)."""
    from geovision.experiment.config import ConfigError, load_recipe

    existing = context.instance.get_dynamic_partitions(recipe_partitions.name)
    valid, invalid = [], []
    for name in new_recipes(existing, recipes.names()):
        try:
            load_recipe(recipes.recipe_path(name))
            valid.append(name)
        except ConfigError as exc:
            invalid.append(f"{name}: {exc}")
    if invalid:
        context.log.warning("Recipes not registered until fixed:\n" + "\n".join(invalid))
    if not valid:
        return SkipReason("no new valid recipe files in " + str(recipes.folder()))
    return SensorResult(dynamic_partitions_requests=[recipe_partitions.build_add_request(valid)])
