"""What the compositor asked for: an InpaintRequest built from the gizmo's knob values.

Plain Python (no nuke, no engine): it validates the values with messages that name the knob and
the fix, and turns them into the JobSpec JSON that `ivi-render run` and `ivi-render submit` read.
The JobSpec's schema is ivi_vfx/jobs.py; we write its keys here instead of importing it, because
Nuke's Python has neither the engine nor its dependencies. The tests hold every key `job_dict`
writes and JOB_SCHEMA_VERSION against the real JobSpec's fields and version, so the two cannot
drift apart.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import knobs

JOB_SCHEMA_VERSION = 5
"""ivi_vfx.jobs.SCHEMA_VERSION at the time of writing (a test checks they are equal)."""

FRAME_TOKEN = re.compile(r"#+|%0?\d*d|@+")
VIEW_TOKEN = re.compile(r"%[Vv]")
"""Nuke's view tokens: %V the view's name (left), %v its first letter (l)."""
FRAMES_TEXT = re.compile(r"^\s*\d+(\s*-\s*\d+(x\d+)?)?(\s*[, ]\s*\d+(\s*-\s*\d+(x\d+)?)?)*\s*$")


class RequestError(ValueError):
    """A knob value that cannot make a job; the message names the knob and the fix."""


@dataclass(frozen=True)
class InpaintRequest:
    """One Render press: frames, matte, training settings, output and where it runs."""

    node_name: str
    first: int
    last: int
    out: str
    """Output pattern (``####``), as typed in the output knob."""
    keyframes: tuple[int, ...] = ()
    """Key frames of a keyframe matte; empty for a matte sequence."""
    max_speed: float | None = None
    """A keyframe matte's object speed (share of the frame per frame); None: no limit."""
    rounds: int | None = None
    """A keyframe matte's self-training rounds; None: none."""
    mask_channel: str = "A"
    """EXR channel of the baked matte: A, R, G or B (JobSpec.mask_channel)."""
    preset: str | None = None
    steps: int | None = None
    work_size: int | None = None
    farm: str | None = None
    """None: this machine; else openjd, opencue or deadline."""
    resume: bool = True
    executable: str = ""
    """The ivi-render to run; empty: $IVI_RENDER, then PATH (commands.find_ivi_render)."""
    overwrite: bool = False
    """Replace the output's frames (ivi-render --overwrite); off: a finished result is kept (versioned up)."""
    clean_frames: str | None = None
    """The frames of the clean input to use (JobSpec.clean_frames); None: every frame of the range."""
    view: str | None = None
    """The view this request cleans (a stereo or multi-view script: one request per view); None: mono."""

    @property
    def frames(self) -> str:
        """The range as a JobSpec and the command line write it."""
        return f"{self.first}-{self.last}"

    @property
    def uses_keyframes(self) -> bool:
        return bool(self.keyframes)

    @property
    def name(self) -> str:
        """Job name: the output's file stem (``clean`` for ``sh010/clean.####.exr``)."""
        stem = FRAME_TOKEN.split(Path(self.out).name)[0].rstrip("._")
        return stem or self.node_name

    def job_dict(self, plate: str, mask: str, clean: str | None = None, predicted: bool = False) -> dict[str, Any]:
        """The JobSpec of a job whose inputs are `plate` and `mask` (baked, or a Read's own files): a matte
        sequence, or the roto of the key frames (whose mattes `ivi-render run` then predicts for every frame).

        Args:
            clean: the clean reference's pattern (JobSpec.clean), or None.
            predicted: `mask` is this keyframe job's own predicted mattes (Predict mattes ran and they are
                current): the fill trains on them as a matte sequence (channel A) and predicts nothing again.
        """
        keyed = self.uses_keyframes and not predicted
        matte: dict[str, Any] = {"mask": mask, "mask_channel": "A" if predicted else self.mask_channel}
        if keyed:
            matte = {"key_mask": mask, "key_frames": ",".join(map(str, self.keyframes)),
                     "mask_channel": self.mask_channel}
        data: dict[str, Any] = {"schema_version": JOB_SCHEMA_VERSION, "plate": plate, **matte,
                                "out": self.out, "frames": self.frames, "name": self.name}
        if clean is not None:
            data["clean"] = clean
            if self.clean_frames is not None:
                data["clean_frames"] = self.clean_frames
        # Unset values stay out of the file, so the preset decides them where the job runs; the
        # propagation's only go into a keyframe job (a matte-sequence job refuses them).
        optional = ("preset", "steps", "work_size", *(("max_speed", "rounds") if keyed else ()))
        for key in optional:
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    def predict_dict(self, plate: str, key_mask: str, folder: str, mattes: str) -> dict[str, Any]:
        """The JobSpec of Predict mattes: the keyframe job's first stage alone (``writes: mattes``), in the
        same job folder (`folder`, so its propagate.ckpt is the one Render resumes) and writing to the folder's
        mattes (`mattes`, JobSpec.predicted_mattes of the Render's job)."""
        if not self.uses_keyframes:
            raise RequestError(f"{knobs.MATTE_MODE}: Predict mattes needs a keyframe matte; set matte to "
                               f"'keyframe matte' and give the key frames")
        data: dict[str, Any] = {"schema_version": JOB_SCHEMA_VERSION, "plate": plate, "key_mask": key_mask,
                                "key_frames": ",".join(map(str, self.keyframes)), "writes": "mattes",
                                "out": mattes, "frames": self.frames, "mask_channel": self.mask_channel,
                                "name": self.name, "checkpoint_dir": folder}
        for key in ("preset", "max_speed", "rounds"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    def predict_stamp(self) -> dict[str, Any]:
        """What the predicted mattes depend on among the knobs: Render reuses them only when it is unchanged."""
        return {"frames": self.frames, "keyframes": list(self.keyframes), "max_speed": self.max_speed,
                "rounds": self.rounds, "mask_channel": self.mask_channel, "preset": self.preset, "view": self.view}

    def for_view(self, view: str) -> InpaintRequest:
        """This request for one view: %V and %v in the output become the view's name and first letter."""
        out = self.out.replace("%V", view).replace("%v", view[:1])
        return dataclasses.replace(self, out=out, view=view)


def for_views(req: InpaintRequest, views: Sequence[str]) -> list[InpaintRequest]:
    """One request per view of the script (a mono script: the request itself).

    Raises:
        RequestError: several views but no %V (or %v) in the output, which would write every view over one file.
    """
    if len(views) <= 1:
        return [req]
    if not VIEW_TOKEN.search(req.out):
        raise RequestError(f"{knobs.OUTPUT}: the script has {len(views)} views ({', '.join(views)}); put %V in the "
                           f"output (e.g. clean_%V.####.exr) so that each view is cleaned into its own files")
    return [req.for_view(v) for v in views]


def parse_key_frames(text: str, first: int, last: int) -> tuple[int, ...]:
    """``1001, 1060`` -> (1001, 1060); every key frame must lie in the frame range."""
    parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
    if not parts:
        raise RequestError(f"{knobs.KEY_FRAMES}: give the frames your keyframe matte is drawn on, e.g. {first}")
    try:
        frames = sorted({int(p) for p in parts})
    except ValueError:
        raise RequestError(f"{knobs.KEY_FRAMES}: {text!r} is not a list of frame numbers; write e.g. "
                           f"{first},{last}") from None
    outside = [f for f in frames if not first <= f <= last]
    if outside:
        raise RequestError(f"{knobs.KEY_FRAMES}: frame(s) {', '.join(map(str, outside))} lie outside the frame "
                           f"range {first}-{last}; change the key frames or the range")
    return tuple(frames)


def _choice(values: Mapping[str, Any], knob: str, choices: tuple[str, ...]) -> str:
    value = str(values[knob])
    if value not in choices:
        raise RequestError(f"{knob}: {value!r} is not one of {', '.join(choices)}; the gizmo is from another "
                           f"version of IVI, create the node again")
    return value


def _optional_int(values: Mapping[str, Any], knob: str, minimum: int) -> int | None:
    """0 means "the preset's"; anything else must be at least `minimum`."""
    value = int(values[knob])
    if value == 0:
        return None
    if value < minimum:
        raise RequestError(f"{knob}: {value} is too small; use 0 for the preset's value, or at least {minimum}")
    return value


def _optional_share(values: Mapping[str, Any], knob: str) -> float | None:
    """0 means "no limit"; anything else must be a share of the frame, above 0 and below 1."""
    value = float(values[knob])
    if value == 0:
        return None
    if not 0 < value < 1:
        raise RequestError(f"{knob}: {value:g} is not a share of the frame; use 0 for no limit, or e.g. 0.03")
    return value


def from_knob_values(values: Mapping[str, Any], node_name: str = "IVI_Inpaint1") -> InpaintRequest:
    """Validate the gizmo's knob values (keyed by knobs.READ_KNOBS) and make the request."""
    from . import GIZMO_VERSION  # noqa: PLC0415  (the package's constant, not the knob name)

    if str(values[knobs.GIZMO_VERSION]) != GIZMO_VERSION:
        raise RequestError(f"{node_name} is version {values[knobs.GIZMO_VERSION]} of the IVI_Inpaint gizmo, this "
                           f"plugin reads version {GIZMO_VERSION}; create the node again from the IVI menu")
    first, last = int(values[knobs.FIRST_FRAME]), int(values[knobs.LAST_FRAME])
    if first > last:
        raise RequestError(f"{knobs.FIRST_FRAME}/{knobs.LAST_FRAME}: {first} is after {last}; swap them")
    out = str(values[knobs.OUTPUT]).strip()
    if not out:
        raise RequestError(f"{knobs.OUTPUT}: choose where the clean plate goes, e.g. /shots/sh010/clean.####.exr")
    if not out.lower().endswith(".exr") or not FRAME_TOKEN.search(Path(out).name):
        raise RequestError(f"{knobs.OUTPUT}: {out!r} must be an EXR sequence with a frame token, "
                           f"e.g. clean.####.exr")
    keyed = _choice(values, knobs.MATTE_MODE, knobs.MATTE_MODES) == "keyframe matte"
    run_on = _choice(values, knobs.RUN_ON, knobs.RUN_ON_CHOICES)
    farm = None if run_on == "this machine" else run_on.split(": ", 1)[1]
    preset = _choice(values, knobs.PRESET, knobs.PRESETS)
    channel = _choice(values, knobs.MATTE_CHANNEL, knobs.MATTE_CHANNELS)
    _choice(values, knobs.RANGE_FROM, knobs.RANGE_FROMS)  # applied by the Nuke layer before this call
    clean_frames = str(values[knobs.CLEAN_FRAMES]).strip() or None
    if clean_frames is not None and not FRAMES_TEXT.match(clean_frames):
        raise RequestError(f"{knobs.CLEAN_FRAMES}: {clean_frames!r} is not a frame list; write e.g. {first} or "
                           f"{first},{last} or {first}-{last}, or leave it empty for every frame")
    return InpaintRequest(
        node_name=node_name, first=first, last=last, out=out,
        keyframes=parse_key_frames(str(values[knobs.KEY_FRAMES]), first, last) if keyed else (),
        max_speed=_optional_share(values, knobs.MAX_SPEED) if keyed else None,
        rounds=_optional_int(values, knobs.ROUNDS, 1) if keyed else None,
        mask_channel=knobs.CHANNEL_TO_EXR[channel],
        preset=None if preset == "auto" else preset,
        steps=_optional_int(values, knobs.STEPS, 1),
        work_size=_optional_int(values, knobs.WORK_SIZE, 16),
        farm=farm, resume=bool(values[knobs.RESUME]), executable=str(values[knobs.EXECUTABLE]).strip(),
        overwrite=bool(values[knobs.OVERWRITE]), clean_frames=clean_frames)


def parse_frame_list(text: str) -> list[int]:
    """``1001,1005 1010-1012 1-9x4`` -> [1, 5, 9, 1001, 1005, 1010, 1011, 1012] (what from_knob_values checked)."""
    frames: set[int] = set()
    for part in (p for p in re.split(r"[\s,]+", text.replace(" - ", "-").strip()) if p):
        first, _, rest = part.partition("-")
        last, _, step = rest.partition("x")
        frames.update(range(int(first), int(last or first) + 1, int(step or 1)))
    return sorted(frames)
