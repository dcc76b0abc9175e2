"""The embedded model's dataset and task-quality metrics.

The data are scikit-learn's bundled handwritten digits (1,797 images of 8×8 pixels, values 0..16), so nothing is
downloaded. Images are upscaled bilinearly to 16×16 for the generator. Task quality is measured with a small
scikit-learn classifier trained on real digits: its accuracy on the requested class, and a Fréchet distance in its
hidden-layer feature space (the FID recipe with a digit classifier in place of Inception).

All image arguments are numpy float arrays in [0, 1] shaped `(N, 16, 16)` or `(N, 1, 16, 16)`.
"""

from __future__ import annotations

import platform
from functools import lru_cache

import numpy as np
import sklearn
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from .disk_once import kept_fit

RESOLUTION = 16
NUM_CLASSES = 10
SPLIT_SEED = 0
HELD_OUT_FRACTION = 0.2


@lru_cache(maxsize=1)
def _all_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as `(images (N, 16, 16) float32 in [0, 1], labels (N,) int64)`."""
    data = load_digits()
    small = torch.from_numpy(data.images.astype(np.float32) / 16.0)[:, None]
    # bilinear (not nearest) so the generator sees smooth strokes rather than 2×2 blocks
    big = F.interpolate(small, size=(RESOLUTION, RESOLUTION), mode="bilinear", align_corners=False)
    return big[:, 0].clamp(0, 1).numpy(), data.target.astype(np.int64)


@lru_cache(maxsize=1)
def _split_indices() -> tuple[np.ndarray, np.ndarray]:
    n = len(_all_digits()[1])
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_held = int(round(n * HELD_OUT_FRACTION))
    return np.sort(order[n_held:]), np.sort(order[:n_held])


def load_split(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    r"""
    Real digits of one fixed split.

    Args:
        split (`str`, defaults to `"train"`):
            `"train"` (80 %, what the generator and the classifier learn from), `"test"` (the held-out 20 %) or
            `"all"`. The split is seeded and never changes.

    Returns:
        `tuple[np.ndarray, np.ndarray]`: images `(N, 16, 16)` float32 in [0, 1] and labels `(N,)` int64.
    """
    images, labels = _all_digits()
    if split == "all":
        return images, labels
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    idx = _split_indices()[0 if split == "train" else 1]
    return images[idx], labels[idx]


def training_tensors(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """The split as training tensors: images `(N, 1, 16, 16)` in [-1, 1] and labels `(N,)` int64."""
    images, labels = load_split(split)
    return torch.from_numpy(images * 2.0 - 1.0)[:, None], torch.from_numpy(labels)


def _to_classifier_input(images: np.ndarray) -> np.ndarray:
    """(N, 16, 16) or (N, 1, 16, 16) in [0, 1] → (N, 64): 2×2 average pooling back to the native 8×8 grid."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3 or images.shape[1:] != (RESOLUTION, RESOLUTION):
        raise ValueError(f"expected images shaped (N, 16, 16) or (N, 1, 16, 16), got {images.shape}")
    pooled = images.reshape(len(images), 8, 2, 8, 2).mean(axis=(2, 4))
    return pooled.reshape(len(images), 64)


def _one_blas_thread():
    # one BLAS thread: the fit is then bit-reproducible (thread count changes float sums), and it takes ~2 s
    # instead of ~40 s when another process shares the cores
    return threadpool_limits(limits=1, user_api="blas")


@lru_cache(maxsize=1)
def classifier() -> MLPClassifier:
    """The reference classifier: an MLP (64 → 128 ReLU → 10) on the train split, seeded; fitted once per machine
    (~10 s) and kept on disk for later processes (`disk_once`)."""
    images, labels = load_split("train")
    inputs = _to_classifier_input(images)
    params = dict(hidden_layer_sizes=(128,), alpha=1e-3, max_iter=1000, random_state=0)

    def fit() -> MLPClassifier:
        with _one_blas_thread():
            return MLPClassifier(**params).fit(inputs, labels)
    key = (sklearn.__version__, np.__version__, platform.machine(), sorted(params.items()),
           inputs.tobytes(), labels.tobytes())
    return kept_fit("digits-classifier", key, fit)


def classify(images: np.ndarray) -> np.ndarray:
    """Predicted digit `(N,)` int64 for each image."""
    clf = classifier()
    with _one_blas_thread():
        return clf.predict(_to_classifier_input(images)).astype(np.int64)


def accuracy(images: np.ndarray, labels) -> float:
    """Share of images the classifier reads as their requested label."""
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    return float((classify(images) == labels).mean())


def features(images: np.ndarray) -> np.ndarray:
    """The classifier's hidden ReLU activations `(N, 128)`: the feature space of the Fréchet distance."""
    clf = classifier()
    with _one_blas_thread():
        return np.maximum(_to_classifier_input(images) @ clf.coefs_[0] + clf.intercepts_[0], 0.0)


def frechet_distance(images_a: np.ndarray, images_b: np.ndarray) -> float:
    r"""
    Fréchet distance between Gaussians fitted to the classifier features of two image sets.

    Why this feature space: like FID's Inception pool features, the hidden layer of a network trained to tell digits
    apart responds to stroke shape and class identity rather than to raw pixel noise, so it is sensitive to the
    shape drift that caching causes; at 128 dimensions a few hundred samples per set keep the covariance estimate
    usable. It is deterministic because the classifier is. Compare numbers only at equal set sizes (the estimate is
    biased upwards for small sets), and against `real_vs_real_frechet()` as the floor.

    Args:
        images_a (`np.ndarray`): first set, `(N, 16, 16)` or `(N, 1, 16, 16)` in [0, 1], N ≥ 2.
        images_b (`np.ndarray`): second set, same format.

    Returns:
        `float`: ‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½), ≥ 0.
    """
    fa, fb = features(images_a).astype(np.float64), features(images_b).astype(np.float64)
    if len(fa) < 2 or len(fb) < 2:
        raise ValueError("frechet_distance needs at least 2 images per set")
    with _one_blas_thread():
        cov_a, cov_b = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
        # Tr((Σa Σb)^½) = Σ √eig(Σa^½ Σb Σa^½): symmetric eigenproblems stay exact where dead ReLU units make the
        # covariances singular (scipy's sqrtm of the non-symmetric product warns and loses precision there)
        w, v = np.linalg.eigh(cov_a)
        sqrt_a = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
        trace_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a), 0.0, None)).sum()
    diff = fa.mean(0) - fb.mean(0)
    value = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_covmean
    return float(max(value, 0.0))


def real_vs_real_frechet(num_samples: int | None = None, seed: int = 0) -> float:
    r"""
    The Fréchet floor: the distance between two disjoint random sets of real digits (all 1,797, split once).

    Args:
        num_samples (`int`, *optional*):
            Size of the first set; the second is all the other digits. Defaults to half of them (two halves of
            ~900). Pass the number of generated samples to get the floor for `frechet_distance(generated,
            load_split("all")[0])` at the same set sizes.
        seed (`int`, defaults to `0`): seed of the random split.
    """
    images, _ = load_split("all")
    n = len(images) // 2 if num_samples is None else int(num_samples)
    if not 2 <= n <= len(images) - 2:
        raise ValueError(f"num_samples must be in 2..{len(images) - 2}, got {num_samples}")
    order = np.random.default_rng(seed).permutation(len(images))
    rest = order[n:] if num_samples is not None else order[n : 2 * n]
    return frechet_distance(images[order[:n]], images[rest])
