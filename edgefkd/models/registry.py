"""Model registry (after timm): a name -> factory + per-model preprocessing config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..contract import PreprocessContract
from ..errors import InputError


@dataclass(frozen=True)
class ModelConfig:
    name: str
    factory: Callable[..., Any]
    contract: PreprocessContract
    embedding_size: int
    description: str = ""
    #: input sizes other than contract.input_size the architecture accepts ("any" = any >= 32)
    flexible_input: bool = False


_REGISTRY: dict[str, ModelConfig] = {}

ARCFACE_CONTRACT = PreprocessContract((112, 112), (127.5,) * 3, (127.5,) * 3, "rgb")
IMAGENET_CONTRACT = PreprocessContract(
    (112, 112), (123.675, 116.28, 103.53), (58.395, 57.12, 57.375), "rgb"
)


def register_model(
    name: str,
    *,
    contract: PreprocessContract,
    embedding_size: int,
    description: str = "",
    flexible_input: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a factory `f(**kwargs) -> nn.Module` under `name`."""

    def wrap(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelConfig(name, factory, contract, embedding_size, description, flexible_input)
        return factory

    return wrap


def _ensure_builtin() -> None:
    # Architectures register themselves on import; importing them needs torch, so this is
    # done on first use rather than when the CLI starts.
    from . import iresnet, mbf, mobilefacenet_foamliu  # noqa: F401


def list_models() -> list[ModelConfig]:
    _ensure_builtin()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_model_config(name: str) -> ModelConfig:
    _ensure_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise InputError(f"unknown architecture {name!r}; known: {known} (or use path/to/file.py:factory)") from None


def create_model(name: str, **kwargs: Any) -> Any:
    """Instantiate a registered architecture (randomly initialised, eval mode)."""
    module = get_model_config(name).factory(**kwargs)
    return module.eval()
