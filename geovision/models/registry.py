"""Model registry: names usable in experiment configs, with the task each one serves."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from geovision.models.small import SmallCNN, SmallUNet


@dataclass(frozen=True)
class ModelSpec:
    builder: Callable[..., nn.Module]
    tasks: tuple[str, ...]


MODELS: dict[str, ModelSpec] = {
    "small_cnn": ModelSpec(SmallCNN, ("classification",)),
    "small_unet": ModelSpec(SmallUNet, ("segmentation",)),
}


def list_models() -> list[str]:
    return sorted(MODELS)


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"Unknown model {name!r}. Known models: {', '.join(list_models())}.") \
            from None


def model_kwargs(name: str) -> list[str]:
    """The keyword arguments a config may set for `name` (in_channels and num_classes come from
    the dataset)."""
    params = inspect.signature(model_spec(name).builder).parameters
    return [p for p in params if p not in ("in_channels", "num_classes")]


def check_model(name: str, task: str, kwargs: dict[str, Any]) -> None:
    """Refuse an unknown model, a model for another task, or unknown keyword arguments."""
    spec = model_spec(name)
    if task not in spec.tasks:
        raise ValueError(f"Model {name!r} serves {spec.tasks}, not {task!r}. Models for {task}: "
                         f"{', '.join(n for n, s in MODELS.items() if task in s.tasks)}.")
    unknown = sorted(set(kwargs) - set(model_kwargs(name)))
    if unknown:
        raise ValueError(f"Model {name!r} has no arguments {unknown}; valid: "
                         f"{model_kwargs(name)}.")


def build_model(name: str, in_channels: int, num_classes: int, task: str,
                **kwargs: Any) -> nn.Module:
    check_model(name, task, kwargs)
    return model_spec(name).builder(in_channels=in_channels, num_classes=num_classes, **kwargs)
