"""The recipe sensor: every `<recipe>.yaml` in the recipe folder becomes a `recipe` partition."""


from dagster import DefaultSensorStatus, SensorEvaluationContext, SensorResult, SkipReason, sensor

from geovision_assets.partitions import recipe_partitions
from geovision_assets.resources import GeovisionHome, RecipeLibrary


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


@sensor(minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        asset_selection=["scene_predictions"])
def scene_predictions_sensor(context: SensorEvaluationContext, recipes: RecipeLibrary,
                             home: GeovisionHome):
    """Request scene_predictions for every (scene, recipe) pair whose scene has been fetched
    (its analysis-ready scene.tif exists; generated scenes are made on demand), whose recipe
    is marked for inference and has a trained model, and that was never requested before
    (the cursor keeps the requested pairs)."""
    import json

    from dagster import MultiPartitionKey, RunRequest

    from geovision.experiment.config import ConfigError, load_recipe
    from geovision.layout import Layout
    from geovision_assets.partitions import satellite_scene_partitions

    done = set(json.loads(context.cursor)) if context.cursor else set()
    scenes = context.instance.get_dynamic_partitions(satellite_scene_partitions.name)
    registered = set(context.instance.get_dynamic_partitions(recipe_partitions.name))
    layout = Layout(home.root())
    requests = []
    for recipe in sorted(registered & set(recipes.names())):
        try:
            inference = load_recipe(recipes.recipe_path(recipe)).inference
        except ConfigError:
            continue
        if inference is None or not layout.model_record(inference.dataset, recipe).is_file():
            continue
        for scene in scenes:
            key = str(MultiPartitionKey({"recipe": recipe, "scene": scene}))
            provider, _, scene_key = scene.partition(":")
            fetched = provider == "generated" or (
                scene_key and (layout.scene(provider, scene_key) / "scene.tif").is_file())
            if key not in done and fetched:
                done.add(key)
                requests.append(RunRequest(partition_key=key, run_key=key))
    if not requests:
        return SkipReason("no new (scene, marked recipe) pair with a trained model")
    return SensorResult(run_requests=requests, cursor=json.dumps(sorted(done)))
