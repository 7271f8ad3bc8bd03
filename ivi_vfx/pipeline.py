"""The one job path: a JobSpec -> (mattes) -> train -> render, one folder per job.

Every command that trains or renders builds one JobSpec (jobs.py) and runs it through these:

- `run_job`: the whole job on this machine (`ivi-render inpaint`, `propagate`, `run`, the demo);
- `train_job`: a keyframe job's mask propagation, then the fill's training and its finer scales,
  into the job folder (`ivi-render train`, a farm's Train task);
- `render_job`: frames from the job folder, in any order, any number of times, on any machine
  (`ivi-render render`, a farm's chunk); idempotent.

A keyframe job (`key_mask`) runs two stages, each resumable from its checkpoint in the folder:
`predict_mattes` (mask propagation: the key roto -> a matte for every frame, written to the
folder's mattes/, or to `out` for a job that writes mattes), then the fill. Everything that can be
checked before spending time is checked first (patterns, missing frames, outputs, the output
folder), so a bad job fails in seconds, not after training.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch

from ivi_vfx import progressive
from ivi_vfx.carry import Carry, CarrySampler, agreement, carry_shot, lift, load_carry, save_carry
from ivi_vfx.color import Shaper
from ivi_vfx.config import TrainConfig
from ivi_vfx.distributed import World, close_world, init_world, is_main_process
from ivi_vfx.errors import ConfigError, ShapeError, StopRequested
from ivi_vfx.hires import HiresConfig
from ivi_vfx.io.exr import check_writable, read_exr, read_header
from ivi_vfx.io.sequence import FrameSequence, compact, find_sequence, output_sequence, parse_frames
from ivi_vfx.jobs import JOB_FILE, JobSpec
from ivi_vfx.mattes.check import CHECK_FILE, log_flagged, read_checks, write_checks
from ivi_vfx.mattes.fitting import fit_propagation
from ivi_vfx.mattes.keys import load_keys
from ivi_vfx.mattes.writing import write_mattes
from ivi_vfx.nets import Generator
from ivi_vfx.nets.encoder import build_encoder
from ivi_vfx.render import Compose, check_outputs, complete_frames, render
from ivi_vfx.report import TrainingReport
from ivi_vfx.shot import Shot, load_frames, load_shot, plate_rgb_work
from ivi_vfx.train import FitResult, StepInfo, fit, load_model, resolve_device

logger = logging.getLogger(__name__)

# Share of a whole job's progress that training takes; rendering takes the rest.
TRAIN_SHARE = 0.9
# Share of a keyframe job's training that its mask propagation takes.
PROPAGATE_SHARE = 0.3
# Share of the mask propagation that its training takes; writing the mattes takes the rest.
PROPAGATE_TRAIN_SHARE = 0.9
# Under torchrun, how long the other ranks wait for rank 0 to propagate a keyframe job's mattes.
KEYFRAME_JOIN_TIMEOUT = timedelta(hours=2)
EXISTING = ("skip", "refuse")
"""What `run_job` does with output frames already on disk (see there)."""

Report = Callable[[float], None]
"""Progress callback: the fraction done, 0..1."""
StopPoll = Callable[[], bool]
"""Polled after every step and frame; True stops the run (StopRequested)."""


def _silent(fraction: float) -> None:
    """A Report that reports nothing."""


@dataclass
class JobResult:
    """What a run or a render of a job did."""

    written: list[Path] = field(default_factory=list)
    """Frames written by this call, in frame order (mattes, for a job that writes mattes)."""
    skipped: list[int] = field(default_factory=list)
    """Frames whose output was already complete (left as they were)."""
    fit: FitResult | None = None
    """The fill's training, when this call trained."""


