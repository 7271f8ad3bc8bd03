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
import functools
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar, cast

import torch
from torch import nn

from ivi_vfx.errors import DeviceMemoryError

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


# --- out of memory ---------------------------------------------------------------------------------

GPU_TILE_SIZE, GPU_PATCH_SIZE = 1024, 128
"""HiresConfig's automatic tile and patch sizes on a GPU (hires.HiresConfig.for_device)."""


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a device or host allocation failure: torch's OutOfMemoryError (CUDA, MPS), MemoryError, or
    the RuntimeError of an allocator that has no type of its own ("out of memory", "can't allocate")."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def smaller(size: int, floor: int = 16) -> int:
    """Half of a size in pixels, a multiple of 4 (the generator's modulo), at least `floor`."""
    return max(floor, size // 2 // 4 * 4)


def out_of_memory_message(exc: BaseException, *, work_size: int | None = None, tile_size: int | None = None,
                          patch_size: int | None = None, checkpoint: Path | None = None,
                          doing: str = "") -> str:
    """What ran out, and the sizes that would fit: each of --work-size, --tile-size and --patch-size at half
    the value in use (the GPU's automatic sizes where the value is not known here)."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    first = first if len(first) <= 160 else first[:157] + "..."
    device = "the GPU" if isinstance(exc, torch.OutOfMemoryError) else "the machine"
    sizes = [f"--work-size {smaller(work_size)} (it is {work_size})" if work_size else
             "--work-size at half the job's (job.json)"]
    tile, patch = tile_size or GPU_TILE_SIZE, patch_size or GPU_PATCH_SIZE
    sizes.append(f"--tile-size {smaller(tile, 64)} and --patch-size {smaller(patch)} (half of "
                 f"{'the GPU defaults ' if not (tile_size or patch_size) else ''}{tile} and {patch}) for a plate "
                 f"with finer scales")
    kept = ""
    if checkpoint is not None and Path(checkpoint).is_file():
        kept = (f"; the checkpoint {checkpoint} is kept: the same command resumes from it on a device with more "
                f"free memory (another size trains afresh)")
    return (f"{device} ran out of memory{f' {doing}' if doing else ''} ({first}); run again with smaller sizes: "
            f"{', '.join(sizes)}{kept}")


P = ParamSpec("P")
R = TypeVar("R")


def names_memory_fix(train: Callable[P, R]) -> Callable[P, R]:
    """Decorate a training function `train(shot, cfg, *, checkpoint=None, ...)` so that running out of
    memory is a DeviceMemoryError with the sizes that would fit (exit 1 on the command line), not a
    traceback. The checkpoint already written is left as it is."""
    @functools.wraps(train)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return train(*args, **kwargs)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            cfg = kwargs.get("cfg", args[1] if len(args) > 1 else None)
            checkpoint = kwargs.get("checkpoint")
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # what the failed step held, for whatever runs next
            raise DeviceMemoryError(out_of_memory_message(
                exc, work_size=getattr(cfg, "work_size", None), doing="training the fill",
                checkpoint=Path(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else None)) from exc
    return wrapper
