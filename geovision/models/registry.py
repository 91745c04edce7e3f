"""The model registry: every constructor, registered where it is defined, with its roles.

A role is a supervised task ("classification", "segmentation", "multilabel") or a
self-supervised workflow ("gan", "vae", "moco"); the experiment config checks a model against
the role its workflow needs. The data supplies `in_channels`, `num_classes` and, to the models
that ask for it, `image_size`; everything else a config may set is a keyword argument of the
constructor (or of the architecture class it forwards `**kwargs` to), and nothing else.

Constructors are found by importing every module of this package the first time a name is
looked up, so adding a model is writing it under `@register_model`. This module imports no
torch: listing names is cheap, and building one imports what it needs.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from geovision.discovery import import_package_modules
from geovision.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from torch import nn

    from geovision.models.weights import WeightsSpec

CLASSIFICATION = ("classification", "multilabel")  # one logit per class serves both
SEGMENTATION = ("segmentation",)
DATA_ARGUMENTS = ("in_channels", "num_classes", "image_size")
NOT_MODEL_MODULES = {"registry"}

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ModelEntry:
    """One registered constructor and what a caller may pass it."""

    name: str
    builder: Callable[..., Any]
    roles: tuple[str, ...]
    options: tuple[str, ...]  # keyword arguments a config may set
    data: tuple[str, ...]  # the data facts (DATA_ARGUMENTS) the constructor takes


_MODELS: dict[str, ModelEntry] = {}
_discovered = False


def _keywords(fn: Callable[..., Any]) -> tuple[list[str], bool]:
    """(names that can be passed by keyword, whether it also takes **kwargs)."""
    parameters = inspect.signature(fn).parameters.values()
    names = [p.name for p in parameters
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return names, any(p.kind is p.VAR_KEYWORD for p in parameters)


def register_model(roles: tuple[str, ...], *, name: str | None = None,
                   forwards_to: Callable[..., Any] | None = None,
                   fixed: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Register a constructor (a function or a class) under `name` (default: its own name).

    A constructor taking `**kwargs` that it passes on to an architecture class names that
    class as `forwards_to`, and the class's arguments it sets itself as `fixed`, so that the
    options a config may set are known and anything else is refused."""

    def decorate(fn: F) -> F:
        key = name or fn.__name__
        names, var_keyword = _keywords(fn)
        if var_keyword and forwards_to is not None:
            names += [n for n in _keywords(forwards_to)[0] if n not in names and n not in fixed]
        entry = ModelEntry(key, fn, tuple(roles),
                           options=tuple(n for n in names if n not in DATA_ARGUMENTS),
                           data=tuple(n for n in DATA_ARGUMENTS if n in names))
        existing = _MODELS.get(key)
        if existing is not None and existing.builder is not fn:
            raise ValueError(f"model {key!r} is registered twice ({existing.builder.__module__} "
                             f"and {fn.__module__})")
        _MODELS[key] = entry
        return fn

    return decorate


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    import_package_modules(__package__, Path(__file__).parent, NOT_MODEL_MODULES)


def list_models(role: str | None = None) -> list[str]:
    """Registered model names, sorted; only those serving `role` when given."""
    _discover()
    return sorted(n for n, e in _MODELS.items() if role is None or role in e.roles)


def model_entry(name: str) -> ModelEntry:
    _discover()
    try:
        return _MODELS[name]
    except KeyError:
        raise UnknownNameError(f"Unknown model {name!r}. Known models: "
                               f"{', '.join(list_models())}.") from None


def model_kwargs(name: str) -> list[str]:
    """The keyword arguments a config may set for `name` (the data supplies the rest)."""
    return list(model_entry(name).options)


def check_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    unknown = sorted(set(kwargs) - set(model_kwargs(name)))
    if unknown:
        raise ConfigError(f"Model {name!r} has no arguments {unknown}; valid: "
                          f"{model_kwargs(name)}.")


def check_model(name: str, role: str, kwargs: dict[str, Any]) -> None:
    """Refuse an unknown model, a model for another role, or unknown keyword arguments."""
    entry = model_entry(name)
    if role not in entry.roles:
        raise ConfigError(f"Model {name!r} serves {entry.roles}, not {role!r}. Models for "
                          f"{role}: {', '.join(list_models(role))}.")
    check_kwargs(name, kwargs)


def create_model(name: str, *, in_channels: int, num_classes: int,
                 weights: WeightsSpec | str | os.PathLike | None = None,
                 image_size: int | None = None, **kwargs: Any) -> nn.Module:
    """Build the registered model `name` for the data's band and class counts.

    `image_size` goes only to the models that need it (the generative ones); `weights` (a
    `WeightsSpec`, or the path of a weights file or its manifest) is loaded with
    `geovision.models.weights.load_weights`, adapting the first convolution to `in_channels`
    and dropping a classifier of another class count."""
    entry = model_entry(name)
    check_kwargs(name, kwargs)
    facts = {"in_channels": in_channels, "num_classes": num_classes, "image_size": image_size}
    wanted = {key: facts[key] for key in entry.data}
    if "image_size" in wanted and image_size is None:
        raise ConfigError(f"Model {name!r} needs the image size; pass image_size.")
    model = entry.builder(**wanted, **kwargs)
    if weights is not None:
        from geovision.models.weights import load_weights

        load_weights(model, weights)
    return model