@dataclass
class _Trained:
    """What training leaves in memory for the render that follows it on the same machine."""

    fit: FitResult
    shot: Shot
    """Every frame at working resolution as the network trained on it (carried pixels in), with the
    shaper the checkpoint keeps: the render reads the same values from disk again otherwise."""
    carry: Carry | None
    """What other frames show of each matte, when the job carries."""
    whole: Shot
    """The shot as loaded, before the carry lifted it: its holes are the whole mattes."""


# --- the whole job ---------------------------------------------------------------------------------

def run_job(spec: JobSpec, *, device: str = "auto", resume: bool = True, overwrite: bool = False,
            existing: str = "skip", on_progress: Report | None = None, should_stop: StopPoll | None = None,
            cfg: TrainConfig | None = None, hires: HiresConfig | None = None) -> JobResult:
    """A whole job on this machine: train (or resume), then render every frame not yet complete.

    Args:
        existing: what an output frame already on disk means: 'skip' (a complete frame is kept, as a
            farm chunk does: `ivi-render run`), or 'refuse' (an error naming the fix, before any
            training: `inpaint`, `propagate`). `overwrite` writes every frame again either way.
        Others as `train_job` and `render_job`.

    Under torchrun every rank trains and rank 0 alone renders.
    """
    if existing not in EXISTING:
        raise ValueError(f"existing must be one of {EXISTING}, not {existing!r}")
    report = on_progress or _silent
    plate = find_sequence(spec.plate, spec.frame_list())
    if spec.writes == "mattes":  # all of them or none: an existing matte is an error without overwrite
        written = predict_mattes(spec, plate, device=device, resume=resume, overwrite=overwrite,
                                 report=report, should_stop=should_stop)
        return JobResult(written=written)
    out = _outputs(spec, plate, refuse=existing == "refuse", overwrite=overwrite)
    again = "run the same command again with --overwrite to finish" if existing == "refuse" else None
    trained = _train(spec, plate, out, device=device, resume=resume, report=lambda f: report(TRAIN_SHARE * f),
                     should_stop=should_stop, cfg=cfg, hires=hires)
    if not is_main_process():
        return JobResult(fit=trained.fit)
    result = _render(spec, None, device=device, overwrite=overwrite, should_stop=should_stop,
                     report=lambda f: report(TRAIN_SHARE + (1 - TRAIN_SHARE) * f), trained=trained, again=again)
    result.fit = trained.fit
    return result


# --- training ----------------------------------------------------------------------------------------

def train_job(spec: JobSpec, *, device: str = "auto", resume: bool = True, on_progress: Report | None = None,
              should_stop: StopPoll | None = None, cfg: TrainConfig | None = None,
              hires: HiresConfig | None = None) -> FitResult:
    """Train a job into its folder (job.json + model.ckpt [+ scales.ckpt]).

    A keyframe job (`key_mask`) first predicts every frame's matte into the folder (mattes/, with
    propagate.ckpt), and trains on those. Inside torchrun (several processes), rank 0 alone
    propagates, writes the folder and reports progress, and the ranks train data-parallel.
    Running it again after a stop or a kill resumes from the checkpoints.
    On a plate large enough for progressive high resolution, rank 0 then trains the finer scales
    (minutes) into scales.ckpt, unless the folder already holds ones made for this model and settings.

    Args:
        cfg, hires: the fill's and the finer scales' configurations in place of the spec's, for tests
            and benchmarks that train what no preset and no option names (job.json does not keep them:
            a render reads the checkpoints' own).
    """
    plate = find_sequence(spec.plate, spec.frame_list())
    out = _outputs(spec, plate, refuse=False, overwrite=False)
    return _train(spec, plate, out, device=device, resume=resume, report=on_progress or _silent,
                  should_stop=should_stop, cfg=cfg, hires=hires).fit


def _outputs(spec: JobSpec, plate: FrameSequence, *, refuse: bool, overwrite: bool) -> FrameSequence:
    """The clean plate's frames, checked before any training: not over the plate, in a folder that can be
    written (a render would fail later), and with `refuse`, none on disk unless `overwrite`."""
    _needs_fill(spec, "train")
    out = output_sequence(spec.out, plate.frames)
    _check_not_inputs(out, plate)
    if refuse:
        check_outputs(out, overwrite)  # checks the folder too
    else:
        check_writable(out.path(out.frames[0]).parent)
    return out


