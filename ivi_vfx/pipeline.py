"""The jobs end to end: plate + mattes -> internal training -> clean plate EXRs.

Two shapes of the same work, sharing `train_shot` and `render_shot`:

- `inpaint`: the one-shot job (`ivi-render inpaint`, the demo): check, load the shot, train
  (resuming from a compatible checkpoint), render every frame from the model in memory.
- `train_job` then `render_job` (`ivi-render train`, `render`, `run`, and the farm templates):
  training writes a checkpoint folder (job.json + model.ckpt, and scales.ckpt when the plate is
  large enough for progressive finer scales); a render loads that folder and only the frames of
  its chunk, in any order, any number of times, on any machine.

Everything that can be checked before spending time is checked first (patterns, missing frames,
outputs, the output folder), so a bad job fails in seconds, not after training.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import torch

from ivi_vfx.color import Shaper
from ivi_vfx import progressive
from ivi_vfx.config import HiresConfig, PropagateConfig, TrainConfig
from ivi_vfx.distributed import World, close_world, init_world, is_main_process
from ivi_vfx.errors import ConfigError, ShapeError, StopRequested
from ivi_vfx.io.exr import check_writable, read_header
from ivi_vfx.io.sequence import FrameSequence, compact, find_sequence, output_sequence
from ivi_vfx.jobs import JOB_FILE, JobSpec, output_stem
from ivi_vfx.mattes.fitting import fit_propagation
from ivi_vfx.mattes.keys import load_keys
from ivi_vfx.mattes.writing import write_mattes
from ivi_vfx.nets import Generator
from ivi_vfx.nets.encoder import build_encoder
from ivi_vfx.render import Compose, check_outputs, complete_frames, render
from ivi_vfx.shot import Shot, load_frames, load_shot
from ivi_vfx.train import FitResult, StepInfo, fit, load_model, resolve_device

logger = logging.getLogger(__name__)

# Share of inpaint's progress bar that training takes; rendering takes the rest.
TRAIN_SHARE = 0.9
# Share of a two-stage run (keyframes -> mattes -> clean plate) that the propagation takes.
PROPAGATE_SHARE = 0.3
# Under torchrun, how long the other ranks wait for rank 0 to propagate a keyframe job's mattes.
KEYFRAME_JOIN_TIMEOUT = timedelta(hours=2)

Report = Callable[[float], None]
"""Progress callback: the fraction done, 0..1."""
StopPoll = Callable[[], bool]
"""Polled after every step and frame; True stops the run (StopRequested)."""


@dataclass
class InpaintResult:
    """What an inpaint run did."""

    written: list[Path]
    fit: FitResult
    checkpoint: Path | None


@dataclass
class RenderResult:
    """What a render of a chunk did."""

    written: list[Path] = field(default_factory=list)
    """Frames written by this call, in frame order."""
    skipped: list[int] = field(default_factory=list)
    """Frames whose output was already complete (left as they were)."""


def default_checkpoint(out_pattern: str) -> Path:
    """Where a one-shot run keeps its checkpoint: a hidden folder beside the output frames."""
    return Path(out_pattern).parent / ".ivi" / f"{output_stem(out_pattern)}.ckpt"


# --- the shared steps ----------------------------------------------------------------------------

def _sequences(plate: str, mask: str, out: str,
               frames: list[int] | None) -> tuple[FrameSequence, FrameSequence, FrameSequence]:
    """The plate, matte and output sequences over the job's frames, checked against the disk."""
    plate_seq = find_sequence(plate, frames)
    mask_seq = find_sequence(mask, plate_seq.frames)
    out_seq = output_sequence(out, plate_seq.frames)
    if {str(p) for p in out_seq.paths()} & {str(p) for p in plate_seq.paths() + mask_seq.paths()}:
        raise ConfigError(f"--out {out} would write over the inputs; choose another output pattern")
    return plate_seq, mask_seq, out_seq


def _check_config(cfg: TrainConfig) -> None:
    cfg.validate()
    if cfg.regularized and cfg.ambiguity_weight > 0:
        build_encoder(cfg.encoder)  # a wrong weights file is an error now, not after loading the shot


