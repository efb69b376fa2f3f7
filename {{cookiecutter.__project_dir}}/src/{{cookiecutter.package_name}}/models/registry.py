"""Name -> model constructor. Registering a model enrols it in every contract test."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

ModelFactory = Callable[..., nn.Module]

_REGISTRY: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: ``@register_model("name")`` over a class or function that returns logits.

    It is called with ``num_classes``, the input sizes of ``Preprocessor.model_inputs()``
    (``in_features`` for a table; ``in_channels``, ``height`` and ``width`` for images) and
    the options of ``TrainConfig.model_options()`` (``hidden_size``, ``depth``, ``dropout``).
    """

    def decorator(factory: ModelFactory) -> ModelFactory:
        if name in _REGISTRY:
            raise ValueError(f"a model named '{name}' is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorator


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def build_model(name: str, *, num_classes: int, **sizes_and_options) -> nn.Module:
    """Build a registered model; an unknown name is a ValueError listing the known ones."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; available: {available_models()}") from None
    return factory(num_classes=num_classes, **sizes_and_options)