def _needs_fill(spec: JobSpec, what: str) -> None:
    """ConfigError for a job that writes mattes alone, which has no fill to `what`."""
    if spec.writes != "clean":
        raise ConfigError(f"the job {spec.job_name!r} writes mattes, and has no fill to {what}; run it with "
                          f"`ivi-render run` (or `ivi-render propagate`)")


def _train(spec: JobSpec, plate: FrameSequence, out: FrameSequence, *, device: str, resume: bool, report: Report,
           should_stop: StopPoll | None, cfg: TrainConfig | None, hires: HiresConfig | None) -> _Trained:
    """train_job over the plate's frames as found on disk, into `out` as `_outputs` checked it."""
    cfg = cfg or spec.train_config(str(resolve_device(device)))
    _check_config(cfg)
    hires = (hires or spec.hires_config()).validate()
    share, timeout = 0.0, None
    if spec.key_mask is not None:
        share, timeout = PROPAGATE_SHARE, KEYFRAME_JOIN_TIMEOUT
        if is_main_process():  # before joining the group: the other ranks wait there for rank 0
            logger.info("stage 1 of 2: propagating the roto of frames %s", spec.key_frames)
            predict_mattes(spec, plate, device=device, resume=resume, overwrite=True,
                           report=lambda f: report(share * f), should_stop=should_stop)
            logger.info("stage 2 of 2: filling the predicted mattes")
    world, torch_device = init_world(resolve_device(device), timeout)
    finished = False
    try:
        # After joining: under torchrun, a keyframe job's mattes exist once rank 0 has joined.
        mask = find_sequence(spec.fill_mask, plate.frames)
        _check_not_inputs(out, mask)
        if world.is_main:
            # The job as trained, with what was decided here: the frames on disk and the preset.
            spec.replace(frames=compact(plate.frames), preset=cfg.preset).save(spec.folder / JOB_FILE)
        shot = load_shot(plate, mask, work_size=cfg.work_size, mask_channel=spec.fill_mask_channel,
                         dilate=cfg.dilate)
        carry, whole = None, shot
        if cfg.carry:
            carry = _carry(spec, shot, save=world.is_main)
            shot = lift(shot, carry)
            if not shot.holes.any():
                logger.info("carry: other frames show every pixel of every matte; nothing is left to invent")
        elif world.is_main:
            spec.carry_path.unlink(missing_ok=True)  # another run's: never rendered with
        result = _fit(shot, cfg, device=torch_device, checkpoint=spec.model_path, resume=resume,
                      report=(lambda f: report(share + (1 - share) * f)) if world.is_main else None,
                      should_stop=should_stop, world=world)
        finished = True
    finally:
        close_world(world, finished=finished)
    if world.is_main:
        _train_scales(spec, shot, result, hires, torch_device, should_stop)
    return _Trained(fit=result, shot=shot, carry=carry, whole=whole)