def train_shot(shot: Shot, cfg: TrainConfig, *, device: torch.device, checkpoint: Path, resume: bool = True,
               report: Report | None = None, should_stop: StopPoll | None = None,
               world: World | None = None) -> FitResult:
    """Train on a loaded shot, reporting progress 0..1; StopRequested when stopped (after a checkpoint)."""
    report = report or (lambda fraction: None)

    def on_step(info: StepInfo) -> bool:
        report(info.fraction)
        return bool(should_stop and should_stop())

    logger.info("training %s preset: %d steps%s%s, width %d, batch %d, device %s", cfg.preset, cfg.steps,
                f" (the last {cfg.finetune_steps} regularized)" if cfg.regularized else "",
                f" or {cfg.budget:g} min" if cfg.budget else "", cfg.cnum, cfg.batch_size, device)
    result = fit(shot, cfg, device=device, checkpoint=checkpoint, resume=resume, on_step=on_step, world=world)
    if result.stopped:
        raise StopRequested(f"stopped at step {result.step} of {cfg.steps}; checkpoint {checkpoint}; "
                            f"run the same command again to resume")
    logger.info("trained %d steps in %.1f s", result.step, result.seconds)
    return result


def render_shot(model: Generator, shot: Shot, out: FrameSequence, *, device: torch.device, overwrite: bool,
                skip_existing: bool = False, report: Report | None = None, should_stop: StopPoll | None = None,
                again: str = "run the same command again to finish", compose: Compose | None = None) -> list[Path]:
    """Render every frame of a loaded shot, reporting progress 0..1; stops only between whole frames.

    `again` tells the user, when stopped, how to finish; `compose` renders progressively (progressive.py).
    """
    count, done = len(shot.frames), [0]

    def on_frame(frame: int, path: Path) -> None:
        done[0] += 1
        if report:
            report(done[0] / count)
        if should_stop and should_stop() and done[0] < count:
            raise StopRequested(f"stopped after writing {done[0]} of {count} frames; {again}")

    written = render(model, shot, out, device=device, overwrite=overwrite, skip_existing=skip_existing,
                     on_frame=on_frame, compose=compose)
    logger.info("wrote %d frames to %s", len(written), out.pattern)
    return written


# --- the one-shot job ----------------------------------------------------------------------------

