"""A tiny transformer and pipeline with fully controlled inputs, for exact tests of the decision rules."""

from __future__ import annotations

import torch
from diffusers.models.cache_utils import CacheMixin

import cachedit
from cachedit.adapters.patterns import HIDDEN_OUT


class ToyBlock(torch.nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(dim, dim)

    def forward(self, hidden_states: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        return hidden_states + 0.1 * torch.tanh(self.linear(hidden_states))


class ToyTransformer(torch.nn.Module, CacheMixin):
    def __init__(self, num_blocks: int = 6, dim: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.transformer_blocks = torch.nn.ModuleList(ToyBlock(dim) for _ in range(num_blocks))

    def forward(self, hidden_states: torch.Tensor, timestep: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.transformer_blocks:
            hidden_states = block(hidden_states, temb=None)
        return hidden_states


class ToyPipeline:
    """Calls the transformer once per step and branch on `inputs[step]` (a list of tensors), inside the branch's
    cache context; with ``contexts=False`` it opens none and passes the step's timestep instead."""

    def __init__(self, num_blocks: int = 6) -> None:
        self.transformer = ToyTransformer(num_blocks)

    @torch.no_grad()
    def __call__(
        self, inputs: list[torch.Tensor], branches: tuple[str, ...] = ("cond",), on_step_end=None, num_inference_steps=None,
        contexts: bool = True,
    ) -> list[torch.Tensor]:
        outputs = []
        for step, x in enumerate(inputs):
            for branch in branches:
                if not contexts:
                    outputs.append(self.transformer(x, timestep=torch.tensor([1000.0 - step])))
                    continue
                with self.transformer.cache_context(branch):
                    outputs.append(self.transformer(x))
            if on_step_end is not None:
                on_step_end(step)
        return outputs


TOY_ADAPTERS = [cachedit.BlockAdapter(block_lists=(("transformer_blocks", HIDDEN_OUT),))]


def steady_inputs(num_steps: int, batch: int = 1, dim: int = 8, drift: float = 0.0) -> list[torch.Tensor]:
    """`num_steps` inputs that change by `drift` per step (0: identical every step)."""
    x = torch.randn(batch, 4, dim, generator=torch.Generator().manual_seed(1))
    return [x + drift * step for step in range(num_steps)]
