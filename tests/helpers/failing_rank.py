"""``runners.generate`` whose rank 1 fails after the ranks have agreed on the run directory (loading its pipeline):

    torchrun --nproc_per_node=2 -m tests.helpers.failing_rank parallel=ulysses ...
"""

import os
import runpy

from cachedit.harness import runs


def _fail(*args, **kwargs):
    raise RuntimeError("injected failure on rank 1")


if __name__ == "__main__":
    if int(os.environ.get("RANK", "0")) == 1:
        runs.load_pipeline = _fail  # run_generation looks it up in its module at call time
    # As `python -m runners.generate`: Hydra finds conf/ relative to the module run as __main__.
    runpy.run_module("runners.generate", run_name="__main__", alter_sys=True)