def inpaint(plate: str, mask: str, out: str, cfg: TrainConfig, *, frames: list[int] | None = None,
            mask_channel: str | None = None, device: str = "auto", checkpoint: Path | None = None,
            resume: bool = True, overwrite: bool = False,
            on_progress: Report | None = None, should_stop: StopPoll | None = None,
            hires: HiresConfig | None = None) -> InpaintResult:
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
        hires: progressive high resolution (finer scales, tiled); None or scales 'off': the working-resolution
            fill scaled up, as 'auto' does on plates not much larger than the working size.
    """
    _check_config(cfg)
    if hires is not None:
        hires.validate()
    plate_seq, mask_seq, out_seq = _sequences(plate, mask, out, frames)
    check_outputs(out_seq, overwrite)
    torch_device = resolve_device(device)
    shot = load_shot(plate_seq, mask_seq, work_size=cfg.work_size, matte_channel=mask_channel, dilate=cfg.dilate)
    checkpoint = checkpoint or default_checkpoint(out)
    report = on_progress or (lambda fraction: None)
    result = train_shot(shot, cfg, device=torch_device, checkpoint=checkpoint, resume=resume,
                        report=lambda f: report(TRAIN_SHARE * f), should_stop=should_stop)
    # Progressive high resolution (issue 7): finer scales on top of the working-resolution model, or None.
    compose = progressive.prepare(shot, result.model, hires, torch_device)
    written = render_shot(result.model, shot, out_seq, device=torch_device, overwrite=overwrite,
                          report=lambda f: report(TRAIN_SHARE + (1 - TRAIN_SHARE) * f), should_stop=should_stop,
                          again="run the same command again with --overwrite to finish", compose=compose)
    return InpaintResult(written=written, fit=result, checkpoint=checkpoint)


def inpaint_from_keys(plate: str, key_mask: str, key_frames: list[int], out: str, cfg: TrainConfig,
                      propagation: PropagateConfig, *, frames: list[int] | None = None,
                      mask_channel: str | None = None, device: str = "auto", checkpoint: Path | None = None,
                      resume: bool = True, overwrite: bool = False, on_progress: Report | None = None,
                      should_stop: StopPoll | None = None, hires: HiresConfig | None = None) -> InpaintResult:
    """Both stages: propagate the keyframes' roto to every frame, then fill those mattes.

    The predicted mattes are kept beside the checkpoint (`.ivi/<stem>.mattes/`), so a rerun resumes
    either stage, and the output's alpha is the predicted matte. Arguments as `inpaint`, with the
    key mattes' pattern and frames instead of a matte sequence.
    """
    _check_config(cfg)
    plate_seq = find_sequence(plate, frames)
    check_outputs(output_sequence(out, plate_seq.frames), overwrite)  # fail now, not after propagating
    checkpoint = checkpoint or default_checkpoint(out)
    mattes = str(checkpoint.parent / f"{checkpoint.stem}.mattes" / "matte.####.exr")
    report = on_progress or (lambda fraction: None)
    share = PROPAGATE_SHARE
    logger.info("stage 1 of 2: propagating the roto of frames %s", compact(key_frames))
    propagate(plate, key_mask, key_frames, mattes, propagation, frames=list(plate_seq.frames),
              mask_channel=mask_channel, device=device, checkpoint=checkpoint.with_suffix(".propagate.ckpt"),
              resume=resume, overwrite=True, on_progress=lambda f: report(share * f), should_stop=should_stop)
    logger.info("stage 2 of 2: filling the predicted mattes")
    return inpaint(plate, mattes, out, cfg, frames=list(plate_seq.frames), device=device, checkpoint=checkpoint,
                   resume=resume, overwrite=overwrite, on_progress=lambda f: report(share + (1 - share) * f),
                   should_stop=should_stop, hires=hires)


# --- the farm's jobs: train once, render in chunks -----------------------------------------------

def train_job(spec: JobSpec, *, device: str = "auto", resume: bool = True, on_progress: Report | None = None,
              should_stop: StopPoll | None = None) -> FitResult:
    """Train a job's shot into its checkpoint folder (job.json + model.ckpt [+ scales.ckpt]).

    A keyframe job (`key_mask`) first predicts every frame's matte into the folder (mattes/, with
    propagate.ckpt), and trains on those. Inside torchrun (several processes), rank 0 alone
    propagates, writes the folder and reports progress, and the ranks train data-parallel.
    Running it again after a stop or a kill resumes from the checkpoints.
    On a plate large enough for progressive high resolution, rank 0 then trains the finer scales
    (minutes) into scales.ckpt, unless the folder already holds ones made for this model and settings.
    """
    cfg = spec.train_config(str(resolve_device(device)))
    _check_config(cfg)
    hires = spec.hires_config()
    report = on_progress or (lambda fraction: None)
    share, timeout = 0.0, None
    if spec.key_mask is not None:
        share, timeout = PROPAGATE_SHARE, KEYFRAME_JOIN_TIMEOUT
        if is_main_process():  # before joining the group: the other ranks wait there for rank 0
            _propagate_job(spec, device, resume, lambda f: report(share * f), should_stop)
    world, torch_device = init_world(resolve_device(device), timeout)
    finished = False
    try:
        # After joining: under torchrun, a keyframe job's mattes exist once rank 0 has joined.
        plate_seq, mask_seq, out_seq = _sequences(spec.plate, spec.mattes, spec.out, spec.frame_list())
        check_writable(out_seq.path(out_seq.frames[0]).parent)  # a render would fail later; say so now
        if world.is_main:
            # The job as trained, with what was decided here: the frames on disk and the preset.
            spec.replace(frames=compact(plate_seq.frames), preset=cfg.preset).save(spec.checkpoint_dir / JOB_FILE)
        shot = load_shot(plate_seq, mask_seq, work_size=cfg.work_size, matte_channel=spec.mattes_channel,
                         dilate=cfg.dilate)
        result = train_shot(shot, cfg, device=torch_device, checkpoint=spec.model_path, resume=resume,
                            report=(lambda f: report(share + (1 - share) * f)) if world.is_main else None,
                            should_stop=should_stop, world=world)
        finished = True
    finally:
        close_world(world, finished=finished)
    if world.is_main:
        _train_scales(spec, shot, result, hires, torch_device, should_stop)
    return result


def _propagate_job(spec: JobSpec, device: str, resume: bool, report: Report, should_stop: StopPoll | None) -> None:
    """Predict a keyframe job's mattes into its checkpoint folder (mattes/matte.####.exr)."""
    plate_seq = find_sequence(spec.plate, spec.frame_list())
    out_seq = output_sequence(spec.out, plate_seq.frames)
    check_writable(out_seq.path(out_seq.frames[0]).parent)  # before minutes of propagation
    logger.info("propagating the roto of frames %s to every frame", compact(spec.key_frame_list()))
    propagate(spec.plate, spec.key_mask or "", spec.key_frame_list(), spec.mattes,
              spec.propagate_config(str(resolve_device(device))), frames=list(plate_seq.frames),
              mask_channel=spec.mask_channel, device=device, checkpoint=spec.checkpoint_dir / "propagate.ckpt",
              resume=resume, overwrite=True, on_progress=report, should_stop=should_stop)


