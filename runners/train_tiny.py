"""Train the embedded default model and save it with `save_pretrained`.

    python -m runners.train_tiny                                       # the shipped recipe, conf/train_tiny.yaml
    python -m runners.train_tiny iterations=20 output_dir=/tmp/tiny eval_samples=20 eval_steps=4   # smoke run
"""

from __future__ import annotations

import copy
import logging
import sys
import time

import hydra
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from hydra.utils import to_absolute_path
from omegaconf import DictConfig
from tqdm import tqdm

from cachedit.zoo import digits
from cachedit.zoo.tiny_dit import TinyDiTPipeline, build_tiny_dit_transformer, flow_matching_loss, generate_per_class
from runners.overrides import check_overrides

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> tuple[torch.nn.Module, float]:
    """Run the recipe; return the EMA transformer (eval mode) and the mean loss of the last 100 iterations."""
    torch.manual_seed(cfg.seed)
    generator = torch.Generator("cpu").manual_seed(cfg.seed)
    images, labels = digits.training_tensors("train")
    model = build_tiny_dit_transformer(**cfg.transformer)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: min(1.0, (i + 1) / max(cfg.warmup_iterations, 1)))

    recent: list[float] = []
    bar = tqdm(range(cfg.iterations), desc="train_tiny", mininterval=2.0)
    for step in bar:
        idx = torch.randint(0, len(images), (cfg.batch_size,), generator=generator)
        loss = flow_matching_loss(model, images[idx], labels[idx], generator=generator, **cfg.objective)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        warmup.step()
        # EMA warm-up: early weights are mostly noise, so the decay starts low
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():  # else the EMA weights join the autograd graph and it grows every step
            torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - decay)
        recent = (recent + [loss.item()])[-100:]
        if step % 20 == 0 or step == cfg.iterations - 1:
            bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")
    return ema.eval(), sum(recent) / max(len(recent), 1)


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
