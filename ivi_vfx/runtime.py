"""How a model runs on a device: memory layout, precision, compilation and host threads.

The switches change how fast a training step runs, never what the network is: the same
parameters, the same architecture, fp32 master weights and fp32 losses. They are read from
TrainConfig (`channels_last`, `precision`, `compile`, `threads`); the trainer calls

    model = runtime.prepare_model(model, device, cfg)          # once, after building it
    with runtime.autocast(device, cfg):                         # around each forward
        coarse, refined = model(images, holes)
    coarse, refined = coarse.float(), refined.float()           # losses in fp32
    scaler.scale(total).backward() ...                          # runtime.grad_scaler (fp16 only)

What each switch bought is measured by bench/speed.py (`--configs main,switches,slow`). On the
2-core AMD EPYC (Zen 4) this project develops on, shared with other jobs: bf16 autocast made a
step 7-11x slower (oneDNN's bf16 convolution backward does not pay there), torch.compile had not
finished compiling the generator's training step after 13 minutes, and two OpenMP threads on
two loaded cores stalled for tens of seconds a step where one thread did not. channels_last and
flushing denormals were within the machine's noise. Hence the defaults: fp32 on a CPU, no
compile, torch's thread count (exact resumes) with -1 for shared machines.
"""
from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Protocol, TypeVar, cast

import torch
from torch import nn

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""Values of TrainConfig.precision."""

RUNTIME_KEYS = {"channels_last", "precision", "compile", "threads"}
"""TrainConfig fields that change speed, not the trained network: a resumed run may change them."""


class RuntimeConfig(Protocol):
    """The fields this module reads (TrainConfig has them)."""

    channels_last: bool
    precision: str
    compile: bool
    threads: int


def compute_dtype(device: str | torch.device, precision: str) -> torch.dtype:
    """The dtype convolutions run in for `precision` on `device` (the weights stay fp32).

    'auto' is fp32 on a CPU and bf16 on a GPU that supports it (Ampere or newer), fp16 on an
    older GPU. bf16 keeps fp32's exponent range, so it needs no loss scaling; fp16 does.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    kind = torch.device(device).type
    if precision == "auto":
        # On the CPU bf16 autocast measured 7-11x slower than fp32 for this network's training step
        # (bench/speed.py, Zen 4 with avx512_bf16): oneDNN's bf16 convolution backward does not pay.
        if kind != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


_M = TypeVar("_M", bound=nn.Module)


def to_memory_format(model: _M, memory_format: torch.memory_format) -> _M:
    """model.to(memory_format=...): the same object, its 4-D parameters and buffers in that layout.

    nn.Module.to takes memory_format at run time; torch's type stubs list only device, dtype and
    tensor, hence the cast.
    """
    return cast(_M, cast(Any, model).to(memory_format=memory_format))


def prepare_model(model: _M, device: str | torch.device, cfg: RuntimeConfig) -> _M:
    """Move `model` to `device` in the configured memory layout, compiled when asked; the same object.

    channels_last stores every 4-D parameter as NHWC (the values, names and shapes are unchanged,
    so checkpoints load either way). Compilation is in place (nn.Module.compile), so state_dict
    keys carry no `_orig_mod.` prefix and the trainer keeps one model object.
    """
    model = model.to(device)
    if cfg.channels_last:
        model = to_memory_format(model, torch.channels_last)
    if cfg.compile:
        model.compile()
    return model


def prepare_input(tensor: torch.Tensor, cfg: RuntimeConfig) -> torch.Tensor:
    """A (B, C, H, W) batch in the memory layout the model was prepared for (a no-op otherwise)."""
    if cfg.channels_last and tensor.dim() == 4:
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def autocast(device: str | torch.device, cfg: RuntimeConfig) -> contextlib.AbstractContextManager[Any]:
    """The context to run the model's forward in: autocast to the compute dtype, or nothing for fp32.

    Only the generator's forward belongs inside it: the losses (and the anti-ambiguity encoder's
    contextual loss, whose exp of distance ratios needs fp32) run outside on `.float()` outputs.
    """
    kind = torch.device(device).type
    dtype = compute_dtype(device, cfg.precision)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=kind, dtype=dtype)


def grad_scaler(device: str | torch.device, cfg: RuntimeConfig) -> torch.amp.GradScaler:
    """A GradScaler, enabled only for fp16 on CUDA, where small gradients would underflow to zero.

    Disabled, its scale/step/update pass through, so the trainer can always call it:
    `scaler.scale(total).backward(); scaler.step(optimizer); scaler.update()`.
    """
    kind = torch.device(device).type
    enabled = kind == "cuda" and compute_dtype(device, cfg.precision) == torch.float16
    return torch.amp.GradScaler(kind, enabled=enabled)


def auto_threads() -> int:
    """Intra-op threads for a training that starts now: one per core that other work leaves free.

    On a shared machine an OpenMP team wider than the free cores spends most of its time waiting
    at barriers for a thread the scheduler has parked: measured on 2 loaded cores, 2 threads took
    several times longer per step than 1 (bench/speed.py). The load is read once, from the
    1-minute load average, which does not yet count this training.
    """
    cores = cpu_count()
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on a Unix
        return cores
    return max(1, min(cores, cores - math.floor(busy + 0.5)))


def configure_threads(threads: int = 0, flush_denormal: bool = False) -> int:
    """Set the intra-op thread count and the denormal mode; returns the thread count in use.

    Args:
        threads: intra-op threads; 0 leaves torch's choice (one per core, or OMP_NUM_THREADS);
            -1: auto_threads(), fastest on a shared machine. The count changes the order of the
            convolutions' sums, so a run resumed with another count is not bit-identical to an
            uninterrupted one (about 1e-6 apart): 0 and a fixed count keep a resume exact.
        flush_denormal: flush values below 1.2e-38 to zero (x86's slow path on them is avoided).
            Off by default, and never on where frames are read or written: the CPU flag it sets
            also flushes OpenImageIO's half-to-float conversion, so a plate's subnormal half
            pixels (below 6.1e-5) would read as 0 and break the fidelity rule outside the matte
            (tests/test_fidelity.py caught it). Its gain was within the noise (bench/speed.py).

    Both settings are process-wide.
    """
    torch.set_flush_denormal(flush_denormal)
    if threads != 0:
        torch.set_num_threads(threads if threads > 0 else auto_threads())
    return torch.get_num_threads()


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
