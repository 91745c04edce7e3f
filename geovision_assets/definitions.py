"""The code location: the one place that lists every asset, check, sensor and resource."""

from __future__ import annotations

from dagster import Definitions, PipesSubprocessClient
from dagster_aws.s3 import S3Resource

from geovision_assets.assets.attribution import attribution_report
from geovision_assets.assets.datasets import dataset_index, raw_dataset
from geovision_assets.assets.evaluation import model_evaluation
from geovision_assets.assets.features import region_features
from geovision_assets.assets.inference import scene_predictions
from geovision_assets.assets.satellite import satellite_scene
from geovision_assets.assets.shards import hdf_shards, streaming_shards
from geovision_assets.assets.statistics import eda_report, image_statistics
from geovision_assets.assets.training import trained_model
from geovision_assets.assets.weights import ported_weights
from geovision_assets.jobs import build_jobs
from geovision_assets.resources import (
    DetectorWeights,
    GeovisionHome,
    RecipeLibrary,
    SatelliteSettings,
)
from geovision_assets.satellite_sensors import satellite_sensors
from geovision_assets.sensors import recipe_sensor, scene_predictions_sensor

DATASET_ASSETS = [raw_dataset, dataset_index, image_statistics, eda_report, hdf_shards,
                  streaming_shards, region_features]
MODEL_ASSETS = [trained_model, model_evaluation, attribution_report]
SCENE_ASSETS = [scene_predictions]


def default_resources() -> dict:
    # `pipes` launches multi-device training (torchrun) for trained_model. The artifact root
    # is published to S3 when GEOVISION_ARTIFACT_ROOT names a prefix; S3Resource's unset
    # fields mean S3_ENDPOINT_URL and the standard AWS credential chain.
    return {"home": GeovisionHome(), "s3": S3Resource(), "recipes": RecipeLibrary(),
            "weights": DetectorWeights(), "pipes": PipesSubprocessClient(),
            "satellite": SatelliteSettings()}


defs = Definitions(
    assets=[*DATASET_ASSETS, *MODEL_ASSETS, satellite_scene, *SCENE_ASSETS, ported_weights],
    sensors=[recipe_sensor, *satellite_sensors, scene_predictions_sensor],
    jobs=build_jobs(DATASET_ASSETS, MODEL_ASSETS),
    resources=default_resources(),
)
