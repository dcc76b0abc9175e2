"""Offline replicas of the DiT pipeline families of diffusers: the real pipeline, transformer and VAE classes, built
from scaled-down configs with seeded random weights, and the call that drives each one without text encoders.

Each family is one `ZooEntry` recipe (tiny transformer: 10 cached blocks, so that the default DBCache F8B0 leaves a
middle, width 32-64; tiny VAE of the family's own class; the real scheduler class; the prompt embeddings that stand in
for its text encoders). They live by modality (`image`, `video`, `audio`, `other`) and become entries of
`cachedit.zoo.entries.MODELS` under their `name`; `parts` holds what several families share.
"""

from __future__ import annotations

from ..zoo_entry import ZooEntry
from . import audio, image, other, video

__all__ = ["ENTRIES"]

ENTRIES: list[ZooEntry] = [*image.ENTRIES, *video.ENTRIES, *audio.ENTRIES, *other.ENTRIES]
