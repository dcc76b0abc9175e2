"""A forward pattern that does not fit its block list is refused at `enable_cache`, naming the list, the pattern
given and the one that fits (#16.9); blocks whose source cannot be read are checked at their first computed call.
Before, the README's per-list example (HIDDEN_OUT on FLUX.1's single blocks) failed mid-call with a shape error."""

import pytest
import torch

import cachedit
from cachedit.adapters.patterns import ENCODER_HIDDEN_OUT, HIDDEN_ENCODER_OUT, HIDDEN_OUT

CONFIG = cachedit.DBCacheConfig(Fn=1, Bn=0, residual_diff_threshold=0.1)


@pytest.mark.parametrize("pattern, fits", [(HIDDEN_OUT, "ENCODER_HIDDEN_OUT"), (HIDDEN_ENCODER_OUT, "ENCODER_HIDDEN_OUT")])
def test_the_wrong_pattern_for_flux_single_blocks_is_refused_at_enable_cache(replicas, pattern, fits):
    pipe = replicas("flux").pipe
    adapter = cachedit.BlockAdapter(block_lists=(
        ("transformer_blocks", ENCODER_HIDDEN_OUT), ("single_transformer_blocks", pattern, {"Fn": 1})))
    message = (rf"Block list `single_transformer_blocks`: FluxSingleTransformerBlock.forward returns "
               rf"\(encoder_hidden_states, hidden_states\), which does not fit forward pattern `{pattern.name}`.*"
               rf"use `cachedit.patterns.{fits}`")
    with pytest.raises(ValueError, match=message):
        cachedit.enable_cache(pipe, CONFIG, adapters=[adapter])
    assert not cachedit.is_cache_enabled(pipe) and not pipe.transformer._diffusers_hook.hooks  # left untouched


class Opaque(torch.nn.Module):
    """A block whose return is no plain parameter name: only its first call can tell how many streams it returns."""

    def forward(self, hidden_states, encoder_hidden_states):
        return tuple(t + 1 for t in (encoder_hidden_states, hidden_states))


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList(Opaque() for _ in range(3))

    def forward(self, hidden_states, encoder_hidden_states):
        for block in self.blocks:
            encoder_hidden_states, hidden_states = block(hidden_states, encoder_hidden_states)
        return hidden_states


def test_a_block_whose_source_hides_its_returns_is_checked_at_its_first_call():
    net = Net()
    cachedit.enable_cache(net, CONFIG, adapters=[cachedit.BlockAdapter(block_lists=(("blocks", HIDDEN_OUT),))])
    try:
        with pytest.raises(ValueError, match=r"returned 2 value\(s\), but its forward pattern `hidden_out` returns"):
            with cachedit.request(net):
                net(torch.ones(1, 4, 8), torch.ones(1, 2, 8))
    finally:
        cachedit.disable_cache(net)