def _carry(spec: JobSpec, shot: Shot, *, save: bool) -> Carry:
    """The job's known-pixel carry over a loaded shot: the folder's when it was traced for this shot and
    these clean references, else traced now (seconds to a minute) and, with `save`, kept in the folder."""
    clean = _clean_sequence(spec, shot)
    digest = hashlib.sha256(f"{shot.fingerprint()} {clean.pattern if clean else ''} "
                            f"{list(clean.frames) if clean else []}".encode()).hexdigest()[:16]
    carry = load_carry(spec.carry_path, digest)
    if carry is not None:
        logger.info("carry: reusing %s", spec.carry_path)
        return carry
    h, w = shot.geometry.work
    has_clean = np.zeros(len(shot.frames), bool)
    pictures = np.zeros((len(shot.frames), h, w, 3), np.float32)
    for frame in clean.frames if clean else ():
        t = shot.index(frame)
        image = read_exr(clean.path(frame))  # type: ignore[union-attr]
        size = image.display_window[3], image.display_window[2]
        if size != shot.geometry.full:
            raise ShapeError(f"{image.path} is {size[1]}x{size[0]} but the plate {shot.plate.path(frame)} is "
                             f"{shot.geometry.full[1]}x{shot.geometry.full[0]}; give clean frames in the plate's "
                             f"format (Reformat them to the plate)")
        has_clean[t] = True
        pictures[t] = plate_rgb_work(image, shot.geometry).permute(1, 2, 0).numpy()
    carry = carry_shot(shot, has_clean, pictures)
    if save:
        save_carry(spec.carry_path, carry, digest)
    return carry


def _clean_sequence(spec: JobSpec, shot: Shot) -> FrameSequence | None:
    """The job's clean reference frames that lie in the shot (all of them must), or None without any."""
    if spec.clean is None:
        return None
    wanted = None if spec.clean_frames is None else sorted(parse_frames(spec.clean_frames))
    clean = find_sequence(spec.clean, wanted)
    outside = sorted(set(clean.frames) - set(shot.frames))
    if wanted is None:  # every clean frame on disk: those of the shot's frames
        inside = [f for f in clean.frames if f in shot.frames]
        if not inside:
            raise ConfigError(f"--clean {spec.clean}: none of its frames {compact(list(clean.frames))} is a frame of "
                              f"the plate ({compact(list(shot.frames))}); number the clean frames as the plate's "
                              f"frames they show (a TimeOffset in Nuke), or choose them with --clean-frames")
        return find_sequence(spec.clean, inside)
    if outside:
        raise ConfigError(f"--clean-frames {spec.clean_frames}: frames {compact(outside)} are not frames of the plate "
                          f"({compact(list(shot.frames))}); give clean frames that the shot holds")
    return clean


def _check_config(cfg: TrainConfig) -> None:
    cfg.validate()
    if cfg.regularized and cfg.ambiguity_weight > 0:
        build_encoder(cfg.encoder)  # a wrong weights file is an error now, not after loading the shot


def _check_not_inputs(out: FrameSequence, *inputs: FrameSequence) -> None:
    """ConfigError when an output frame would replace an input frame."""
    if {str(p) for p in out.paths()} & {str(p) for seq in inputs for p in seq.paths()}:
        raise ConfigError(f"--out {out.pattern} would write over the inputs; choose another output pattern")


def _fit(shot: Shot, cfg: TrainConfig, *, device: torch.device, checkpoint: Path, resume: bool,
         report: Report | None, should_stop: StopPoll | None, world: World) -> FitResult:
    """Train the fill on a loaded shot, reporting progress 0..1; StopRequested when stopped (after a checkpoint).
    Rank 0 writes the job folder's report/ as it trains (metrics.csv, plot.png, previews: report.py)."""
    judge = TrainingReport(checkpoint.parent, shot) if world.is_main else None

    def on_step(info: StepInfo) -> bool:
        if report is not None:
            report(info.fraction)
        if judge is not None:
            judge.step(info)
        return bool(should_stop and should_stop())

    logger.info("training %s preset: %d steps%s%s, width %d, batch %d, device %s", cfg.preset, cfg.steps,
                f" (the last {cfg.finetune_steps} regularized)" if cfg.regularized else "",
                f" or {cfg.budget:g} min" if cfg.budget else "", cfg.cnum, cfg.batch_size, device)
    result: FitResult | None = None
    try:
        result = fit(shot, cfg, device=device, checkpoint=checkpoint, resume=resume, on_step=on_step, world=world)
    finally:
        if judge is not None:  # the last plot, and the last preview of the model as trained
            judge.close(result.model if result is not None else None)
    if result.stopped:
        raise StopRequested(f"stopped at step {result.step} of {cfg.steps}; checkpoint {checkpoint}; "
                            f"run the same command again to resume")
    logger.info("trained %d steps in %.1f s", result.step, result.seconds)
    return result


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


