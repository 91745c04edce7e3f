"""Layers, blocks, architectures, the model registry, weights and their ports.

`create_model(name, in_channels=..., num_classes=...)` builds any registered architecture;
`list_models()` names them. Importing this package imports no torch.
"""

from geovision.models.registry import (
    check_model,
    create_model,
    list_models,
    model_kwargs,
    register_model,
)

__all__ = ["check_model", "create_model", "list_models", "model_kwargs", "register_model"]
