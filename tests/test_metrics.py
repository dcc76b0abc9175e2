"""Fidelity metrics (torchmetrics) and the `python -m runners.metrics` command."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cachedit.harness.metrics import fidelity, optional_metric_status
from runners import metrics as metrics_cli

GREY = 51  # uint8: 0.2 after scaling, so black vs grey has MSE 0.04 and PSNR 10 * log10(1 / 0.04) dB
KNOWN_PSNR = 10 * math.log10(1 / 0.04)  # 13.9794...


def save(path: Path, value: int, size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)
    return path


def test_identical_inputs_give_infinite_psnr_and_zero_difference():
    images = np.random.default_rng(0).random((2, 16, 16, 3))
    result = fidelity(images, images.copy())
    assert result["psnr"] == math.inf and result["max_abs_diff"] == 0 and result["mse"] == 0
    assert result["ssim"] == pytest.approx(1.0)


def test_a_synthetic_pair_gives_the_known_values():
    result = fidelity(np.zeros((1, 16, 16, 3)), np.full((1, 16, 16, 3), 0.2))
    assert result["psnr"] == pytest.approx(KNOWN_PSNR)
    assert result["mse"] == pytest.approx(0.04) and result["max_abs_diff"] == pytest.approx(0.2)


def test_video_frames_are_compared_frame_by_frame():
    video = np.random.default_rng(1).random((2, 3, 16, 16, 3))  # (N, F, H, W, C)
    noisy = np.clip(video + 0.01, 0, 1)
    result = fidelity(video, noisy)
    assert result["frames"] == 6 and 35 < result["psnr"] < 45 and 0.9 < result["ssim"] < 1


def test_the_command_on_identical_files_prints_inf_and_zero(tmp_path, capsys):
    a, b = save(tmp_path / "a.png", GREY), save(tmp_path / "b.png", GREY)
    assert metrics_cli.main([str(a), str(b)]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[0] == "a.png" and row[1] == "inf" and float(row[4]) == 0  # psnr, then ssim, mse, max_abs_diff


def test_the_command_compares_directories_pair_by_pair(tmp_path, capsys):
    save(tmp_path / "ref" / "f0.png", 0), save(tmp_path / "test" / "f0.png", GREY)
    save(tmp_path / "ref" / "f1.png", 0), save(tmp_path / "test" / "f1.png", 0)
    save(tmp_path / "ref" / "only_here.png", 0)
    out = tmp_path / "m.json"
    assert metrics_cli.main([str(tmp_path / "ref"), str(tmp_path / "test"), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    by_name = {row["name"]: row for row in result["pairs"]}
    assert by_name["f0.png"]["psnr"] == pytest.approx(KNOWN_PSNR) and by_name["f1.png"]["max_abs_diff"] == 0
    assert result["overall"]["mse"] == pytest.approx(0.02)  # pooled over both frames
    assert result["only_in_a"] == ["only_here.png"]
    assert "only in reference (1): only_here.png" in capsys.readouterr().out


def test_the_command_refuses_a_file_against_a_directory(tmp_path, capsys):
    a = save(tmp_path / "a.png", 0)
    assert metrics_cli.main([str(a), str(tmp_path)]) == 2
    assert "file with a file or a directory with a directory" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["fid", "lpips", "clip"])
def test_optional_metrics_say_what_is_missing(tmp_path, capsys, name):
    if optional_metric_status(name) is None:
        pytest.skip(f"{name} weights are available here")
    a, b = save(tmp_path / "a.png", 0), save(tmp_path / "b.png", GREY)
    assert metrics_cli.main([str(a), str(b), "--extra", name]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith(f"{name}: "))
    assert "unavailable" in line and ("needs" in line)


def test_fidelity_streams_over_frames_and_matches_the_whole_batch(monkeypatch):
    """SSIM needs ~450x its input: the frames go through it a chunk at a time, with the all-at-once numbers."""
    import torch
    from torchmetrics.functional import peak_signal_noise_ratio
    from torchmetrics.functional.image import structural_similarity_index_measure as whole_ssim

    from cachedit.harness import metrics

    rng = np.random.default_rng(0)
    reference = rng.random((2, 5, 24, 20, 3))  # a video batch: 10 frames
    test = np.clip(reference + rng.normal(0, 0.02, reference.shape), 0, 1)
    batches = []
    real = metrics._ssim_per_frame
    monkeypatch.setattr(metrics, "_ssim_per_frame", lambda r, o, d: batches.append(len(r)) or real(r, o, d))
    monkeypatch.setattr(metrics, "FRAME_CHUNK_VALUES", 3 * 24 * 20 * 3)  # three frames per chunk
    result = metrics.fidelity(reference, test)
    assert batches == [3, 3, 3, 1] and result["frames"] == 10
    ref = torch.from_numpy(reference.reshape(-1, 24, 20, 3)).permute(0, 3, 1, 2)
    out = torch.from_numpy(test.reshape(-1, 24, 20, 3)).permute(0, 3, 1, 2)
    assert result["ssim"] == pytest.approx(float(whole_ssim(out, ref, data_range=1.0, kernel_size=11)), rel=1e-12)
    # torchmetrics takes its log in float32; the streamed sum is float64 throughout
    assert result["psnr"] == pytest.approx(float(peak_signal_noise_ratio(out, ref, data_range=1.0)), rel=1e-6)
    assert result["max_abs_diff"] == float((ref - out).abs().max())