# --- mask propagation: keyframe roto -> mattes for every frame ------------------------------------

def predict_mattes(spec: JobSpec, plate: FrameSequence, *, device: str, resume: bool, overwrite: bool,
                   report: Report, should_stop: StopPoll | None) -> list[Path]:
    """A keyframe job's first stage: train on the key roto, write every frame's matte (spec.predicted_mattes).

    Returns:
        The written matte paths, in frame order.

    Raises:
        StopRequested: should_stop said so (a checkpoint was written; running again resumes).
    """
    torch_device = resolve_device(device)
    cfg = spec.propagate_config(str(torch_device))
    if spec.key_mask is None:  # a JobSpec with writes 'mattes' has one; a clean job calls this only with one
        raise ConfigError(f"the job {spec.job_name!r} has no key roto to predict mattes from; give --key-mask")
    keys_seq = find_sequence(spec.key_mask, sorted(set(spec.key_frame_list())))
    out = output_sequence(spec.predicted_mattes, plate.frames)
    _check_not_inputs(out, plate, keys_seq)
    check_outputs(out, overwrite)
    keys = load_keys(load_frames(plate, work_size=cfg.work_size), keys_seq, spec.mask_channel)

    def on_step(step: int, fraction: float) -> bool:
        report(PROPAGATE_TRAIN_SHARE * fraction)
        return bool(should_stop and should_stop())

    logger.info("propagating %s preset: %d steps%s, width %d, device %s", cfg.preset, cfg.steps,
                f" or {cfg.budget:g} min" if cfg.budget else "", cfg.width, torch_device)
    result = fit_propagation(keys, cfg, device=torch_device, checkpoint=spec.propagate_path, resume=resume,
                             on_step=on_step)
    if result.stopped:
        raise StopRequested(f"stopped at propagation step {result.step} of {cfg.steps}; checkpoint "
                            f"{spec.propagate_path}; run the same command again to resume")
    done = [0]

    def on_frame(frame: int, path: Path) -> None:
        done[0] += 1
        report(PROPAGATE_TRAIN_SHARE + (1 - PROPAGATE_TRAIN_SHARE) * done[0] / len(out))

    # A correction run (keys added on the same plate) keeps the frames near the old keys as they were,
    # unless they changed for the better: the previous run's checks say how sure it was of each.
    check_path = spec.folder / CHECK_FILE
    previous = read_checks(check_path) if result.refined_from is not None else None
    new_keys = set(keys.key_frames) - set(result.refined_from or ())
    written, checks = write_mattes(result.model, keys, out, cfg, device=torch_device, overwrite=overwrite,
                                   on_frame=on_frame, previous=previous, new_keys=new_keys)
    write_checks(check_path, checks)
    kept = [c.frame for c in checks if c.kept]
    logger.info("wrote %d mattes to %s%s; each frame's check: %s", len(written) - len(kept), out.pattern,
                f" (kept {len(kept)} of the previous run's: {compact(kept)})" if kept else "", check_path)
    log_flagged(checks)
    return written


# --- rendering ---------------------------------------------------------------------------------------

def render_job(spec: JobSpec, frames: list[int] | None = None, *, device: str = "auto", overwrite: bool = False,
               on_progress: Report | None = None, should_stop: StopPoll | None = None) -> JobResult:
    """Render some frames of a trained job from its folder; idempotent.

    Loads only `frames` (default: every trained frame), with the shaper and geometry the checkpoint
    carries, so a chunk costs its own frames whatever the shot's length. Frames whose output is
    already complete are skipped unless `overwrite`; every write is atomic, so a render killed at any
    point leaves whole frames only, and running it again finishes the rest.
    """
    return _render(spec, frames, device=device, overwrite=overwrite, report=on_progress or _silent,
                   should_stop=should_stop)


