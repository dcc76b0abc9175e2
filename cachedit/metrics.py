"""Fidelity of a cached output against the uncached one (images as float arrays in [0, 1])."""

from __future__ import annotations

import numpy as np


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical inputs."""
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(test, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def fidelity(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    if reference.shape != test.shape:
        raise ValueError(f"Cannot compare outputs of shapes {reference.shape} and {test.shape}.")
    diff = np.abs(np.asarray(reference, np.float64) - np.asarray(test, np.float64))
    return {"psnr": psnr(reference, test), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}
