"""Resources: where artifacts and recipes live, and which detector weights to use."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from geovision.layout import geovision_home

RECIPES_ENV = "GEOVISION_RECIPES"


class GeovisionHome(ConfigurableResource):
    """The artifact root; empty means `$GEOVISION_HOME`, else `./.geovision_home`."""

    path: str = Field(default="", description="artifact root folder (local path)")

    def root(self) -> Path:
        return geovision_home(self.path or None)


class RecipeLibrary(ConfigurableResource):
    """The folder of recipe YAML files; empty means `$GEOVISION_RECIPES`, else `./recipes`."""

    path: str = Field(default="", description="folder holding <recipe>.yaml files")

    def folder(self) -> Path:
        return Path(self.path or os.environ.get(RECIPES_ENV) or "recipes").resolve()

    def recipe_path(self, recipe: str) -> Path:
        path = self.folder() / f"{recipe}.yaml"
        if not path.is_file():
            raise FileNotFoundError(f"Recipe {recipe!r} has no file {path}; add it there or set "
                                    f"{RECIPES_ENV} to the folder that holds it.")
        return path

    def names(self) -> list[str]:
        folder = self.folder()
        return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


class DetectorWeights(ConfigurableResource):
    """Region-feature detector weights; empty means random weights (clearly labelled)."""

    path: str = Field(default="", description="local weights file (detectron2 pickle or "
                                              "pytorch_model.bin)")
    full_size: bool = Field(default=False, description="full ResNet-101 detector (True) or the "
                                                       "tiny CPU configuration (False)")

    def weights(self) -> Path | None:
        return Path(self.path) if self.path else None


class SatelliteSettings(ConfigurableResource):
    """Where satellite.yaml is; empty means `$GEOVISION_SATELLITE_CONFIG`, else
    `./satellite.yaml`. Credentials stay in the environment variables the file names."""

    config_path: str = Field(default="", description="satellite.yaml (providers, areas, "
                                                     "budgets)")

    def load(self):
        from geovision.satellite.config import load_config

        return load_config(self.config_path or None, missing_ok=True)

    def ledger(self, config, layout, instance):
        """The quota ledger: as satellite.yaml says, else the Dagster instance's Postgres
        database when it has one (every run and sensor of a deployment shares it), else
        SQLite under the artifact root."""
        from geovision.satellite.ledger import QuotaLedger

        url = getattr(getattr(instance, "run_storage", None), "postgres_url", None)
        if config.ledger or config.ledger_env or not url:
            return config.open_ledger(layout)
        return QuotaLedger(url)
