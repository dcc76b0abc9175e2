"""Step masks follow the steps the scheduler runs, not the `num_inference_steps` argument (#16.6).

FLUX called with ``sigmas=`` of 8 values keeps the argument's default of 28; PixArt called with ``timesteps=``
ignores the argument; img2img with ``strength=0.5`` runs half the steps. A static `fast` mask sized from the
argument reused the last step (and changed which steps computed); sized from the schedule it computes the last one.
Threshold 10 caches every step the mask leaves off, so the decision string is the mask itself.
"""

import numpy as np
import torch

import cachedit
from cachedit.configs import StepMaskConfig
from cachedit.hooks.step_mask import masked_in_steps

ALWAYS_REUSE = cachedit.DBCacheConfig(Fn=1, Bn=0, residual_diff_threshold=10.0, max_warmup_steps=0)
FAST_STATIC = StepMaskConfig(mask="fast", policy="static")


def expected(num_steps: int) -> str:
    steps = masked_in_steps(FAST_STATIC, num_steps)
    return "".join("C" if s in steps else "c" for s in range(num_steps))


def without(inputs: dict, *keys: str) -> dict:
    return {k: v for k, v in inputs.items() if k not in (*keys, "output_type")}


def decisions(pipe, call, config=ALWAYS_REUSE) -> list[str]:
    cachedit.enable_cache(pipe, config, scm=FAST_STATIC)
    try:
        call()
        return [b["decisions"] for b in cachedit.summary(pipe)["branches"].values()]
    finally:
        cachedit.disable_cache(pipe)


def test_flux_with_8_sigmas_and_the_default_28_steps_gets_a_mask_of_8(replicas):
    flux = replicas("flux")
    inputs = without(flux.inputs, "num_inference_steps")  # FluxPipeline's default: 28
    sigmas = np.linspace(1.0, 1 / 8, 8).tolist()
    got = decisions(flux.pipe, lambda: flux.pipe(**inputs, sigmas=sigmas, output_type="latent"))
    assert got == [expected(8)] and got[0].endswith("C")  # sized 28 it was CCCCccCc: the last step reused


def test_forecast_schedules_from_the_sigmas_too(replicas):
    flux = replicas("flux")
    inputs = without(flux.inputs, "num_inference_steps")
    forecast = cachedit.ForecastCacheConfig(Fn=0, Bn=0, warmup=3, interval=4, compute_last_step=True)
    cachedit.enable_cache(flux.pipe, forecast)
    try:
        flux.pipe(**inputs, sigmas=np.linspace(1.0, 1 / 6, 6).tolist(), output_type="latent")
        assert cachedit.summary(flux.pipe)["branches"]["transformer/cond"]["decisions"] == "CCCccC"  # sized 28: CCCccc
    finally:
        cachedit.disable_cache(flux.pipe)


def test_pixart_with_explicit_timesteps_gets_a_mask_of_their_count(replicas):
    pixart = replicas("pixart_alpha")  # called with num_inference_steps=8; the 6 timesteps win
    timesteps = [999, 800, 600, 400, 200, 100]
    got = decisions(pixart.pipe, lambda: pixart(timesteps=timesteps))
    assert got and all(d == expected(6) for d in got)  # sized 8: CcccCc, the last step reused


def test_img2img_strength_runs_fewer_steps_and_the_mask_follows(replicas):
    from diffusers import FluxImg2ImgPipeline

    flux = replicas("flux")
    edit = FluxImg2ImgPipeline(**flux.pipe.components)  # its own pipeline object: caching belongs to it
    edit.set_progress_bar_config(disable=True)
    image = torch.rand(1, 3, 64, 64)
    inputs = {k: v for k, v in flux.inputs.items() if k in ("prompt_embeds", "pooled_prompt_embeds", "height", "width")}
    call = lambda: edit(**inputs, image=image, strength=0.5, num_inference_steps=8, output_type="latent",
                        generator=torch.Generator().manual_seed(0))
    got = decisions(edit, call)
    assert got == [expected(4)] and got[0].endswith("C")  # sized 8 it was Cccc: only the first step computed
