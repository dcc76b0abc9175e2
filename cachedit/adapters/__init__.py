from . import patterns
from .block_adapter import BlockAdapter
from .registry import adapters_for, supported_pipelines

__all__ = ["BlockAdapter", "adapters_for", "patterns", "supported_pipelines"]