def _train_scales(spec: JobSpec, shot: Shot, result: FitResult, hires: HiresConfig, device: torch.device,
                  should_stop: StopPoll | None) -> None:
    """Train the finer scales a job's plate needs into scales.ckpt (or remove a stale one when it needs none)."""
    path = spec.scales_path
    if progressive.levels_current(path, hires, result.step):
        logger.info("finer scales already trained for this model: %s", path)
        return
    path.unlink(missing_ok=True)  # stale (another model or settings): never rendered with
    levels = progressive.fit_levels(shot, hires.for_device(device.type), device, should_stop=should_stop)
    if levels:  # the finest level spans the plate's data window
        progressive.save_levels(path, levels, hires, full=levels[-1].size, model_step=result.step)
        logger.info("wrote %d finer scale(s): %s", len(levels), path)


def render_job(spec: JobSpec, frames: list[int] | None = None, *, device: str = "auto", overwrite: bool = False,
               on_progress: Report | None = None, should_stop: StopPoll | None = None) -> RenderResult:
    """Render some frames of a trained job from its checkpoint folder; idempotent.

    Loads only `frames` (default: every trained frame), with the shaper and geometry the checkpoint
    carries, so a chunk costs its own frames whatever the shot's length. Frames whose output is
    already complete are skipped unless `overwrite`; every write is atomic, so a render killed at any
    point leaves whole frames only, and running it again finishes the rest.
    """
    torch_device = resolve_device(device)
    model, data = load_model(spec.model_path, torch_device)
    trained = data["shot"]
    frames = list(trained["frames"]) if frames is None else frames
    outside = sorted(set(frames) - set(trained["frames"]))
    if outside:
        raise ConfigError(f"{spec.model_path}: frames {compact(outside)} were not trained (the shot is "
                          f"{compact(trained['frames'])}); render frames of the shot, or train on these frames")
    plate_seq, mask_seq, out_seq = _sequences(spec.plate, spec.mattes, spec.out, frames)
    check_writable(out_seq.path(out_seq.frames[0]).parent)
    report = on_progress or (lambda fraction: None)
    skipped = [] if overwrite else complete_frames(out_seq)
    todo = [f for f in out_seq.frames if f not in skipped]
    if skipped:
        logger.info("skipping %d frames already complete (%s); --overwrite renders them again",
                    len(skipped), compact(skipped))
    if not todo:
        report(1.0)
        return RenderResult(skipped=skipped)
    shot = load_shot(FrameSequence(plate_seq.pattern, tuple(todo)), FrameSequence(mask_seq.pattern, tuple(todo)),
                     work_size=int(data["config"]["work_size"]), matte_channel=trained["matte_channel"],
                     dilate=int(trained["dilate"]), shaper=Shaper(**data["shaper"]))
    if list(shot.geometry.full) != list(trained["full"]):
        raise ShapeError(f"{plate_seq.pattern} is {shot.geometry.full[1]}x{shot.geometry.full[0]} but "
                         f"{spec.model_path} was trained on {trained['full'][1]}x{trained['full'][0]}; "
                         f"train again on this plate")
    compose = _scales_renderer(spec, model, shot, int(data["step"]), torch_device)
    base = len(skipped) / len(frames)
    written = render_shot(model, shot, FrameSequence(out_seq.pattern, tuple(todo)), device=torch_device,
                          overwrite=overwrite, skip_existing=not overwrite,
                          report=lambda f: report(base + (1 - base) * f), should_stop=should_stop, compose=compose)
    return RenderResult(written=written, skipped=skipped)


def _scales_renderer(spec: JobSpec, model: Generator, shot: Shot, model_step: int,
                     device: torch.device) -> Compose | None:
    """The progressive renderer of a job's finer scales, or None when its folder holds none."""
    path = spec.scales_path
    if not path.is_file():
        return None
    levels, data = progressive.load_levels(path, device)
    if int(data["model_step"]) != model_step:
        raise ConfigError(f"{path}: made for the model at step {data['model_step']}, but {spec.model_path} is at "
                          f"step {model_step}; run `ivi-render train` again to bring the finer scales up to date")
    header = read_header(shot.plate.path(shot.frames[0]))  # the data window, without reading pixels
    h, w = header.height, header.width
    if [h, w] != list(data["full"]):
        raise ShapeError(f"{shot.plate.path(shot.frames[0])}: its data window is {w}x{h}, but {path} was trained "
                         f"on {data['full'][1]}x{data['full'][0]}; train again on this plate")
    hires = HiresConfig.from_dict(data["hires"]).for_device(device.type)
    logger.info("rendering through %d finer scale(s) from %s", len(levels), path)
    return progressive.Progressive(model=model, levels=levels, shot=shot, cfg=hires, device=device)


