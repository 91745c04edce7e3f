"""Model registry: names usable in experiment configs, with the role each one serves.

A role is a supervised task ("classification", "segmentation", "multilabel") or a
self-supervised workflow ("gan", "vae", "moco"). The data supplies `in_channels`,
`num_classes` and `image_size`; every other constructor argument may be set from the config's
`model.kwargs`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from geovision.models.generative import SmallGAN, SmallVAE
from geovision.models.moco import SmallMoCo
from geovision.models.small import SmallCNN, SmallUNet
from geovision.models.temporal import SingleDateUNet, SmallUTAE

DATA_ARGUMENTS = ("in_channels", "num_classes", "image_size")


@dataclass(frozen=True)
class ModelSpec:
    builder: Callable[..., nn.Module]
    roles: tuple[str, ...]


MODELS: dict[str, ModelSpec] = {
    # One logit per class serves both: softmax over classes, or a sigmoid per label.
    "small_cnn": ModelSpec(SmallCNN, ("classification", "multilabel")),
    "small_unet": ModelSpec(SmallUNet, ("segmentation",)),
    "small_gan": ModelSpec(SmallGAN, ("gan",)),
    "small_vae": ModelSpec(SmallVAE, ("vae",)),
    "small_moco": ModelSpec(SmallMoCo, ("moco",)),
    # Time series (TimeSeries batches; a plain image is a series of one date).
    "small_utae": ModelSpec(SmallUTAE, ("segmentation",)),
    "single_date_unet": ModelSpec(SingleDateUNet, ("segmentation",)),
}


def list_models() -> list[str]:
    return sorted(MODELS)


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"Unknown model {name!r}. Known models: {', '.join(list_models())}.") \
            from None


def _parameters(name: str) -> list[str]:
    return list(inspect.signature(model_spec(name).builder).parameters)


def model_kwargs(name: str) -> list[str]:
    """The keyword arguments a config may set for `name` (the data supplies the rest)."""
    return [p for p in _parameters(name) if p not in DATA_ARGUMENTS]


def check_model(name: str, role: str, kwargs: dict[str, Any]) -> None:
    """Refuse an unknown model, a model for another role, or unknown keyword arguments."""
    spec = model_spec(name)
    if role not in spec.roles:
        raise ValueError(f"Model {name!r} serves {spec.roles}, not {role!r}. Models for {role}: "
                         f"{', '.join(n for n, s in MODELS.items() if role in s.roles)}.")
    unknown = sorted(set(kwargs) - set(model_kwargs(name)))
    if unknown:
        raise ValueError(f"Model {name!r} has no arguments {unknown}; valid: "
                         f"{model_kwargs(name)}.")


def build_model(name: str, in_channels: int, num_classes: int, role: str,
                image_size: int | None = None, **kwargs: Any) -> nn.Module:
    """The model, given the data's facts it asks for (image_size only where it needs one)."""
    check_model(name, role, kwargs)
    data = {"in_channels": in_channels, "num_classes": num_classes, "image_size": image_size}
    wanted = {key: data[key] for key in DATA_ARGUMENTS if key in _parameters(name)}
    if wanted.get("image_size", 0) is None:
        raise ValueError(f"Model {name!r} needs the image size; pass image_size.")
    return model_spec(name).builder(**wanted, **kwargs)
