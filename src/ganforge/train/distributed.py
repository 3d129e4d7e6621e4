"""Data-parallel training over processes started by torchrun (gloo on CPU, nccl on GPUs).

`torchrun --nproc_per_node=N -m ganforge train --out RUN ...`: every rank builds the same G and D
(rank 0's weights are broadcast), draws its own noise (seed + rank) and its own shard of each
epoch's permutation, and after every backward the gradients of the network being updated are
averaged over the ranks before clipping and the optimiser step, so the weights stay identical.
BatchNorm statistics stay per rank (as DDP with broadcast_buffers=False). Rank 0 alone writes
stats, samples, checkpoints and reports; logged statistics are means over the ranks.

Gradients are averaged explicitly after each phase (as StyleGAN2-ADA does) rather than through
DistributedDataParallel wrappers, because a GAN step freezes one network per phase, calls D's extra
heads (forward_aux, reconstruct) and differentiates twice for gradient penalties: cases a
DistributedDataParallel wrapper does not see or does not support.
"""

from __future__ import annotations

import os
from typing import Iterable

import torch
import torch.distributed as dist
import torch.nn as nn


def init_from_env() -> tuple[int, int, int]:
    """(rank, world size, local rank); starts the process group when torchrun launched N > 1 processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    if not dist.is_initialized():
        # torch.optim imports torch._dynamo, which keeps references to a process group that already
        # exists; destroy_process_group then cannot free it, and its worker threads outlive the
        # interpreter (a random SIGABRT at exit). Imported before the group exists, it holds none.
        import torch._dynamo  # noqa: F401

        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(params: Iterable[nn.Parameter]) -> None:
    """Replace each gradient by its mean over the ranks (one flat all-reduce)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])  # [sum of sizes]
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_over_ranks(record: dict, device: torch.device) -> dict:
    """Average the numeric entries of a stats record over the ranks (every rank must call it)."""
    keys = sorted(k for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step")
    if not keys:
        return record
    values = torch.tensor([float(record[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(values)
    values /= dist.get_world_size()
    return {**record, **{k: float(v) for k, v in zip(keys, values.tolist())}}


def shutdown(clean: bool) -> None:
    """Leave the process group before the interpreter exits.

    Exiting with the group alive lets its worker threads be torn down unjoined, and the process dies
    with "terminate called without an active exception" (SIGABRT) at random. After a clean run the
    ranks first wait for each other, so that no rank leaves while another still talks to it.
    """
    if not dist.is_initialized():
        return
    if clean:
        dist.barrier()
    dist.destroy_process_group()
