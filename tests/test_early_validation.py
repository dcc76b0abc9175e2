"""Values that can be checked before loading are: a clear error naming the key, before any weights or baseline."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from runners.conf_store import register_configs
from cachedit.zoo.model_config import ModelConfig
from cachedit.harness.pipelines import check_model

CONF = Path(__file__).resolve().parents[1] / "conf"


def run_config(*overrides: str):
    register_configs()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return OmegaConf.to_object(compose("generate", overrides=list(overrides)))


def test_an_unknown_device_is_refused_with_the_allowed_values():
    with pytest.raises(ValueError, match=r"`model.device` must be auto, cpu, mps, cuda\[:N\] or xpu\[:N\], got `tpu`"):
        run_config("model.device=tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_cuda_on_a_machine_without_it_fails_before_loading():
    with pytest.raises(ValueError, match="`model.device=cuda:1`: CUDA is not available"):
        check_model(ModelConfig(name="tiny_dit", source="embedded", device="cuda:1"))


def test_custom_compute_steps_beyond_the_step_count_fail_at_composition():
    with pytest.raises(ValueError, match=r"`scm.compute_steps` \[8, 12\] lie beyond `model.num_inference_steps`=8"):
        run_config("scm=custom", "scm.compute_steps=[0,1,2,4,8,12]", "model.num_inference_steps=8")
    assert run_config("scm=custom", "scm.compute_steps=[0,1,2,4]", "model.num_inference_steps=8").scm.compute_steps


@pytest.mark.parametrize("side", ["height", "width"])
def test_a_size_on_tiny_dit_is_refused_not_ignored(side):
    with pytest.raises(ValueError, match="tiny_dit always generates 16x16 digits"):
        check_model(ModelConfig(name="tiny_dit", source="embedded", **{side: 32}))


def test_a_missing_or_empty_tiny_dit_path_says_what_is_missing_where(tmp_path):
    for path in (tmp_path / "absent", tmp_path):
        with pytest.raises(FileNotFoundError, match=rf"`model.path` \({path}\) is not a saved pipeline: missing {path}/model_index.json, {path}/transformer/config.json"):
            check_model(ModelConfig(name="tiny_dit", source="embedded", path=str(path)))
    assert check_model(ModelConfig(name="tiny_dit", source="embedded")) == {"transformer": 6}
