"""The per-step cost of a cache decision: how often the hooks read a device value to the host (each read waits for
the device to finish its queue). Counted by name on CPU, where no read actually waits; on a GPU each is a sync.

Per transformer call (one step of one guidance branch): the timestep is read once (branch detection and the loop
check share it) and DBCache reads its metric once (`reduce_metric`, one `.tolist()` of two sums); Forecast Cache
decides from its schedule and reads only the timestep. So DBCache costs 2 reads per call, Forecast 1; where the
pipeline passes no timestep tensor, 1 and 0."""

import pytest
import torch
from torch.overrides import TorchFunctionMode

import cachedit
from tests.helpers.toy import TOY_ADAPTERS, ToyPipeline

# Tensor methods and functions that return host values of device tensors.
READS = frozenset({"item", "tolist", "__float__", "__int__", "__bool__", "__index__", "equal", "allclose", "nonzero",
                   "cpu", "numpy"})


class HostReads(TorchFunctionMode):
    """Counts host reads per pipeline step (`end_step` closes one)."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[list[str]] = [[]]

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in READS:
            self.steps[-1].append(name)
        return func(*args, **(kwargs or {}))

    def end_step(self, step: int) -> None:
        self.steps.append([])


def _inputs(steps: int = 6) -> list[torch.Tensor]:
    base = torch.randn(1, 4, 8, generator=torch.Generator().manual_seed(0))
    return [base * (1 + 0.01 * step) for step in range(steps)]  # slow drift: DBCache skips some steps


CONFIGS = {
    "dbcache": cachedit.DBCacheConfig(Fn=1, Bn=1, residual_diff_threshold=0.5, max_warmup_steps=0),
    "forecast": cachedit.ForecastCacheConfig(Fn=0, warmup=2, interval=2),
}


@pytest.mark.parametrize(
    "cache, timestep, branches, per_step",
    [
        ("dbcache", True, ("cond",), [1] + [2] * 5),  # step 0 has no reference: no metric to read
        ("dbcache", True, ("cond", "uncond"), [2] + [4] * 5),  # two calls per step (true CFG), each as above
        ("dbcache", False, ("cond",), [0] + [1] * 5),
        ("forecast", True, ("cond",), [1] * 6),
        ("forecast", False, ("cond",), [0] * 6),
    ],
)
def test_host_reads_per_step(cache, timestep, branches, per_step):
    pipe = ToyPipeline()
    cachedit.enable_cache(pipe, CONFIGS[cache], adapters=TOY_ADAPTERS)
    reads = HostReads()
    with reads:
        # Without cache contexts the toy passes a timestep; two calls at one timestep are told apart by it.
        pipe(_inputs(), branches=branches, on_step_end=reads.end_step, num_inference_steps=6, contexts=not timestep)
    decisions = "|".join(branch["decisions"] for branch in cachedit.summary(pipe)["branches"].values())
    assert "c" in decisions  # the counts include steps that skipped
    assert [len(step) for step in reads.steps[:-1]] == per_step, reads.steps
