"""Name -> model constructor. Registering a model enrols it in every contract test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

ModelFactory = Callable[..., nn.Module]

_REGISTRY: dict[str, ModelFactory] = {}
_RECIPES: dict[str, dict[str, Any]] = {}
_FROZEN: dict[str, tuple[str, ...]] = {}
RECIPE_SETTINGS = ("learning_rate", "weight_decay", "batch_size")


@dataclass(frozen=True)
class Pretrained:
    """What a pretrained model brings with it, read from its folder (or the hub) by the loader
    its registration names (``register_model(..., pretrained=(prefix, loader))``):

    ``model_options``
        added to the options the model is built with: its architecture (a backbone's config as a
        JSON string), so the checkpoint rebuilds it without the folder.
    ``preprocessing``
        the preprocessing it needs, as keyword options of the task's ``Preprocessor`` (a text
        model's tokenizer and padding id; an image model's input size, channels, mean and std),
        used instead of what the task would fit; it travels in the checkpoint like any fitted state.
    ``weights``
        its weights by the built model's parameter names (``backbone.<name>``): every one of the
        backbone; the head the task adds is trained from its initialisation.
    """

    model_options: dict[str, Any]
    preprocessing: dict[str, Any]
    weights: dict[str, torch.Tensor]


PretrainedLoader = Callable[[str], Pretrained]
_PRETRAINED: dict[str, tuple[str, PretrainedLoader]] = {}


def register_model(
    name: str,
    *,
    frozen: tuple[str, ...] = (),
    pretrained: tuple[str, PretrainedLoader] | None = None,
    **recipe: Any,
) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: ``@register_model("name")`` over a class or function that returns logits.

    ``recipe`` holds the training settings the model needs to learn briskly where the task's
    defaults do not suit it (``@register_model("transformer", learning_rate=3e-3)``):
    ``TrainConfig`` takes them where its option is not given (``train --model transformer``),
    and the test battery's short training runs use them, so a correct model is not failed for
    wanting another learning rate.

    It is called with ``num_classes``, the input sizes of ``Preprocessor.model_inputs()``
    (``in_features`` for a table; ``in_channels``, ``height`` and ``width`` for images;
    ``vocab_size``, ``max_length`` and ``pad_id`` for texts) and
    the options of ``TrainConfig.model_options()`` (``hidden_size``, ``depth``, ``dropout``).

    ``frozen`` names the parameters the model leaves untrained on purpose (``requires_grad=False``),
    by the start of their names (``frozen=("backbone.",)``): the battery checks that they get no
    gradient and do not move, and calls any other parameter that does not train a mistake.

    ``pretrained=(prefix, loader)`` makes the model one that starts from a pretrained backbone
    (``train --pretrained NAME_OR_PATH``): ``loader(name_or_path)`` returns the ``Pretrained`` it
    brings, and ``prefix`` starts the names of the backbone's parameters (``"backbone."``), those
    ``--freeze-backbone`` freezes and ``--backbone-learning-rate`` trains more gently than the head.
    Without ``--pretrained`` such a model is built from its options and trained from scratch.
    """

    unknown = sorted(set(recipe) - set(RECIPE_SETTINGS))
    if unknown:
        raise ValueError(f"model '{name}': unknown recipe setting(s) {unknown}; known: {list(RECIPE_SETTINGS)}")

    def decorator(factory: ModelFactory) -> ModelFactory:
        if name in _REGISTRY:
            raise ValueError(f"a model named '{name}' is already registered")
        _REGISTRY[name] = factory
        _RECIPES[name] = dict(recipe)
        _FROZEN[name] = tuple(frozen)
        if pretrained is not None:
            _PRETRAINED[name] = pretrained
        return factory

    return decorator


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def model_recipe(name: str) -> dict[str, Any]:
    """The training settings a registered model declared with its registration (often none)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model '{name}'; available: {available_models()}")
    return dict(_RECIPES[name])


def frozen_parameters(name: str) -> tuple[str, ...]:
    """The starts of the names of the parameters a registered model declared frozen (often none)."""
    model_recipe(name)  # an unknown name is a ValueError
    return _FROZEN[name]


def pretrained_models() -> list[str]:
    """The registered models that can start from a pretrained backbone (``--pretrained``)."""
    return sorted(_PRETRAINED)


def backbone_prefix(name: str) -> str | None:
    """The start of the names of the pretrained backbone's parameters, or None where the model has none."""
    model_recipe(name)  # an unknown name is a ValueError
    return _PRETRAINED[name][0] if name in _PRETRAINED else None


def takes_no_pretrained(name: str) -> str | None:
    """Why model ``name`` cannot start from a pretrained model, or None where it can."""
    if backbone_prefix(name) is not None:
        return None
    return f"model '{name}' does not start from a pretrained model; the models that do: {pretrained_models()}"


def load_pretrained(name: str, name_or_path: str) -> Pretrained:
    """What the pretrained model ``name_or_path`` brings, read by the loader ``name`` registered;
    ValueError where the model takes none or the loader cannot read it."""
    problem = takes_no_pretrained(name)
    if problem:
        raise ValueError(problem)
    return _PRETRAINED[name][1](name_or_path)


def load_pretrained_weights(model: nn.Module, name: str, pretrained: Pretrained) -> None:
    """Copy the pretrained weights into ``model`` (built with ``pretrained.model_options``); ValueError
    where a weight has no parameter to go to, or a backbone parameter is left without its weight."""
    prefix = backbone_prefix(name) or ""
    missing, unexpected = model.load_state_dict(pretrained.weights, strict=False)
    untrained = [key for key in missing if key.startswith(prefix)]
    if unexpected or untrained:
        raise ValueError(
            f"the pretrained weights do not fit model '{name}': "
            f"{len(unexpected)} weight(s) with no parameter {unexpected[:3]}, "
            f"{len(untrained)} backbone parameter(s) without a weight {untrained[:3]}"
        )


def build_model(name: str, *, num_classes: int, **sizes_and_options) -> nn.Module:
    """Build a registered model; an unknown name is a ValueError listing the known ones."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; available: {available_models()}") from None
    return factory(num_classes=num_classes, **sizes_and_options)


def build_for(name: str, preprocessor: Any, **options: Any) -> nn.Module:
    """Build a registered model sized for a fitted preprocessor: as many outputs as its classes,
    the input sizes of its ``model_inputs()``; ``options`` add to them or override them."""
    sizes = {"num_classes": len(preprocessor.classes), **preprocessor.model_inputs()}
    return build_model(name, **{**sizes, **options})


def move_inputs(model: nn.Module, inputs: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``inputs`` on ``device``; floating-point inputs in the type of the model's weights (see
    ``TrainConfig.precision``), token ids and other integers as they are."""
    if inputs.is_floating_point():
        return inputs.to(device, dtype=next(model.parameters()).dtype)
    return inputs.to(device)
