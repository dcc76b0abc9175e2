from . import patterns
from .block_adapter import BlockAdapter
from .registry import adapters_for, adapters_for_class, supported_pipelines

__all__ = ["BlockAdapter", "adapters_for", "adapters_for_class", "patterns", "supported_pipelines"]
