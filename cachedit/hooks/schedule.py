"""How many steps a pipeline call really runs, read from its scheduler when the first step begins.

The `num_inference_steps` argument is only a hint: FLUX called with ``sigmas=`` (8 values while the argument keeps
its default 28), ``timesteps=``, img2img's ``strength`` (the loop starts part-way into the schedule) and second-order
schedulers (Heun: 2N - 1 transformer calls) all run another count. By the first transformer forward every diffusers
pipeline has called ``scheduler.set_timesteps`` for this call, so its timesteps are the loop about to run.
"""

from __future__ import annotations


def scheduled_steps(pipe) -> int | None:
    """Steps left in `pipe`'s scheduler from where this call's loop begins, or None without a readable schedule."""
    scheduler = getattr(pipe, "scheduler", None)
    timesteps = getattr(scheduler, "timesteps", None)
    try:
        count = len(timesteps)
    except TypeError:  # no scheduler, or one whose timesteps are not set yet
        return None
    begin = getattr(scheduler, "begin_index", None)  # img2img: `strength` starts the loop later (set_begin_index)
    count -= begin if isinstance(begin, int) else 0
    return count if count > 0 else None
