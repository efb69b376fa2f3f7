"""Model definitions and the registry. Import a module here to register its models."""

from . import mlp, resmlp  # noqa: F401  (registers the models)
from .registry import available_models, build_model, register_model

__all__ = ["available_models", "build_model", "register_model"]
