"""Architectures, registry and checkpoint loading. Importing this package does not import torch."""

from .registry import ModelConfig, create_model, get_model_config, list_models, register_model

__all__ = ["ModelConfig", "create_model", "get_model_config", "list_models", "register_model"]
