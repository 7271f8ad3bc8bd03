"""The main job end to end: plate + mattes -> internal training -> clean plate EXRs.

`inpaint` is what `ivi-render inpaint` and the demo call. It checks everything that can be
checked before spending any time (patterns, missing frames, outputs, the output folder),
loads the shot, trains (resuming from a compatible checkpoint), then renders every frame.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ivi_vfx.config import TrainConfig
from ivi_vfx.errors import ConfigError, StopRequested
from ivi_vfx.io.sequence import find_sequence, output_sequence
from ivi_vfx.nets.encoder import build_encoder
from ivi_vfx.render import check_outputs, render
from ivi_vfx.shot import load_shot
from ivi_vfx.train import FitResult, StepInfo, fit, resolve_device

logger = logging.getLogger(__name__)

# Share of the progress bar that training takes; rendering takes the rest.
TRAIN_SHARE = 0.9


@dataclass
class InpaintResult:
    """What an inpaint run did."""

    written: list[Path]
    fit: FitResult
    checkpoint: Path | None


def default_checkpoint(out_pattern: str) -> Path:
    """Where a one-shot run keeps its checkpoint: a hidden folder beside the output frames."""
    out = Path(out_pattern)
    stem = out.name.split("#")[0].split("%")[0].split("@")[0].rstrip("._") or "ivi"
    return out.parent / ".ivi" / f"{stem}.ckpt"


def inpaint(plate: str, mask: str, out: str, cfg: TrainConfig, *, frames: list[int] | None = None,
            mask_channel: str | None = None, device: str = "auto", checkpoint: Path | None = None,
            resume: bool = True, overwrite: bool = False,
            on_progress: Callable[[float], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> InpaintResult:
    """Fill the mattes of a plate sequence and write the clean plate.

    Args:
        plate, mask, out: frame patterns (####, %04d or @).
        cfg: training configuration (a preset, maybe with changes).
        frames: the frames to process; default every plate frame on disk.
        mask_channel: the matte's channel; default 'A' or the file's only channel.
        device: 'auto', 'cpu', 'cuda', 'cuda:1'...
        checkpoint: checkpoint file; default a hidden folder beside the output.
        resume: continue from a compatible checkpoint.
        overwrite: replace existing output frames.
        on_progress: called with the fraction done, 0..1.
        should_stop: polled after every step and frame; True stops the run (StopRequested): training writes
            a checkpoint first, rendering stops between two whole frames. Running again resumes.
    """
    cfg.validate()
    if cfg.regularized and cfg.ambiguity_weight > 0:
        build_encoder(cfg.encoder)  # a wrong weights file is an error now, not after loading the shot
    plate_seq = find_sequence(plate, frames)
    mask_seq = find_sequence(mask, plate_seq.frames)
    out_seq = output_sequence(out, plate_seq.frames)
    if {str(p) for p in out_seq.paths()} & {str(p) for p in plate_seq.paths() + mask_seq.paths()}:
        raise ConfigError(f"--out {out} would write over the inputs; choose another output pattern")
    check_outputs(out_seq, overwrite)
    torch_device = resolve_device(device)
    shot = load_shot(plate_seq, mask_seq, work_size=cfg.work_size, matte_channel=mask_channel, dilate=cfg.dilate)
    checkpoint = checkpoint or default_checkpoint(out)
    report = on_progress or (lambda fraction: None)

    def on_step(info: StepInfo) -> bool:
        report(TRAIN_SHARE * info.fraction)
        return bool(should_stop and should_stop())

    logger.info("training %s preset: %d steps%s%s, width %d, batch %d, device %s", cfg.preset, cfg.steps,
                f" (the last {cfg.finetune_steps} regularized)" if cfg.regularized else "",
                f" or {cfg.budget:g} min" if cfg.budget else "", cfg.cnum, cfg.batch_size, torch_device)
    result = fit(shot, cfg, device=torch_device, checkpoint=checkpoint, resume=resume, on_step=on_step)
    if result.stopped:
        raise StopRequested(f"stopped at step {result.step} of {cfg.steps}; checkpoint {checkpoint}; "
                            f"run the same command again to resume")
    logger.info("trained %d steps in %.1f s", result.step, result.seconds)
    count = len(shot.frames)
    done = [0]

    def on_frame(frame: int, path: Path) -> None:
        done[0] += 1
        report(TRAIN_SHARE + (1 - TRAIN_SHARE) * done[0] / count)
        if should_stop and should_stop() and done[0] < count:
            raise StopRequested(f"stopped after writing {done[0]} of {count} frames; run the same command "
                                f"again with --overwrite to finish")

    written = render(result.model, shot, out_seq, device=torch_device, overwrite=overwrite, on_frame=on_frame)
    logger.info("wrote %d frames to %s", len(written), out)
    return InpaintResult(written=written, fit=result, checkpoint=checkpoint)
