"""The ivi-render command lines of a farm job's two stages, as argument lists (shared by every farm).

Each task names the job's paths on its own command line (``--plate``, ``--mask`` or ``--key-mask``,
``--clean``, ``--out``, ``--checkpoint-dir``), not only inside job.json: a farm maps paths it can
see (Deadline's path mapping of the Arguments, Open Job Description's PATH parameters with their
Deadline Cloud job attachments), never paths inside a file. The job file then brings the settings.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from ivi_vfx.errors import ConfigError
from ivi_vfx.io.sequence import parse_frames
from ivi_vfx.jobs import PROPAGATION_KEYS, JobSpec

IN_PATHS = ("plate", "mask", "key_mask", "clean")
"""The JobSpec's input patterns (each may be None but the plate)."""
OUT_PATH = "out"
FOLDER = "checkpoint_dir"
"""The job folder: written by Train, read by every Render task."""
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
"""The --device values a farm job may carry: a GPU of any index, or the CPU."""


def flag(key: str) -> str:
    """The ivi-render option of a JobSpec field (``max_speed`` -> ``--max-speed``), as ivi_cli names them."""
    return "--" + key.replace("_", "-")


def job_paths(spec: JobSpec) -> dict[str, str]:
    """The job's paths by JobSpec field: the inputs it has, the output, and the job folder."""
    paths = {key: getattr(spec, key) for key in IN_PATHS if getattr(spec, key) is not None}
    return {**paths, OUT_PATH: spec.out, FOLDER: str(spec.folder)}


def check_device(device: str) -> str:
    """`device`, or ConfigError: a farm job runs on ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    if not DEVICE.fullmatch(device):
        raise ConfigError(f"--device {device!r}: a farm job runs on auto, cpu, cuda or cuda:N (N any GPU index)")
    return device


def _path_args(spec: JobSpec, paths: Mapping[str, str], keys: tuple[str, ...]) -> list[str]:
    args: list[str] = []
    for key in keys:
        if key in paths:
            args += [flag(key), paths[key]]
        if key == "key_mask" and key in paths:
            # ivi-render reads a --key-mask as a new matte and drops the job file's key frames and
            # propagation settings with it, so they come along again.
            args += ["--key-frames", str(spec.key_frames)]
            for setting in PROPAGATION_KEYS:
                if getattr(spec, setting) is not None:
                    args += [flag(setting), str(getattr(spec, setting))]
    return args


def train_args(spec: JobSpec, job_file: str, paths: Mapping[str, str], device: str,
               progress: str = "plain") -> list[str]:
    """`ivi-render train` of the job (arguments after the executable).

    Args:
        job_file: the job file as the task sees it.
        paths: JobSpec field -> the path as the task sees it (`job_paths`, or the farm's tokens for them).
    """
    return ["train", "--job", job_file, *_path_args(spec, paths, (*IN_PATHS, OUT_PATH, FOLDER)),
            "--device", device, "--progress-format", progress]


def render_args(spec: JobSpec, job_file: str, paths: Mapping[str, str], frames: str, device: str,
                progress: str = "plain") -> list[str]:
    """`ivi-render render` of a chunk; `frames` is the farm's token for the chunk's range.

    A chunk reads the plate, a matte sequence job's matte (a keyframe job's mattes are in the job
    folder), the clean reference frames that pixels are carried from, and the job folder, and writes
    the output.
    """
    return ["render", "--job", job_file, *_path_args(spec, paths, (FOLDER, "plate", "mask", "clean", OUT_PATH)),
            "--device", device, "--progress-format", progress, "--frames", frames]


def first_frame(frames: str) -> int:
    """The first frame of a range string: the frame number that a farm's single Train task carries."""
    return parse_frames(frames)[0]


def describe(spec: JobSpec) -> str:
    """A one-line description of the job for the farm's monitor."""
    return f"IVI-VFX clean plate: {spec.plate} -> {spec.out}"
