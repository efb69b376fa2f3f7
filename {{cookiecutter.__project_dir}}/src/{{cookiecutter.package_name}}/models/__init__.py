"""Model definitions and the registry. Import a module here to register its models."""

{% if cookiecutter.task == "tabular" -%}
from . import mlp, resmlp  # noqa: F401  (registers the models)
{%- elif cookiecutter.task == "image" -%}
from . import cnn, resnet, vision  # noqa: F401  (registers the models)
{%- elif cookiecutter.task == "text" -%}
from . import cnn, encoder, transformer  # noqa: F401  (registers the models)
{%- endif %}
from .registry import (
    Pretrained,
    available_models,
    backbone_prefix,
    build_for,
    build_model,
    frozen_parameters,
    load_pretrained,
    load_pretrained_weights,
    model_recipe,
    move_inputs,
    pretrained_models,
    register_model,
    takes_no_pretrained,
)

__all__ = [
    "Pretrained",
    "available_models",
    "backbone_prefix",
    "build_for",
    "build_model",
    "frozen_parameters",
    "load_pretrained",
    "load_pretrained_weights",
    "model_recipe",
    "move_inputs",
    "pretrained_models",
    "register_model",
    "takes_no_pretrained",
]