def _render(spec: JobSpec, frames: list[int] | None, *, device: str, overwrite: bool, report: Report,
            should_stop: StopPoll | None, trained: _Trained | None = None, again: str | None = None) -> JobResult:
    """render_job; with `trained` (run_job, after `_train` on this machine), its shot is not read again.
    `again` tells the user, when stopped, how to finish (default: the same command again)."""
    _needs_fill(spec, "render")
    torch_device = resolve_device(device)
    model, data = load_model(spec.model_path, torch_device)
    shot_data = data["shot"]
    frames = list(shot_data["frames"]) if frames is None else frames
    outside = sorted(set(frames) - set(shot_data["frames"]))
    if outside:
        raise ConfigError(f"{spec.model_path}: frames {compact(outside)} were not trained (the shot is "
                          f"{compact(shot_data['frames'])}); render frames of the shot, or train on these frames")
    out = output_sequence(spec.out, frames)
    check_writable(out.path(out.frames[0]).parent)
    skipped = [] if overwrite else complete_frames(out)
    todo = [f for f in out.frames if f not in skipped]
    if skipped:
        logger.info("skipping %d frames already complete (%s); --overwrite renders them again",
                    len(skipped), compact(skipped))
    if not todo:
        report(1.0)
        return JobResult(skipped=skipped)
    # The network's own fill of the whole matte weighs the carried pixels, and the neighbours' fills make
    # each frame's agree, once it has learnt the shot (a job whose every matte pixel was carried never
    # trains: its weights are the initial ones).
    learnt = bool(data["config"].get("carry")) and bool(data.get("trained"))
    if trained is not None:
        shot, carry, whole = trained.shot, trained.carry, trained.whole
    else:
        loaded = agreement.neighbours(todo, list(shot_data["frames"])) if learnt else todo
        plate = find_sequence(spec.plate, loaded)
        shot = load_shot(plate, find_sequence(spec.fill_mask, loaded), work_size=int(data["config"]["work_size"]),
                         mask_channel=shot_data["mask_channel"], dilate=int(shot_data["dilate"]),
                         shaper=Shaper(**data["shaper"]))
        carry = load_carry(spec.carry_path) if data["config"].get("carry") else None
        if data["config"].get("carry") and carry is None:
            raise ConfigError(f"{spec.model_path} was trained with the carry, but {spec.carry_path} is missing; "
                              f"run `ivi-render train` again to trace it")
        whole = shot
        if carry is not None:
            shot = lift(shot, carry)
    sampler = CarrySampler(carry, find_sequence(spec.plate, list(carry.frames)) if carry else shot.plate,
                           _clean_sequence(spec, shot) if carry and carry.clean else None, shot.shaper)
    if list(shot.geometry.full) != list(shot_data["full"]):
        raise ShapeError(f"{spec.plate} is {shot.geometry.full[1]}x{shot.geometry.full[0]} but "
                         f"{spec.model_path} was trained on {shot_data['full'][1]}x{shot_data['full'][0]}; "
                         f"train again on this plate")
    compose = _scales_renderer(spec, model, shot, int(data["step"]), torch_device)
    base = len(skipped) / len(frames)
    count, done = len(todo), [0]

    def on_frame(frame: int, path: Path) -> None:
        done[0] += 1
        report(base + (1 - base) * done[0] / count)
        if should_stop and should_stop() and done[0] < count:
            raise StopRequested(f"stopped after writing {done[0]} of {count} frames; "
                                f"{again or 'run the same command again to finish'}")

    written = render(model, shot, out, frames=todo, device=torch_device, overwrite=overwrite,
                     skip_existing=not overwrite, on_frame=on_frame, compose=compose, carry=sampler,
                     whole=whole if learnt else None)
    logger.info("wrote %d frames to %s", len(written), out.pattern)
    return JobResult(written=written, skipped=skipped)


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
