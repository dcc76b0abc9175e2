from .attach import attach_engine, detach_engine, has_cache_hooks
from .dbcache import DBCacheEngine, DBCacheState, relative_l1

__all__ = ["DBCacheEngine", "DBCacheState", "attach_engine", "detach_engine", "has_cache_hooks", "relative_l1"]
