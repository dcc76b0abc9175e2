"""Image grids a person can look at: one row per label (or prompt), small images scaled up without blurring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "MIN_CELL", "GUTTER", "to_uint8", "save_grid", "IMAGE_SUFFIXES", "load_image"
]

MIN_CELL = 96  # pixels: a 16x16 digit is scaled x6 so it can be seen
GUTTER = 6


def to_uint8(images: np.ndarray) -> np.ndarray:
    """(N, H, W[, C]) floats in [0, 1] -> (N, H, W, 3) uint8."""
    images = np.clip(np.asarray(images, np.float32), 0, 1)
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return (images * 255).round().astype(np.uint8)


def save_grid(images: np.ndarray, path: Path, ncols: int, row_labels: list[str] | None = None) -> Path:
    """Save `images` as a grid with `ncols` columns, each row optionally labelled on its left."""
    cells = to_uint8(images)
    n, h, w, _ = cells.shape
    scale = max(1, MIN_CELL // max(h, w))
    h, w = h * scale, w * scale
    nrows = -(-n // ncols)
    margin = 56 if row_labels else 0
    # A white gutter between cells, so neighbouring images never read as one.
    grid = Image.new("RGB", (margin + ncols * (w + GUTTER), nrows * (h + GUTTER)), "white")
    draw = ImageDraw.Draw(grid)
    for i, cell in enumerate(cells):
        tile = Image.fromarray(cell).resize((w, h), Image.NEAREST)
        grid.paste(tile, (margin + (i % ncols) * (w + GUTTER), (i // ncols) * (h + GUTTER)))
    for row, label in enumerate(row_labels or []):
        draw.text((4, row * (h + GUTTER) + h // 2 - 6), label, fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".npy")


def load_image(path: Path) -> np.ndarray:
    """An image file as floats in [0, 1]: ``(H, W, C)``, or ``(F, H, W, C)`` for an animated GIF/WebP (video frames).

    ``.npy`` arrays are returned as stored (expected already in [0, 1]; uint8 arrays are scaled).
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        array = np.load(path)
        return array.astype(np.float32) / 255 if array.dtype == np.uint8 else array.astype(np.float32)
    from PIL import ImageSequence

    with Image.open(path) as image:
        frames = [np.asarray(frame.convert("RGB"), np.float32) / 255 for frame in ImageSequence.Iterator(image)]
    return frames[0] if len(frames) == 1 else np.stack(frames)
