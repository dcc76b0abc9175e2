"""Adapters for transformers whose layout fits no plain list of blocks, each kept beside the one family it serves."""

from .latte import PairedLatteAdapter
from .motif_video import DecoderTailAdapter

__all__ = ["DecoderTailAdapter", "PairedLatteAdapter"]
