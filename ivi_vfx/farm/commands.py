"""The ivi-render command lines of a farm job's two stages, as argument lists (shared by every farm)."""
from __future__ import annotations

from ivi_vfx.io.sequence import parse_frames
from ivi_vfx.jobs import JobSpec


def train_args(job_file: str, device: str, progress: str = "plain") -> list[str]:
    """`ivi-render train` for the job file (arguments after the executable)."""
    return ["train", "--job", job_file, "--device", device, "--progress-format", progress]


def render_args(job_file: str, frames: str, device: str, progress: str = "plain") -> list[str]:
    """`ivi-render render` of a chunk; `frames` is the farm's token for the chunk's range."""
    return ["render", "--job", job_file, "--device", device, "--progress-format", progress, "--frames", frames]


def first_frame(frames: str) -> int:
    """The first frame of a range string: the frame number that a farm's single Train task carries."""
    return parse_frames(frames)[0]


def describe(spec: JobSpec) -> str:
    """A one-line description of the job for the farm's monitor."""
    return f"IVI-VFX clean plate: {spec.plate} -> {spec.out}"
