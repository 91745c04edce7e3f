"""Putting a model in the state attribution methods assume, or refusing it with a reason.

Eval mode (batch norm with batch statistics breaks IG's completeness: the expanded batch
changes every image's output), float32 (a float64 input into a float32 model fails, half
precision loses the gradients' small values), no in-place activations (backward hooks on an
in-place ReLU see the wrong tensors), and each module called at most once per forward: hooks
on a module that runs twice (one `self.relu` shared by a block) mix two places of the network,
so Guided Backprop and Grad-CAM would explain neither.
"""

from __future__ import annotations

import copy
from collections import Counter

import torch
from torch import nn

from geovision.errors import ConfigError, UnknownNameError


class ModuleReuseError(ConfigError):
    """A module runs more than once in one forward pass."""


class NotApplicableError(ConfigError):
    """A method that cannot apply to this model (Guided Backprop without ReLU modules)."""


def calls_per_module(model: nn.Module, example: torch.Tensor) -> Counter[str]:
    """How often each named module runs in one forward pass of `example`."""
    counts: Counter[str] = Counter()
    handles = []
    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(
                lambda _m, _i, _o, name=name: counts.update([name])))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return counts


def prepare(model: nn.Module, example: torch.Tensor, copy_model: bool = True) -> nn.Module:
    """A copy of `model` (the caller's is left as it was) in eval mode, float32, with in-place
    activations turned off; raises ModuleReuseError naming a module that runs twice on
    `example` (one image is enough)."""
    if copy_model:
        model = copy.deepcopy(model)
    model = model.eval().float()
    for module in model.modules():
        if getattr(module, "inplace", False) is True:
            module.inplace = False
    reused = {name: n for name, n in calls_per_module(model, example[:1].float()).items()
              if n > 1}
    if reused:
        name, n = next(iter(reused.items()))
        others = f" (and {len(reused) - 1} more)" if len(reused) > 1 else ""
        raise ModuleReuseError(
            f"module {name!r} ({type(model.get_submodule(name)).__name__}) runs {n} times in "
            f"one forward pass{others}: hooks on it would mix those places. Give each call its "
            "own module instance (e.g. act1 and act2 rather than one shared relu).")
    for parameter in model.parameters():
        parameter.requires_grad_(False)  # gradients flow to the input only
    return model


def layer_names(model: nn.Module) -> list[str]:
    """Every name a layer can be chosen by: all of `named_modules()` but the root, in
    registration order (e.g. `stem.conv`, `stages.2`, `stages.2.blocks.1.conv2`, `head.fc`)."""
    return [name for name, _ in model.named_modules() if name]


def describe_layers(model: nn.Module, wanted: str | None = None, limit: int = 12) -> str:
    """The valid layer names in a sentence: those closest to `wanted`, the top-level
    modules and the last spatial (Conv2d) layers, with the total count."""
    import difflib

    names = layer_names(model)
    top = [name for name, _ in model.named_children()]
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    parts = []
    if wanted:
        close = difflib.get_close_matches(wanted, names, n=6, cutoff=0.5)
        if close:
            parts.append(f"closest: {', '.join(close)}")
    parts.append(f"top-level: {', '.join(top[:limit]) or 'none'}")
    if convs:
        parts.append(f"last convolutions: {', '.join(convs[-6:])}")
    return (f"{'; '.join(parts)} ({len(names)} named modules in all; any name of "
            "model.named_modules() works)")


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule `name` (any name of `named_modules()`), or an UnknownNameError naming
    valid ones."""
    modules = dict(model.named_modules())
    if name and name in modules:
        return modules[name]
    raise UnknownNameError(f"the model has no layer {name!r}; valid layer names: "
                           f"{describe_layers(model, name)}.")


def last_conv_layer(model: nn.Module) -> str:
    """The name of the last Conv2d registered: Grad-CAM's default layer."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not names:
        raise ConfigError("the model has no Conv2d layer for Grad-CAM's default; pass "
                          f"layer=<name> of a layer with spatial output ({describe_layers(model)}"
                          ").")
    return names[-1]
