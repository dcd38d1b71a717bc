"""Several processes under a launcher (torchrun, accelerate launch): which process this is, and how they
share work. With one process every function here is trivial, so callers need no special case.

Training shares each batch across processes (data parallel, `toxlab.model.train`); evaluation shares the
generation batches (`toxlab.evaluation.evaluate.generate`'s `part`) and gathers the results on every process.
"""

from __future__ import annotations

import os


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "") or default)
    except ValueError:
        return default


def world_size() -> int:
    """Processes in this run under a multi-process launcher, else 1."""
    return max(1, _env_int("WORLD_SIZE", 1))


def rank() -> int:
    """This process's rank under a multi-process launcher, else 0."""
    return _env_int("RANK", 0)


def local_rank() -> int:
    """This process's rank on its own machine (which GPU it uses), else 0."""
    return _env_int("LOCAL_RANK", 0)


def gather(obj: object) -> list:
    """Every process's `obj`, in rank order (on every process); `[obj]` with one process. Starts the
    process group the launcher describes if nothing has yet (gloo on CPUs, NCCL on GPUs)."""
    if world_size() == 1:
        return [obj]
    import torch.distributed as dist
    from accelerate import PartialState
    PartialState()  # joins the launcher's process group once
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
