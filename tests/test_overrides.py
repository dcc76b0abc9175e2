"""Every override form is checked against the schemas before anything runs (issue 15, part 1)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runners.overrides import selected_options, unknown_key_message

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("prefix", ["", "+", "++"])
def test_a_misspelt_key_is_refused_in_every_override_form(prefix):
    message = unknown_key_message(f"{prefix}cache.residual_diff_treshold=0.1")
    assert message is not None and "Did you mean `cache.residual_diff_threshold`?" in message


@pytest.mark.parametrize(
    ("override", "config_name", "expected"),
    [
        ("+cahce=fbcache", "generate", "Unknown config key `cahce`. Did you mean `cache`?"),
        ("+foo=1", "generate", "Unknown config key `foo`."),
        ("~sed", "generate", "Unknown config key `sed`. Did you mean `seed`?"),
        ("cache=fbcahce", "generate", "Unknown option `cache=fbcahce`. Did you mean `cache=fbcache`?"),
        ("cache=dbcache,fbcahce", "generate", "Did you mean `cache=fbcache`?"),
        ("+tune.objectve=psnr", "generate", "Did you mean `tune.objective`?"),
        ("+repeat=2", "bench", "Unknown config key `repeat`. Did you mean `repeats`?"),
        ("+budget=[5]", "calibrate", "Did you mean `budgets`?"),
        ("+iteration=10", "train_tiny", "Did you mean `iterations`?"),
    ],
)
def test_an_unknown_key_group_or_option_names_the_closest_one(override, config_name, expected):
    message = unknown_key_message(override, config_name)
    assert message is not None and expected in message


def test_a_misspelt_key_lists_the_keys_of_the_option_the_command_line_selects():
    argv = ["cache=forecast", "cache.intervl=4"]
    message = unknown_key_message(argv[1], selected=selected_options(argv))
    assert "Did you mean `cache.interval`? Allowed keys of `cache=forecast`: Bn, compute_last_step," in message
    assert "residual_diff_threshold" not in message  # DBCache's, not the forecast's
    fbcache = unknown_key_message("cache.Fm=2", selected=selected_options(["cache=fbcache"]))
    assert "Allowed keys of `cache=fbcache`:" in fbcache and "residual_diff_threshold" in fbcache  # through dbcache
    swept = ["cache=forecast,dbcache", "cache.intervl=4"]  # a sweep selects no one option: every schema's keys
    assert "Allowed keys under `cache`:" in unknown_key_message(swept[1], selected=selected_options(swept))
    # a key of another option is left to Hydra's schema of the composed option (a preset may select another)
    assert unknown_key_message("cache.max_cached_steps=3", selected=selected_options(["cache=forecast"])) is None


@pytest.mark.parametrize(
    "override",
    [
        "cache.residual_diff_threshold=0.1", "+cache.residual_diff_threshold=0.1", "++cache.Fn=2",
        "cache=dbcache,fbcache", "+sweep=threshold", "+experiment=tiny_dit_fast", "~preset", "seed=3",
        "model.replica.num_layers=4",  # the replica's free-form architecture keys
        "hydra.run.dir=out", "++hydra.job.chdir=false", "hydra/launcher=cachedit_joblib", "--multirun",
    ],
)
def test_valid_overrides_and_hydras_own_keys_pass(override):
    assert unknown_key_message(override) is None


def run(module: str, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", module, *overrides], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("module", "override", "expected"),
    [
        ("runners.generate", "+cache.residual_diff_treshold=0.1", "Did you mean `cache.residual_diff_threshold`?"),
        ("runners.generate", "+cahce=fbcache", "Did you mean `cache`?"),
        ("runners.bench", "+foo=1", "Unknown config key `foo`."),
    ],
)
def test_a_runner_exits_2_before_any_work(tmp_path, module, override, expected):
    result = run(module, override, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert not any(tmp_path.iterdir())  # nothing ran, nothing written
