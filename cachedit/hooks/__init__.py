"""The generic machinery of the core's engines: `lifecycle` drives an engine through calls and steps, `protocol`
names the interfaces (and holds the glossary), `span` and `engine` are what techniques (`cachedit/caches/`) build on."""

from .attach import attach_engine, detach_copied_hooks, detach_engine, has_cache_hooks
from .span import SpanEngine, output_tensors, relative_l1

__all__ = ["SpanEngine", "attach_engine", "detach_copied_hooks", "detach_engine", "has_cache_hooks", "output_tensors",
           "relative_l1"]
