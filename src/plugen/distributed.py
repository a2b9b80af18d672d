"""Multi-process training on PyTorch's own engine: ``torchrun`` + ``DistributedDataParallel``.

``torchrun --nproc_per_node=P -m plugen fit ...`` starts P copies of the CLI; each calls
:func:`init_from_env`, which joins the process group torchrun describes in its environment (gloo
on CPU, NCCL on GPU). ``Plugin.fit`` then notices the group and trains one plugin with gradients
averaged by DDP (see ``plugen.training``). From Python, call
``torch.distributed.init_process_group`` yourself before ``fit``; every process must pass the same
latents and labels.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def active() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if active() else (0, 1)


def is_main() -> bool:
    """True in the process that writes files and prints (rank 0, or the only process)."""
    return rank_and_world()[0] == 0


def init_from_env(device: str = "auto") -> bool:
    """Join the process group described by torchrun's environment (``WORLD_SIZE`` > 1).

    Returns True when this process is part of a multi-process run. The backend is NCCL when the
    run uses CUDA and gloo otherwise; each process takes the GPU of its ``LOCAL_RANK``.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        cuda = device != "cpu" and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return active()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def sum_all(*values: float, device: torch.device | None = None) -> list[float]:
    """Sums over all processes of a few numbers (the numbers themselves in one process)."""
    if not active():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()
