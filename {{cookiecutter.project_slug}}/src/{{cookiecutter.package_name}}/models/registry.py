"""Name -> model constructor. Registering a model enrols it in every contract test."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

ModelFactory = Callable[..., nn.Module]

_REGISTRY: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: ``@register_model("mlp")`` over a class or function taking
    ``in_features`` and ``num_classes`` (and keyword options) and returning logits."""

    def decorator(factory: ModelFactory) -> ModelFactory:
        if name in _REGISTRY:
            raise ValueError(f"a model named '{name}' is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorator


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def build_model(name: str, in_features: int, num_classes: int, **options) -> nn.Module:
    """Build a registered model; an unknown name is a ValueError listing the known ones."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; available: {available_models()}") from None
    return factory(in_features=in_features, num_classes=num_classes, **options)
