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

from geovision.errors import ConfigError


class ModuleReuseError(ConfigError):
    """A module runs more than once in one forward pass."""


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


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule `name` (as in `named_modules()`), or an error listing nearby names."""
    modules = dict(model.named_modules())
    if name in modules and name:
        return modules[name]
    convs = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
    raise ConfigError(f"the model has no layer {name!r}; its convolution layers are "
                      f"{', '.join(convs[-8:]) or 'none'} (any name of named_modules() works).")


def last_conv_layer(model: nn.Module) -> str:
    """The name of the last Conv2d registered: Grad-CAM's default layer."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not names:
        raise ConfigError("the model has no Conv2d layer for Grad-CAM; pass layer=<name>.")
    return names[-1]
