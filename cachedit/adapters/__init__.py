from . import patterns
from .block_adapter import BlockAdapter
from .call_facts import CallFacts, KwargSays, call_facts_for
from .registry import adapters_for, adapters_for_class, supported_pipelines

__all__ = ["BlockAdapter", "CallFacts", "KwargSays", "adapters_for", "adapters_for_class", "call_facts_for", "patterns",
           "supported_pipelines"]
