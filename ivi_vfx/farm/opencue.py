"""OpenCue job XML for a JobSpec, built with PyOutline (extra `opencue`); never talks to Cuebot.

Two layers: `train` (one frame, a GPU, tag `gpu`) and `render` over the frames in chunks, which
depends on the whole train layer (LAYER_ON_LAYER: `depend_all`; PyOutline's `depend_on` would be
frame by frame). Cuebot replaces `#FRAME_START#` and `#FRAME_END#` with each chunk's range. Submit
the XML with `opencue.api.launchSpec(xml)` or cueadmin against your Cuebot. RQD runs each command
through a shell, so every argument is shell-quoted.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from ivi_vfx.errors import ConfigError
from ivi_vfx.jobs import JOB_FILE, JobSpec

from . import job_frames
from .commands import first_frame, render_args, train_args

JOB_XML = "job.xml"


def job_xml(spec: JobSpec, job_file: Path, *, chunk_size: int = 10, device: str = "auto",
            executable: str = "ivi-render", show: str = "ivi", user: str | None = None) -> str:
    """The OpenCue job spec XML (Cuebot's cjsl format) for the job."""
    try:
        import outline  # noqa: PLC0415  (extra 'opencue')
        import outline.cuerun  # noqa: PLC0415
        import outline.modules.shell  # noqa: PLC0415
        from outline.backend import cue  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError("writing an OpenCue job needs PyOutline: pip install 'ivi-vfx[opencue]'") from exc
    frames = job_frames(spec)

    def command(args: list[str]) -> list[str]:
        return [shlex.quote(a) if "#" not in a else a for a in (executable, *args)]

    name = f"ivi_{spec.job_name}"
    ol = outline.Outline(name, shot=spec.job_name, show=show, **({"user": user} if user else {}))
    train = outline.modules.shell.Shell("train", command=command(train_args(str(job_file), device)),
                                        range=str(first_frame(frames)), chunk=1, tags="gpu", gpus=1)
    render = outline.modules.shell.Shell(
        "render", command=command(render_args(str(job_file), "#FRAME_START#-#FRAME_END#", device)),
        range=frames, chunk=chunk_size)
    render.depend_all(train)
    ol.add_layer(train)
    ol.add_layer(render)
    return cue.serialize_simple(outline.cuerun.OutlineLauncher(ol))


def write_job(spec: JobSpec, folder: Path, *, chunk_size: int = 10, device: str = "auto") -> Path:
    """Write `job.json` and `job.xml` into `folder`; returns the XML's path."""
    folder = Path(folder).absolute()
    xml = job_xml(spec, folder / JOB_FILE, chunk_size=chunk_size, device=device)
    folder.mkdir(parents=True, exist_ok=True)
    spec.save(folder / JOB_FILE)
    path = folder / JOB_XML
    path.write_text(xml + "\n")
    return path
