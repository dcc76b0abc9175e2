"""Fidelity of a cached output against the uncached one: images or video frames as float arrays in [0, 1].

The metrics come from **torchmetrics** (Lightning AI), chosen over scikit-image because:

- it installs next to the pinned ``torch==2.13.0`` without touching it (a pure-Python wheel whose only other
  need is ``lightning-utilities``), while scikit-image brings scipy/networkx/imageio/tifffile for four numbers;
- it works on torch tensors on any device, so a GPU video need not be copied to the host frame by frame;
- the same package, with the same call style, holds the optional perceptual metrics (FID, LPIPS, CLIP score),
  so there is one library to pin and one convention (``data_range=1.0``, NCHW) for every number we report.

It costs about 2 s of import time, so it is imported inside the functions, not when ``cachedit`` is imported.

Always available: PSNR (dB, ``inf`` for identical inputs), SSIM (Gaussian window, 11 px or the largest odd size
that fits), MSE, max and mean absolute difference. FID, LPIPS and CLIP score need network weights; they are
computed only when those weights are already on this machine (:func:`optional_metric_status` says what is missing).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

__all__ = [
    "OPTIONAL_METRICS", "FIDELITY_COLUMNS", "MetricUnavailableError", "FRAME_CHUNK_VALUES", "as_frames", "psnr",
    "ssim", "fidelity", "optional_metric_status", "optional_metric", "compare_paths"
]

OPTIONAL_METRICS = ("fid", "lpips", "clip")
# The fidelity metrics every run reports (`fidelity`), in table order, each with its value for identical outputs: the
# sweep's tables and the uncached row read them from here, so a new metric is added here and in `_streamed` only.
FIDELITY_COLUMNS = {"psnr": float("inf"), "ssim": 1.0, "mse": 0.0, "max_abs_diff": 0.0}
_CLIP_MODEL = "openai/clip-vit-base-patch16"
_FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"  # what torch-fidelity downloads into the torch hub cache
_LPIPS_WEIGHTS = "alexnet-owt-7be5be79.pth"  # the torchvision backbone of torchmetrics' LPIPS (net_type="alex")


class MetricUnavailableError(RuntimeError):
    """An optional metric whose package or weights are not on this machine."""


FRAME_CHUNK_VALUES = 2**22  # float64 values per chunk of frames: SSIM's intermediates stay near 1 GB however long the video


def _frames_array(images: np.ndarray) -> np.ndarray:
    """``(H, W[, C])``, ``(N, H, W, C)`` images or ``(N, F, H, W, C)`` videos -> an ``(B, H, W, C)`` array view."""
    array = np.asarray(images)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim == 3:
        array = array[None]
    if array.ndim == 5:  # video: every frame counts as one image
        array = array.reshape(-1, *array.shape[-3:])
    if array.ndim != 4:
        raise ValueError(f"Expected images (N, H, W, C) or video (N, F, H, W, C), got shape {np.shape(images)}.")
    return array


def as_frames(images: np.ndarray):
    """``(H, W[, C])``, ``(N, H, W, C)`` images or ``(N, F, H, W, C)`` videos -> a float64 ``(B, C, H, W)`` tensor."""
    import torch

    array = _frames_array(images).astype(np.float64)
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def _chunks(reference: np.ndarray, test: np.ndarray):
    """Pairs of float64 ``(b, C, H, W)`` tensors, a few frames at a time (SSIM needs ~450x its input in memory)."""
    ref, out = _frames_array(reference), _frames_array(test)
    step = max(1, FRAME_CHUNK_VALUES // max(1, int(np.prod(ref.shape[1:]))))
    for start in range(0, len(ref), step):
        yield as_frames(ref[start : start + step]), as_frames(out[start : start + step])


def _ssim_kernel(height: int, width: int) -> int:
    """11 px (the SSIM paper's window) unless the image is smaller; always odd."""
    size = min(11, height, width)
    return size if size % 2 else size - 1


def _ssim_per_frame(ref, out, data_range: float):
    from torchmetrics.functional.image import structural_similarity_index_measure

    kernel = _ssim_kernel(*ref.shape[-2:])
    if kernel < 3:
        return None  # a 1-2 px image has no structure to compare
    return structural_similarity_index_measure(out, ref, data_range=data_range, kernel_size=kernel, reduction="none")


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels; ``inf`` for identical inputs."""
    return _streamed(reference, test, data_range)["psnr"]


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity, averaged over images (or frames); 1.0 for identical inputs."""
    return _streamed(reference, test, data_range)["ssim"]


def fidelity(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM, MSE, max and mean absolute difference of `test` against `reference` (same shape)."""
    return _streamed(reference, test, 1.0)


def _streamed(reference: np.ndarray, test: np.ndarray, data_range: float) -> dict[str, float]:
    """The metrics a chunk of frames at a time (:data:`FRAME_CHUNK_VALUES`): memory stays bounded for long videos."""
    if np.shape(reference) != np.shape(test):
        raise ValueError(f"Cannot compare outputs of shapes {np.shape(reference)} and {np.shape(test)}.")
    squared = absolute = maximum = 0.0
    count = frames = 0
    ssims = []
    for ref, out in _chunks(reference, test):
        diff = (ref - out).abs()
        squared, absolute = squared + float((diff**2).sum()), absolute + float(diff.sum())
        maximum, count, frames = max(maximum, float(diff.max())), count + diff.numel(), frames + len(ref)
        ssims.append(_ssim_per_frame(ref, out, data_range))
    psnr_db = float("inf") if squared == 0 else float(10 * np.log10(data_range**2 * count / squared))
    no_structure = any(v is None for v in ssims)
    return {
        "psnr": psnr_db,
        "ssim": float("nan") if no_structure else float(np.concatenate([v.numpy() for v in ssims]).mean()),
        "mse": squared / count,
        "max_abs_diff": maximum,
        "mean_abs_diff": absolute / count,
        "frames": frames,
    }


################################################################################
#                 Optional metrics: only with weights on this machine            #
################################################################################


def _hub_checkpoint(name: str) -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _local_hf_snapshot(repo_id: str) -> str | None:
    try:
        import huggingface_hub

        return huggingface_hub.snapshot_download(repo_id, local_files_only=True)
    except Exception:
        return None


def optional_metric_status(name: str) -> str | None:
    """``None`` when `name` (fid | lpips | clip) can be computed offline here, else what is missing and how to fix it."""
    if name == "fid":
        if importlib.util.find_spec("torch_fidelity") is None:
            return "FID needs the `torch-fidelity` package (pip install torch-fidelity --no-deps)."
        if not _hub_checkpoint(_FID_WEIGHTS).is_file():
            return f"FID needs the Inception weights `{_hub_checkpoint(_FID_WEIGHTS)}` (not downloaded here)."
        return None
    if name == "lpips":
        if importlib.util.find_spec("torchvision") is None:
            return "LPIPS needs `torchvision` built for this torch (torch==2.13.0) and its AlexNet weights."
        if not _hub_checkpoint(_LPIPS_WEIGHTS).is_file():
            return f"LPIPS needs the AlexNet weights `{_hub_checkpoint(_LPIPS_WEIGHTS)}` (not downloaded here)."
        return None
    if name == "clip":
        if _local_hf_snapshot(_CLIP_MODEL) is None:
            return f"CLIP score needs `{_CLIP_MODEL}` in the local Hugging Face cache (not downloaded here)."
        return None
    raise ValueError(f"Unknown optional metric `{name}`; known: {', '.join(OPTIONAL_METRICS)}.")


def optional_metric(name: str, reference: np.ndarray, test: np.ndarray, prompt: str | None = None) -> float:
    """FID (`test` set vs `reference` set), LPIPS (pairwise mean) or CLIP score (`test` vs `prompt`).

    Raises :class:`MetricUnavailableError` with the reason when the package or weights are missing. FID on a
    handful of images is dominated by estimation noise: use it on hundreds of samples.
    """
    missing = optional_metric_status(name)
    if missing is not None:
        raise MetricUnavailableError(missing)
    ref, out = as_frames(reference).float(), as_frames(test).float()
    if ref.shape[1] == 1:
        ref, out = ref.repeat(1, 3, 1, 1), out.repeat(1, 3, 1, 1)
    if name == "fid":
        from torchmetrics.image.fid import FrechetInceptionDistance

        metric = FrechetInceptionDistance(normalize=True)
        metric.update(ref, real=True)
        metric.update(out, real=False)
        return float(metric.compute())
    if name == "lpips":
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        return float(LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)(out, ref))
    if prompt is None:
        raise ValueError("CLIP score compares images with a prompt: pass `prompt`.")
    from torchmetrics.multimodal.clip_score import CLIPScore

    metric = CLIPScore(model_name_or_path=_local_hf_snapshot(_CLIP_MODEL))
    return float(metric((out * 255).round().byte(), [prompt] * len(out)))


################################################################################
#                        Files and directories (runners.metrics)                 #
################################################################################


def _image_files(root: Path) -> dict[str, Path]:
    from .images import IMAGE_SUFFIXES

    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES}


def compare_paths(a: Path, b: Path, extra: tuple[str, ...] = (), prompt: str | None = None) -> dict:
    """Compare two image files, or two directories file by file (paired by relative path; e.g. video frames).

    Returns ``{"pairs": [{"name", **fidelity}], "overall": fidelity over all pairs, "only_in_a", "only_in_b",
    "optional": {metric: value or the reason it is unavailable}}``. ``overall`` pools every pixel when all pairs
    have one shape (a frame sequence), else it is the mean over pairs.
    """
    from .images import load_image

    a, b = Path(a), Path(b)
    if a.is_dir() != b.is_dir():
        raise ValueError(f"Compare a file with a file or a directory with a directory: got `{a}` and `{b}`.")
    if a.is_dir():
        files_a, files_b = _image_files(a), _image_files(b)
        names = sorted(set(files_a) & set(files_b))
        pairs = [(n, files_a[n], files_b[n]) for n in names]
        only_a, only_b = sorted(set(files_a) - set(files_b)), sorted(set(files_b) - set(files_a))
    else:
        pairs, only_a, only_b = [(a.name, a, b)], [], []
    if not pairs:
        raise ValueError(f"No image files with the same relative path under `{a}` and `{b}`.")
    refs = [load_image(p) for _, p, _ in pairs]
    tests = [load_image(q) for _, _, q in pairs]
    rows = [{"name": name, **fidelity(r, t)} for (name, _, _), r, t in zip(pairs, refs, tests)]
    if len({r.shape for r in refs}) == 1:
        overall = fidelity(np.stack(refs), np.stack(tests))
    else:
        overall = {k: float(np.mean([row[k] for row in rows])) for k in rows[0] if k != "name"}
    optional = {}
    for name in extra:
        try:
            optional[name] = optional_metric(name, np.stack(refs), np.stack(tests), prompt)
        except (MetricUnavailableError, ValueError) as error:
            optional[name] = f"unavailable: {error}"
    return {"pairs": rows, "overall": overall, "only_in_a": only_a, "only_in_b": only_b, "optional": optional}
