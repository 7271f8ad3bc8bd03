"""Several processes on one shot through torch.distributed (started by `torchrun`).

Data parallel by an all-reduce of the gradients after each backward pass: every rank holds the
same weights (same seed, same checkpoint), draws its own frames, and takes the same optimiser
step. We do not wrap the model in DistributedDataParallel because the fine-tune stage runs the
generator twice per step (the stabilisation term), which DDP's one-forward-one-backward hooks
do not allow without find_unused_parameters; averaging the gradients by hand is the same maths.

Only rank 0 writes checkpoints and reports progress. Decisions that depend on a rank's own clock
or signals (a spent budget, SIGTERM) are agreed on by all ranks, so that every rank takes the same
number of steps and the collectives never wait for a rank that has left.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class World:
    """This process's place among the training processes; World() is a single process."""

    rank: int = 0
    """This process's index, 0..size-1; rank 0 writes the checkpoint."""
    size: int = 1
    """How many processes train the shot together."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def average_gradients(self, model: torch.nn.Module) -> None:
        """Replace every gradient by its mean over the ranks (one flat all-reduce)."""
        if not self.distributed:
            return
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def agree(self, flag: bool) -> bool:
        """True on every rank when it is True on any rank."""
        if not self.distributed:
            return flag
        value = torch.tensor([int(flag)])
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order (on every rank)."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out


def launched_by_torchrun() -> bool:
    """True inside a process that torchrun started with more than one process in all."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """False in the processes that torchrun started other than rank 0 (they write nothing)."""
    return int(os.environ.get("RANK", "0")) == 0


def init_world(device: torch.device, timeout: timedelta | None = None) -> tuple[World, torch.device]:
    """Join the process group that torchrun describes in the environment, or stay a single process.

    `timeout` bounds how long a rank waits for the others to join and in each collective (None:
    torch's default); a rank that first does minutes of work alone (rank 0 propagating a keyframe
    job's mattes) needs the others to wait longer than usual.

    Returns:
        The world, and the device of this rank: on CUDA, the GPU of its LOCAL_RANK.
    """
    if not launched_by_torchrun():
        return World(), device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # The all-reduces are of CPU tensors (flags) and of gradients on the training device: gloo
        # serves CPU, nccl serves CUDA.
        backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
        if timeout is None:
            dist.init_process_group(backend=backend)
        else:
            dist.init_process_group(backend=backend, timeout=timeout)
    world = World(rank=dist.get_rank(), size=dist.get_world_size())
    logger.info("distributed training: rank %d of %d on %s", world.rank, world.size, device)
    return world, device


def close_world(world: World, *, finished: bool = True) -> None:
    """Leave the process group.

    After a finished run every rank first waits at a barrier, so that no rank tears its connections
    down while a peer is still using them: a gloo peer whose connection closes under it can abort
    the process as it exits. After an error we leave at once (a barrier would wait for a rank that
    may never come).
    """
    if world.distributed and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()
