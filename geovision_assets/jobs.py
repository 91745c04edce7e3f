"""Jobs for launching from the CLI, the launchpad or another server: the dataset assets of one
dataset, and the model assets of one (dataset, recipe), each with the default multiprocess
executor or with the dagster-celery executor (one step per celery task, on any worker).

The celery jobs read the broker and result backend from GEOVISION_CELERY_BROKER and
GEOVISION_CELERY_BACKEND (default: Redis on localhost), so the code server, the run workers
and every celery worker agree on them through their environment.
"""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from geovision_assets.partitions import dataset_partitions, dataset_recipe_partitions

BROKER_ENV = "GEOVISION_CELERY_BROKER"
BACKEND_ENV = "GEOVISION_CELERY_BACKEND"
DEFAULT_REDIS = "redis://localhost:6379/0"


def celery_executor():
    """dagster-celery's executor, configured from the environment (None if not installed)."""
    try:
        from dagster_celery import celery_executor as executor
    except ImportError:  # the deploy extra is not installed
        return None
    return executor.configured(
        {"broker": {"env": BROKER_ENV}, "backend": {"env": BACKEND_ENV}},
        name="celery_from_env")


def build_jobs(dataset_assets: list, model_assets: list) -> list:
    datasets = AssetSelection.assets(*dataset_assets)
    models = AssetSelection.assets(*model_assets)
    jobs = [define_asset_job("dataset_assets", selection=datasets,
                             partitions_def=dataset_partitions),
            define_asset_job("model_assets", selection=models,
                             partitions_def=dataset_recipe_partitions)]
    celery = celery_executor()
    if celery is not None:
        jobs += [define_asset_job("dataset_assets_celery", selection=datasets,
                                  partitions_def=dataset_partitions, executor_def=celery),
                 define_asset_job("model_assets_celery", selection=models,
                                  partitions_def=dataset_recipe_partitions, executor_def=celery)]
    return jobs
