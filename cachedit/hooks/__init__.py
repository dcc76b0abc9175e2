"""The hooks and engines of the core: `lifecycle` drives an engine through calls and steps, `protocol` names the
interfaces, `policies` holds one module per cache policy."""

from .attach import attach_engine, detach_copied_hooks, detach_engine, has_cache_hooks
from .policies import build_engine, check_combination
from .span import SpanEngine, relative_l1

__all__ = ["SpanEngine", "attach_engine", "build_engine", "check_combination", "detach_copied_hooks",
           "detach_engine", "has_cache_hooks", "relative_l1"]
