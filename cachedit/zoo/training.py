"""The one training loop of the embedded models (`runners.train_tiny`, `runners.train_tiny_flux`): flow matching on the
digits with AdamW, linear LR warmup, gradient clipping and an EMA copy, which is what gets saved.

Each runner passes what is its own: how to build the trainable modules and the loss on a batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Protocol

import torch
from tqdm import tqdm

from . import digits

__all__ = ["LoopSettings", "train_ema", "recent_mean"]

RECENT = 100  # the reported loss is the mean of the last this many iterations


class LoopSettings(Protocol):
    """The recipe keys the loop reads (`conf/train_tiny*.yaml` has them at its top level)."""

    seed: int
    iterations: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    warmup_iterations: int
    grad_clip: float
    ema_decay: float


def train_ema(
    settings: LoopSettings,
    build: Callable[[], torch.nn.Module],
    loss_of: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor],
    *,
    desc: str,
    mininterval: float = 2.0,
    after_iteration: Callable[[int, torch.nn.Module, list[float]], None] | None = None,
) -> tuple[torch.nn.Module, list[float]]:
    """Train `build()` on the digits' training split; return its EMA copy (eval mode) and every iteration's loss.

    `build` runs right after seeding, so the initial weights follow `settings.seed`; `loss_of(module, images, labels,
    generator)` draws its noise and timesteps from `generator`, the one that also draws the batches.
    `after_iteration(done, ema, losses)` runs after every iteration (checkpoints).
    """
    torch.manual_seed(settings.seed)
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    images, labels = digits.training_tensors("train")
    module = build()
    ema = copy.deepcopy(module).requires_grad_(False)
    optimizer = torch.optim.AdamW(module.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    warmup_iterations = max(settings.warmup_iterations, 1)
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: min(1.0, (i + 1) / warmup_iterations))

    losses: list[float] = []
    bar = tqdm(range(settings.iterations), desc=desc, mininterval=mininterval)
    for step in bar:
        idx = torch.randint(0, len(images), (settings.batch_size,), generator=generator)
        loss = loss_of(module, images[idx], labels[idx], generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), settings.grad_clip)
        optimizer.step()
        warmup.step()
        decay = min(settings.ema_decay, (1 + step) / (10 + step))  # EMA warm-up: early weights are mostly noise
        with torch.no_grad():  # else the EMA weights join the autograd graph and it grows every step
            torch._foreach_lerp_(list(ema.parameters()), list(module.parameters()), 1.0 - decay)
        losses.append(loss.item())
        if step % 20 == 0 or step == settings.iterations - 1:
            bar.set_postfix(loss=f"{recent_mean(losses):.4f}")
        if after_iteration is not None:
            after_iteration(step + 1, ema, losses)
    return ema.eval(), losses


def recent_mean(losses: list[float]) -> float:
    """The mean of the last `RECENT` losses (0 for none): what the runners log as the final loss."""
    recent = losses[-RECENT:]
    return sum(recent) / max(len(recent), 1)
