"""Validated experiment configs: one YAML file describes a run completely.

A *recipe* is the same config without `dataset_name`; the Dagster `recipe` partition (or the
CLI) supplies the dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from geovision.data.registry import DATASETS, get_dataset
from geovision.models.registry import check_model


class ConfigError(ValueError):
    """A config that cannot be used, with every problem and how to fix it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    name: str = Field(description="model registry name, e.g. small_cnn")
    kwargs: dict[str, Any] = Field(default_factory=dict)


class DataConfig(_Strict):
    source: Literal["files", "hdf", "streaming"] = "files"
    batch_size: int = Field(32, ge=1)
    num_workers: int = Field(0, ge=0)


class OptimizerConfig(_Strict):
    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)


class SchedulerConfig(_Strict):
    name: Literal["none", "cosine", "step"] = "none"
    warmup_epochs: int = Field(0, ge=0)
    warmup: Literal["linear", "cosine"] = "linear"
    step_size: int = Field(10, ge=1)
    gamma: float = Field(0.1, gt=0, le=1)


class TrainerConfig(_Strict):
    max_epochs: int = Field(10, ge=1)
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: int = Field(1, ge=1)
    precision: Literal["32-true", "16-mixed", "bf16-mixed"] = "32-true"
    accumulate_grad_batches: int = Field(1, ge=1)
    gradient_clip_val: float | None = Field(None, gt=0)
    deterministic: bool = True


class CheckpointConfig(_Strict):
    monitor: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    save_top_k: int = Field(1, ge=-1)


class RecipeConfig(_Strict):
    """An experiment without its dataset."""

    project: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    task: Literal["classification", "segmentation"]
    random_seed: int
    model: ModelConfig
    data: DataConfig = DataConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    trainer: TrainerConfig = TrainerConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    metrics: tuple[str, ...] = ("accuracy",)

    @model_validator(mode="after")
    def _model_fits_task(self) -> RecipeConfig:
        check_model(self.model.name, self.task, self.model.kwargs)
        return self

    def with_dataset(self, dataset_name: str) -> ExperimentConfig:
        return ExperimentConfig(dataset_name=dataset_name, **self.model_dump())


class ExperimentConfig(RecipeConfig):
    """A complete, runnable experiment."""

    dataset_name: str

    @model_validator(mode="after")
    def _dataset_fits_task(self) -> ExperimentConfig:
        if self.dataset_name not in DATASETS:
            raise ValueError(f"unknown dataset_name {self.dataset_name!r}; known: "
                             f"{', '.join(sorted(DATASETS))}")
        dataset_task = get_dataset(self.dataset_name).TASK
        if dataset_task != self.task:
            raise ValueError(f"task {self.task!r} does not match dataset {self.dataset_name!r}, "
                             f"whose task is {dataset_task!r}")
        return self

    def config_hash(self) -> str:
        """Stable across key order, YAML formatting and defaults spelled out or left out."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _format_errors(kind: type[BaseModel], exc: ValidationError, source: str) -> str:
    lines = [f"Invalid {kind.__name__} in {source}:"]
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            parent = _model_at(kind, error["loc"][:-1])
            valid = ", ".join(parent.model_fields) if parent else "see the docs"
            lines.append(f"  {location}: unknown key; valid keys here: {valid}")
        else:
            lines.append(f"  {location}: {error['msg']}")
    return "\n".join(lines)


def _model_at(kind: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    current: Any = kind
    for part in loc:
        field = current.model_fields.get(str(part)) if isinstance(current, type) else None
        if field is None or not (isinstance(field.annotation, type)
                                 and issubclass(field.annotation, BaseModel)):
            return None
        current = field.annotation
    return current


def parse_config(data: dict[str, Any], kind: type[RecipeConfig] = ExperimentConfig,
                 source: str = "config") -> RecipeConfig:
    """Validate a dict into `kind`, turning pydantic's errors into one readable ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a YAML mapping of config keys, got "
                          f"{type(data).__name__}.")
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(kind, exc, source)) from None


def load_config(path: str | os.PathLike, dataset_name: str | None = None) -> ExperimentConfig:
    """Load an experiment YAML, or a recipe YAML plus `dataset_name`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {path} not found.")
    data = yaml.safe_load(path.read_text()) or {}
    if dataset_name is not None:
        if isinstance(data, dict) and "dataset_name" in data:
            raise ConfigError(f"{path} already names dataset_name={data['dataset_name']!r}; "
                              "a recipe must leave the dataset out.")
        recipe = parse_config(data, RecipeConfig, str(path))
        try:
            return recipe.with_dataset(dataset_name)
        except ValidationError as exc:
            raise ConfigError(_format_errors(ExperimentConfig, exc, str(path))) from None
    return parse_config(data, ExperimentConfig, str(path))


def load_recipe(path: str | os.PathLike) -> RecipeConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Recipe file {path} not found.")
    return parse_config(yaml.safe_load(path.read_text()) or {}, RecipeConfig, str(path))


def dump_config(config: RecipeConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
