"""Weight initialisation schemes, applied to a built model from outside its classes.

- "kaiming" (torchvision's ResNet/VGG style): convs kaiming-normal, fan_out, for ReLU; linear
  layers normal(0, 0.01); zero biases; norms weight 1, bias 0.
- "trunc_normal" (timm's ConvNeXt/ViT style): convs and linear layers truncated normal with
  std 0.02, zero biases.
- "xavier": xavier-uniform convs and linear layers; "orthogonal": orthogonal ones.

`zero_init_last` zeroes the last norm of every residual block (each block's own
`zero_init_last`), so each starts as its shortcut (Goyal et al., 2017). With `seed` the result
depends on nothing else (a private generator); without, on torch's global one. Parameters that
`weights.load_weights` filled are never touched.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from geovision.errors import ConfigError
from geovision.models.weights import loaded_parameters

CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)
NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)
Init = Callable[[torch.Tensor, torch.Generator | None], object]

SCHEMES: dict[str, tuple[Init, Init]] = {  # (conv weights, linear weights)
    "kaiming": (
        lambda w, g: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu",
                                             generator=g),
        lambda w, g: nn.init.normal_(w, 0.0, 0.01, generator=g)),
    "trunc_normal": (
        lambda w, g: nn.init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04, generator=g),
        lambda w, g: nn.init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04, generator=g)),
    "xavier": (lambda w, g: nn.init.xavier_uniform_(w, generator=g),
               lambda w, g: nn.init.xavier_uniform_(w, generator=g)),
    "orthogonal": (lambda w, g: nn.init.orthogonal_(w, generator=g),
                   lambda w, g: nn.init.orthogonal_(w, generator=g)),
}


def init_model(model: nn.Module, scheme: str = "kaiming", *, zero_init_last: bool = False,
               seed: int | None = None) -> nn.Module:
    """Initialise `model` in place with `scheme` (see the module docstring); returns it."""
    if scheme not in SCHEMES:
        raise ConfigError(f"Unknown init scheme {scheme!r}; known: {', '.join(SCHEMES)}.")
    conv_init, linear_init = SCHEMES[scheme]
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    loaded = loaded_parameters(model)

    def free(name: str) -> bool:
        return name not in loaded

    with torch.no_grad():
        for prefix, module in model.named_modules():
            base = f"{prefix}." if prefix else ""
            weight = getattr(module, "weight", None)
            bias = getattr(module, "bias", None)
            if isinstance(module, (*CONV, nn.Linear)):
                if isinstance(weight, torch.Tensor) and free(base + "weight"):
                    (conv_init if isinstance(module, CONV) else linear_init)(weight, generator)
                if isinstance(bias, torch.Tensor) and free(base + "bias"):
                    nn.init.zeros_(bias)
            elif isinstance(module, NORM):
                if isinstance(weight, torch.Tensor) and free(base + "weight"):
                    nn.init.ones_(weight)
                if isinstance(bias, torch.Tensor) and free(base + "bias"):
                    nn.init.zeros_(bias)
        if zero_init_last:
            for prefix, module in model.named_modules():
                if hasattr(module, "zero_init_last") and not any(
                        f"{prefix}.{n}" in loaded for n, _ in module.named_parameters()):
                    module.zero_init_last()
    return model
