"""Resources: where artifacts and recipes live, and which detector weights to use."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource, MetadataValue
from dagster_aws.s3 import S3Resource
from pydantic import Field

from geovision.layout import Layout, geovision_home

RECIPES_ENV = "GEOVISION_RECIPES"


class GeovisionHome(ConfigurableResource):
    """The artifact root; empty means `$GEOVISION_HOME`, else `./.geovision_home`.

    With `artifact_root` (or `$GEOVISION_ARTIFACT_ROOT`) an S3 prefix, this local root is a
    cache of it: see `synced`.
    """

    path: str = Field(default="", description="artifact root folder (local path; the cache "
                                              "when artifact_root is an S3 prefix)")
    artifact_root: str = Field(default="", description="s3://bucket/prefix that finished "
                               "artifacts are published to; empty: $GEOVISION_ARTIFACT_ROOT, "
                               "and when that is unset too, artifacts stay local")

    def root(self) -> Path:
        return geovision_home(self.path or None)

    def layout(self) -> Layout:
        return Layout(self.root())

    def synced(self, s3: S3Resource) -> ArtifactSync:
        """This root's syncing with the remote one, through the endpoint, profile, region or
        keys that dagster-aws's S3Resource gives (unset fields: `$S3_ENDPOINT_URL` and the
        standard AWS chain)."""
        return ArtifactSync(self.layout(), s3, self.artifact_root or None)


class ArtifactSync:
    """An asset's traffic with a remote artifact root: it first fetches the published versions
    of what it reads (`fetch`), works in the local cache, then publishes what it wrote
    (`publish`), the marker last. With no remote root every method does nothing."""

    def __init__(self, layout: Layout, s3: S3Resource, remote: str | None) -> None:
        from geovision.io.s3 import S3IO
        from geovision.io.store import ARTIFACT_ROOT_ENV, ENDPOINT_ENV, artifact_store

        self.layout = layout
        endpoint = s3.endpoint_url or os.environ.get(ENDPOINT_ENV)
        keys = {"AWS_ACCESS_KEY_ID": s3.aws_access_key_id,
                "AWS_SECRET_ACCESS_KEY": s3.aws_secret_access_key,
                "AWS_SESSION_TOKEN": s3.aws_session_token}
        client = S3IO(endpoint_url=endpoint, profile=s3.profile_name, region=s3.region_name,
                      no_sign_request=bool(s3.use_unsigned_session), credentials=keys)
        self.store = artifact_store(layout.home, client, remote=remote)
        if self.store is not None:
            # What reads these from the environment in this step's process and its children
            # (checkpoint uploads, torchrun ranks, MosaicML streaming) gets the same settings.
            settings = {ARTIFACT_ROOT_ENV: str(self.store.remote).rstrip("/"),
                        ENDPOINT_ENV: endpoint, "AWS_PROFILE": s3.profile_name,
                        "AWS_REGION": s3.region_name, **keys}
            os.environ.update({k: v for k, v in settings.items() if v})

    def fetch(self, *paths: Path) -> None:
        """Bring the published version of each artifact into the local cache (those never
        published are left to the step, which says what is missing)."""
        for path in paths if self.store is not None else ():
            self.store.fetch_if_published(path)

    def fetch_model(self, dataset: str, recipe: str) -> None:
        """Fetch what reading the (dataset, recipe) model needs: its record, its run folder,
        the dataset's files and index, and the local shards the run read."""
        if self.store is None:
            return
        from geovision.experiment.runfolders.inputs import load_run
        from geovision.pipeline import load_model_record

        layout = self.layout
        self.fetch(layout.model_record(dataset, recipe))
        run_dir = load_model_record(dataset, recipe, layout.home).run_dir
        self.fetch(run_dir, layout.dataset(dataset), layout.index(dataset))
        shards = load_run(run_dir).shards_dir
        if isinstance(shards, Path):
            self.fetch(shards)

    def streamed(self, path: Path) -> str | Path:
        """Where a reader streams the MDS folder `path` from: its published version on S3
        (MosaicML streaming caches it locally), or `path` itself when artifacts are local."""
        from geovision.errors import MissingDataError

        if self.store is None:
            return path
        marker = self.store.published(path)
        if marker is None:
            raise MissingDataError(f"{self.store.remote.join(self.store.relative(path))} was "
                                   "never published: materialize streaming_shards first")
        return marker.url

    def publish(self, *paths: Path) -> dict[str, MetadataValue]:
        """Publish each finished artifact (marker last); metadata naming where each version
        lives, or nothing when artifacts stay local."""
        if self.store is None:
            return {}
        published = [self.store.publish(path) for path in paths]
        return {"published": MetadataValue.json({p.relative: p.url for p in published}),
                "published_bytes": sum(p.num_bytes for p in published)}


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