def run_job(spec: JobSpec, *, device: str = "auto", resume: bool = True, overwrite: bool = False,
            on_progress: Report | None = None, should_stop: StopPoll | None = None) -> RenderResult:
    """A whole job on this machine: train (or resume), then render every frame not yet complete.

    Under torchrun every rank trains and rank 0 alone renders.
    """
    report = on_progress or (lambda fraction: None)
    train_job(spec, device=device, resume=resume, on_progress=lambda f: report(TRAIN_SHARE * f),
              should_stop=should_stop)
    if not is_main_process():
        return RenderResult()
    return render_job(spec, device=device, overwrite=overwrite, should_stop=should_stop,
                      on_progress=lambda f: report(TRAIN_SHARE + (1 - TRAIN_SHARE) * f))


# --- mask propagation: keyframe roto -> mattes for every frame ---


def default_propagation_checkpoint(out_pattern: str) -> Path:
    """Where a propagation run keeps its checkpoint: a hidden folder beside the output mattes."""
    return Path(out_pattern).parent / ".ivi" / f"{output_stem(out_pattern)}.propagate.ckpt"


def propagate(plate: str, key_mask: str, key_frames: list[int], out: str, cfg: PropagateConfig, *,
              frames: list[int] | None = None, mask_channel: str | None = None, device: str = "auto",
              checkpoint: Path | None = None, resume: bool = True, overwrite: bool = False,
              on_progress: Callable[[float], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> list[Path]:
    """Predict the object's matte on every frame from roto'd keyframes, and write them as EXRs.

    Args:
        plate: the plate pattern; key_mask: the key mattes' pattern (only `key_frames` are read).
        out: the output mattes' pattern (one channel, 'A').
        frames: the frames to process (default every plate frame on disk); the keys must be among them.
        Others as pipeline.inpaint.

    Returns:
        The written matte paths, in frame order.

    Raises:
        StopRequested: should_stop said so (a checkpoint was written; running again resumes).
    """
    cfg.validate()
    if not key_frames:
        raise ConfigError("no key frames given; pass --key-frames with the frames whose matte you drew, e.g. 1001")
    plate_seq = find_sequence(plate, frames)
    key_seq = find_sequence(key_mask, sorted(set(key_frames)))
    out_seq = output_sequence(out, plate_seq.frames)
    if {str(p) for p in out_seq.paths()} & {str(p) for p in plate_seq.paths() + key_seq.paths()}:
        raise ConfigError(f"--out {out} would write over the inputs; choose another output pattern")
    check_outputs(out_seq, overwrite)
    torch_device = resolve_device(device)
    keys = load_keys(load_frames(plate_seq, work_size=cfg.work_size), key_seq, mask_channel)
    checkpoint = checkpoint or default_propagation_checkpoint(out)
    report = on_progress or (lambda fraction: None)
    train_share = 0.9

    def on_step(step: int, fraction: float) -> bool:
        report(train_share * fraction)
        return bool(should_stop and should_stop())

    logger.info("propagating %s preset: %d steps%s, width %d, device %s", cfg.preset, cfg.steps,
                f" or {cfg.budget:g} min" if cfg.budget else "", cfg.width, torch_device)
    result = fit_propagation(keys, cfg, device=torch_device, checkpoint=checkpoint, resume=resume, on_step=on_step)
    if result.stopped:
        raise StopRequested(f"stopped at propagation step {result.step} of {cfg.steps}; checkpoint {checkpoint}; "
                            f"run the same command again to resume")
    done = [0]

    def on_frame(frame: int, path: Path) -> None:
        done[0] += 1
        report(train_share + (1 - train_share) * done[0] / len(out_seq))

    written = write_mattes(result.model, keys, out_seq, cfg, device=torch_device, overwrite=overwrite,
                           on_frame=on_frame)
    logger.info("wrote %d mattes to %s", len(written), out)
    return written
