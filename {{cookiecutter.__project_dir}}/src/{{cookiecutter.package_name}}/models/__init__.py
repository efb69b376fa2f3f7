"""Model definitions and the registry. Import a module here to register its models."""

{% if cookiecutter.task == "tabular" -%}
from . import mlp, resmlp  # noqa: F401  (registers the models)
{%- elif cookiecutter.task == "image" -%}
from . import cnn, resnet  # noqa: F401  (registers the models)
{%- elif cookiecutter.task == "text" -%}
from . import cnn, transformer  # noqa: F401  (registers the models)
{%- endif %}
from .registry import (
    available_models,
    build_for,
    build_model,
    frozen_parameters,
    model_recipe,
    move_inputs,
    register_model,
)

__all__ = [
    "available_models",
    "build_for",
    "build_model",
    "frozen_parameters",
    "model_recipe",
    "move_inputs",
    "register_model",
]
