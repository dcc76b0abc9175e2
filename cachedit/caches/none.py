"""No caching: the pipeline runs exactly as diffusers ships it (``cache=none``); it plans no stack."""

from __future__ import annotations

from dataclasses import dataclass

from ..config_types import check_types
from . import CacheConfig, register

__all__ = ["NoCacheConfig"]


@dataclass
class NoCacheConfig(CacheConfig):
    """Caching disabled: the pipeline runs exactly as diffusers ships it (``cache=none``)."""

    name: str = "none"

    def __post_init__(self) -> None:
        check_types(self)

    def check_block_count(self, num_blocks: int, where: str = "the transformer") -> None:
        pass

    def strify(self) -> str:
        return "NoCache"

    def series(self) -> str:
        return ""

    def setting(self) -> str:
        return ""


register(NoCacheConfig)  # no policy, no engine: `resolve_plan` attaches nothing
