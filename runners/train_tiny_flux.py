"""Train the embedded tiny FLUX and save it (transformer, scheduler, class prompts).

    python -m runners.train_tiny_flux                                  # the shipped recipe, conf/train_tiny_flux.yaml
    python -m runners.train_tiny_flux iterations=5 output_dir=/tmp/tiny_flux eval_samples=10 eval_steps=4   # smoke run
"""

from __future__ import annotations

import copy
import logging
import time

import hydra
import numpy as np
import torch
from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from cachedit.zoo import digits
from cachedit.zoo.tiny_flux import (
    ClassPrompts,
    assemble,
    build_tiny_flux_transformer,
    digit_inputs,
    flow_matching_loss,
    load_tiny_flux,
    save_tiny_flux,
)
from cachedit.zoo.training import recent_mean, train_ema

log = logging.getLogger(__name__)


def train(cfg: DictConfig, checkpoint_dir: str | None = None):
    """Run the recipe; return the EMA transformer and prompts (eval mode) and the mean loss of the last 100 steps.

    Every `checkpoint_every` iterations the EMA model is saved under `checkpoint_dir/iter_N`. The learning rate is
    constant after warmup, so the checkpoint at N equals a run with `iterations=N` (same seed, same batches).
    """
    def build():
        transformer = build_tiny_flux_transformer(**cfg.transformer)
        return torch.nn.ModuleList([transformer, ClassPrompts(**cfg.prompts)])  # prompts are learned with it

    def loss_of(modules, images, labels, generator):
        return flow_matching_loss(*modules, images, labels, generator=generator, **cfg.objective)

    def checkpoint(done, ema, losses):
        if checkpoint_dir and cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.iterations:
            save_tiny_flux(assemble(copy.deepcopy(ema[0]).eval(), copy.deepcopy(ema[1]).eval()), f"{checkpoint_dir}/iter_{done}")
            log.info("iteration %d, loss (mean of last 100) %.4f, checkpoint saved", done, recent_mean(losses))

    ema, losses = train_ema(cfg, build, loss_of, desc="train_tiny_flux", mininterval=5.0, after_iteration=checkpoint)
    transformer, prompts = ema
    return transformer, prompts, recent_mean(losses)


def generate_per_class(pipe, samples_per_class: int, seed: int = 0, batch_size: int = 100, **call_kwargs):
    """Images `(N, 16, 16)` in [0, 1] and labels: the same number of every digit, reproducibly."""
    labels = np.repeat(np.arange(digits.NUM_CLASSES), samples_per_class)
    generator = torch.Generator("cpu").manual_seed(seed)
    chunks = [
        pipe(**digit_inputs(pipe, labels[i : i + batch_size].tolist(), generator=generator, output_type="np", **call_kwargs)).images[..., 0]
        for i in range(0, len(labels), batch_size)
    ]
    return np.concatenate(chunks), labels


@hydra.main(version_base="1.3", config_path="../conf", config_name="train_tiny_flux")
def main(cfg: DictConfig) -> None:
    torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    output_dir = to_absolute_path(cfg.output_dir)
    transformer, prompts, final_loss = train(cfg, checkpoint_dir=f"{output_dir}/checkpoints")
    minutes = (time.perf_counter() - start) / 60
    log.info("trained %d iterations in %.1f min, loss (mean of last 100) %.4f", cfg.iterations, minutes, final_loss)
    save_tiny_flux(assemble(transformer, prompts), output_dir)
    log.info("saved the EMA model to %s", output_dir)
    if cfg.eval_samples > 0:
        pipe = load_tiny_flux(output_dir)
        pipe.set_progress_bar_config(disable=True)
        per_class = max(cfg.eval_samples // digits.NUM_CLASSES, 1)
        images, labels = generate_per_class(pipe, per_class, seed=cfg.seed, num_inference_steps=cfg.eval_steps, true_cfg_scale=cfg.true_cfg_scale)
        log.info("uncached accuracy over %d samples, %d steps: %.4f", len(images), cfg.eval_steps, digits.accuracy(images, labels))
        log.info("Frechet distance to real digits: %.4f", digits.frechet_distance(images, digits.load_split("all")[0]))


if __name__ == "__main__":
    main()
