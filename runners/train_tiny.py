"""Train the embedded default model and save it with `save_pretrained`.

    python -m runners.train_tiny                                       # the shipped recipe, conf/train_tiny.yaml
    python -m runners.train_tiny iterations=20 output_dir=/tmp/tiny eval_samples=20 eval_steps=4   # smoke run
"""

from __future__ import annotations

import logging
import sys
import time

import hydra
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from cachedit.zoo import digits
from cachedit.zoo.tiny_dit import TinyDiTPipeline, build_tiny_dit_transformer, flow_matching_loss, generate_per_class
from cachedit.zoo.training import recent_mean, train_ema
from runners.overrides import check_overrides

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> tuple[torch.nn.Module, float]:
    """Run the recipe; return the EMA transformer (eval mode) and the mean loss of the last 100 iterations."""
    def loss_of(model, images, labels, generator):
        return flow_matching_loss(model, images, labels, generator=generator, **cfg.objective)

    ema, losses = train_ema(cfg, lambda: build_tiny_dit_transformer(**cfg.transformer), loss_of, desc="train_tiny")
    return ema, recent_mean(losses)


def evaluate(pipe: TinyDiTPipeline, cfg: DictConfig) -> None:
    """Log uncached accuracy on the requested class and the Fréchet distance to real digits (with its floor)."""
    per_class = max(cfg.eval_samples // digits.NUM_CLASSES, 1)
    pipe.set_progress_bar_config(disable=True)
    images, labels = generate_per_class(
        pipe, per_class, seed=cfg.seed, num_inference_steps=cfg.eval_steps, guidance_scale=cfg.guidance_scale
    )
    real = digits.load_split("all")[0]
    n = len(images)
    log.info("uncached accuracy over %d samples, %d steps: %.4f", n, cfg.eval_steps, digits.accuracy(images, labels))
    if n >= 2:
        floor = digits.real_vs_real_frechet(n) if n <= len(real) - 2 else float("nan")
        fd = digits.frechet_distance(images, real)
        log.info("Frechet distance to real digits: %.4f (real-vs-real floor at this size: %.4f)", fd, floor)


@hydra.main(version_base="1.3", config_path="../conf", config_name="train_tiny")
def main(cfg: DictConfig) -> None:
    torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    ema, final_loss = train(cfg)
    minutes = (time.perf_counter() - start) / 60
    log.info("trained %d iterations in %.1f min, loss (mean of last 100) %.4f", cfg.iterations, minutes, final_loss)

    output_dir = to_absolute_path(cfg.output_dir)
    pipe = TinyDiTPipeline(transformer=ema, scheduler=FlowMatchEulerDiscreteScheduler())
    pipe.save_pretrained(output_dir)
    log.info("saved the EMA pipeline to %s", output_dir)
    if cfg.eval_samples > 0:
        evaluate(TinyDiTPipeline.from_pretrained(output_dir), cfg)


if __name__ == "__main__":
    check_overrides(sys.argv[1:], "train_tiny")
    main()
