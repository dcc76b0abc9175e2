"""Image grids a person can look at: one row per label (or prompt), small images scaled up without blurring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

MIN_CELL = 96  # pixels: a 16x16 digit is scaled x6 so it can be seen


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
    margin = 40 if row_labels else 0
    grid = Image.new("RGB", (margin + ncols * w, nrows * h), "white")
    draw = ImageDraw.Draw(grid)
    for i, cell in enumerate(cells):
        tile = Image.fromarray(cell).resize((w, h), Image.NEAREST)
        grid.paste(tile, (margin + (i % ncols) * w, (i // ncols) * h))
    for row, label in enumerate(row_labels or []):
        draw.text((4, row * h + h // 2 - 6), label, fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path
