"""Architectures and the model registry."""

from geovision.models.registry import build_model, check_model, list_models

__all__ = ["build_model", "check_model", "list_models"]
