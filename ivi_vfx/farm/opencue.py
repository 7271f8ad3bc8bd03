"""OpenCue job XML for a JobSpec, built with PyOutline (extra `opencue`); never talks to Cuebot itself.

Two layers: `train` (one frame, a GPU and the GPU memory the preset needs, tag `gpu`) and `render`
over the frames in chunks, which depends on the whole train layer (LAYER_ON_LAYER: `depend_all`;
PyOutline's `depend_on` would be frame by frame). Cuebot replaces `#FRAME_START#` and `#FRAME_END#`
with each chunk's range, and RQD writes the command into a file that a POSIX shell runs, so every
argument is `shlex.quote`d and paths holding one of Cuebot's tokens are refused. The show and shot
come from the options, else the environment a studio's `setshot` sets (`SHOW`, `SHOT`), else
PyOutline's configured default show and the job's name. Submit with `ivi-render submit` (pycue's
`opencue.api.launchSpec`, where CUEBOT_HOSTS or OPENCUE_CONFIG_FILE says where Cuebot is) or your
site's tools. Windows RQD nodes run the command as a batch file; these jobs are for POSIX nodes.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from ivi_vfx.errors import ConfigError
from ivi_vfx.jobs import JOB_FILE, JobSpec

from . import FarmOptions, job_frames
from .commands import check_device, first_frame, job_paths, render_args, train_args
from .quoting import check_path, posix

JOB_XML = "job.xml"
CUEBOT_TOKENS = ((r"#(?:IFRAME|ZFRAME|FRAME_START|FRAME_END|FRAME_CHUNK|FRAMESPEC|LAYER|JOB|FRAME)#",
                  "Cuebot replaces in a layer's command"),)
REFERENCE_PEAK_GB = 9.4
"""Peak memory of one training step of the paper's network on 5 frames of 320x600 (docs/results.md,
bench/speed.py: 9,408 MB on a CPU, reconstruction only); the same tensors live on a GPU."""
REFERENCE_PIXELS = 5 * 320 * 600
FINETUNE_FACTOR = 1.64
"""Peak memory with both regularizers over reconstruction alone (docs/results.md, bench/ablation.py:
1,590 MB against 970 MB)."""
CUDA_CONTEXT_GB = 1.0


def gpu_memory(spec: JobSpec) -> str:
    """GPU memory for the Train layer, from the job's GPU configuration (its preset and changes).

    Scaled from measured peaks (REFERENCE_PEAK_GB, FINETUNE_FACTOR) by the frames a step trains at
    the working size (a 16:9 frame), plus a CUDA context, rounded up to whole GB: ``18g`` for the
    final and paper presets, ``11g`` for quick. An estimate from CPU measurements, not a GPU profile.
    """
    cfg = spec.train_config("cuda")
    side = cfg.crop or cfg.work_size
    pixels = cfg.batch_size * side * (side if cfg.crop else round(side * 9 / 16))
    peak = REFERENCE_PEAK_GB * pixels / REFERENCE_PIXELS * cfg.cnum / 48
    if cfg.finetune_steps:
        peak *= FINETUNE_FACTOR
    return f"{math.ceil(peak + CUDA_CONTEXT_GB)}g"


def job_xml(spec: JobSpec, job_file: Path, options: FarmOptions = FarmOptions()) -> str:
    """The OpenCue job spec XML (Cuebot's cjsl format) for the job."""
    try:
        import outline  # noqa: PLC0415  (extra 'opencue')
        import outline.cuerun  # noqa: PLC0415
        import outline.modules.shell  # noqa: PLC0415
        import outline.util  # noqa: PLC0415
        from outline.backend import cue  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError("writing an OpenCue job needs PyOutline: pip install 'ivi-vfx[opencue]'") from exc
    check_device(options.device)
    paths, job = job_paths(spec), str(job_file)
    for key, value in {**paths, "job file": job, "ivi-render": options.ivi_render}.items():
        check_path(key, value, CUEBOT_TOKENS)
    show = options.show or os.environ.get("SHOW") or outline.util.get_show()
    shot = options.shot or os.environ.get("SHOT") or spec.job_name
    named: tuple[tuple[str, str | None], ...] = (("show", show), ("shot", shot), ("user", options.user))
    for label, text in named:
        if text is not None:
            check_path(label, text, CUEBOT_TOKENS)
    frames = job_frames(spec)
    ol = outline.Outline(f"ivi_{spec.job_name}", shot=shot, show=show)
    train = outline.modules.shell.Shell(
        "train", command=posix([options.ivi_render, *train_args(spec, job, paths, options.device)]),
        range=str(first_frame(frames)), chunk=1, tags="gpu", gpus=1,
        gpu_memory=options.gpu_memory or gpu_memory(spec))
    render = outline.modules.shell.Shell(
        "render", command=posix([options.ivi_render,
                                 *render_args(spec, job, paths, "#FRAME_START#-#FRAME_END#", options.device)]),
        range=frames, chunk=options.chunk_size)
    render.depend_all(train)
    ol.add_layer(train)
    ol.add_layer(render)
    flags = {key: value for key, value in (("user", options.user), ("priority", options.priority)) if value is not None}
    return cue.serialize_simple(outline.cuerun.OutlineLauncher(ol, **flags))


def write_job(spec: JobSpec, folder: Path, options: FarmOptions = FarmOptions()) -> Path:
    """Write `job.json` and `job.xml` into `folder`; returns the XML's path."""
    folder = Path(folder).absolute()
    xml = job_xml(spec, folder / JOB_FILE, options)
    folder.mkdir(parents=True, exist_ok=True)
    spec.save(folder / JOB_FILE)
    path = folder / JOB_XML
    path.write_text(xml + "\n", encoding="utf-8")
    return path
