"""scene_predictions: each recipe marked for inference applied to each satellite scene."""

from dagster import (
    AssetDep,
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)

from geovision_assets import metadata as md
from geovision_assets.assets.satellite import satellite_scene
from geovision_assets.partitions import by_scene, scene_and_recipe, scene_recipe_partitions
from geovision_assets.resources import GeovisionHome, RecipeLibrary


@asset(partitions_def=scene_recipe_partitions, code_version="1", group_name="inference",
       deps=[AssetDep(satellite_scene, partition_mapping=by_scene)],
       kinds={"pytorch", "geotiff"})
def scene_predictions(context: AssetExecutionContext, home: GeovisionHome,
                      recipes: RecipeLibrary) -> MaterializeResult:
    """Class probabilities and labels of the recipe's model over the scene, georeferenced
    (COGs), with a quicklook and the area of every class; requested by
    scene_predictions_sensor as soon as a scene and a trained, marked recipe both exist."""
    import pandas as pd

    from geovision.hashing import sha256_file
    from geovision.pipeline import predict_scene_with_recipe

    scene, recipe = scene_and_recipe(context.partition_key)
    result = predict_scene_with_recipe(scene, recipes.recipe_path(recipe), home.root(),
                                       progress=False)
    areas = pd.DataFrame({"km2": result.class_areas_km2}).rename_axis("class")
    return MaterializeResult(
        data_version=DataVersion(sha256_file(result.files["labels"])),
        metadata={
            "quicklook": md.png(result.files["quicklook"], f"{recipe} on {scene}"),
            "class_areas_km2": md.table(areas),
            "labels": md.path(result.files["labels"]),
            "probabilities": md.path(result.files["probabilities"]),
            "shape": MetadataValue.json(list(result.shape)),
            "crs": MetadataValue.text(result.crs or "none"),
            "bands": MetadataValue.json(result.bands),
            "num_chips": result.num_chips,
            "seconds": MetadataValue.json(result.seconds),
            **md.provenance(scene=scene, recipe=recipe),
        },
    )
