"""JobSpec: the one description of a job that the command line, Nuke and the farm pass around.

A job is one shot: a plate and its mattes (or the roto of a few key frames) in, a clean plate out,
trained once into its job folder and rendered from it in any number of frame chunks. The JobSpec
is plain data with a JSON round trip (a schema version; an unknown key is an error naming the key
and the file), so that `ivi-render inpaint`, `ivi-render train --job job.json`, `ivi-render render
--job job.json --frames 1001-1010` on a farm node, and a Nuke panel that writes job.json all mean
the same job.

The job folder, ``.ivi/<name>/`` beside the output unless `checkpoint_dir` says otherwise, holds
everything a later command needs, so a render needs only the folder and its frames::

    job.json         this spec, as trained
    model.ckpt       the fill's checkpoint (train.fit: configuration, architecture, shaper, shot, weights)
    scales.ckpt      the progressive finer scales, for a plate much larger than the working size
    carry.npz        what other frames show of each frame's matte (carry/), traced before training
    propagate.ckpt   a keyframe job's mask propagation network
    mattes/          a keyframe job's predicted mattes, matte.####.exr
    nuke/            the Nuke gizmo's baked inputs
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivi_vfx.config import PropagateConfig, TrainConfig, preset_config, propagate_config
from ivi_vfx.errors import ConfigError
from ivi_vfx.hires import HiresConfig
from ivi_vfx.io.atomic import atomic_path
from ivi_vfx.io.sequence import parse_frames

SCHEMA_VERSION = 5
"""1: the first keys; 2 adds the keyframe roto (key_mask, key_frames) and the progressive
high-resolution keys (scales ... tile_size); 3 adds how a keyframe job's propagation follows the
object (track, max_speed, rounds); 4 adds `writes` (a clean plate, or the predicted mattes alone),
the rest of the propagation's settings (threshold, object_weight, propagate_steps, propagate_budget,
propagate_work_size), and names `checkpoint` as the option does (`checkpoint_dir`); 5 adds the known-pixel
carry (`carry`) and its clean reference frames (`clean`, `clean_frames`), and the propagation's cues
(`flow_follow`, `departure`, `background_match`). Files of earlier versions read as they are."""
PROPAGATION_KEYS: dict[str, str] = {
    "track": "track", "max_speed": "max_speed", "rounds": "rounds", "threshold": "threshold",
    "object_weight": "object_weight", "propagate_steps": "steps", "propagate_budget": "budget",
    "propagate_work_size": "work_size", "flow_follow": "flow_follow", "departure": "departure",
    "background_match": "background_match",
}
"""The JobSpec keys that only a keyframe job (`key_mask`) takes -> the PropagateConfig field each sets."""
FILL_KEYS = ("steps", "budget", "finetune_steps", "encoder", "work_size", "carry", "clean", "clean_frames", "scales",
             "patch_size", "scale_steps", "tile_size")
"""The JobSpec keys of the fill stage (TrainConfig, HiresConfig), which a mattes job has none of."""
WRITES = ("clean", "mattes")
"""What a job writes to `out`: the clean plate (its alpha the filled matte), or the predicted mattes alone."""
JOB_FILE = "job.json"
"""Name of the JobSpec inside a job folder (and inside a farm bundle)."""
MODEL_FILE = "model.ckpt"
"""Name of the fill's checkpoint inside a job folder."""
SCALES_FILE = "scales.ckpt"
"""Name of the trained finer scales (progressive high resolution) inside a job folder."""
PROPAGATE_FILE = "propagate.ckpt"
"""Name of the mask propagation's checkpoint inside a keyframe job's folder."""
CARRY_FILE = "carry.npz"
"""Name of the known-pixel carry (what other frames show of each matte) inside a job folder."""
MATTES = "mattes/matte.####.exr"
"""The mattes a keyframe job predicts, inside its folder (a mattes job writes them to `out` instead)."""
BAKES = "nuke"
"""The folder, inside a job folder, where the Nuke gizmo bakes its inputs (nuke_plugin/ivi_nuke/paths.py)."""


def output_stem(out_pattern: str) -> str:
    """The file stem of an output pattern, before its frame token: ``clean`` for ``shots/clean.####.exr``."""
    stem = Path(out_pattern).name.split("#")[0].split("%")[0].split("@")[0].rstrip("._")
    return stem or "ivi"


@dataclass
class JobSpec:
    """One shot's job: inputs, frames, the two stages' settings, output and job folder.

    Settings left at None take the preset's value, as the command line's options do. Each field is
    the command line option of the same name (``--max-speed`` is `max_speed`).
    """

    plate: str
    """Plate sequence pattern (``plate.####.exr``, ``%04d`` or ``@``)."""
    mask: str | None = None
    """Matte sequence pattern (1 = fill), same frames and format as the plate; None with `key_mask`."""
    out: str = ""
    """Output sequence pattern, always EXR: the clean plate, or with ``writes: mattes`` the mattes."""
    key_mask: str | None = None
    """Instead of `mask`: the object's roto on key frames only; the job first predicts the matte of
    every frame from it (mask propagation) into its folder, and alpha is that matte."""
    key_frames: str | None = None
    """The frames `key_mask` holds (``1001`` or ``1001,1060``); required with it."""
    writes: str = "clean"
    """``clean``: the clean plate; ``mattes``: a keyframe job that writes its predicted mattes to `out`
    (one channel, A) and fills nothing (`ivi-render propagate`)."""
    track: float | None = None
    """With `key_mask`: the propagation's temporal constraint (PropagateConfig.track); None: the preset's."""
    max_speed: float | None = None
    """With `key_mask`: the object's fastest motion, a share of the frame per frame (PropagateConfig.max_speed);
    None: the preset's (0, no limit)."""
    rounds: int | None = None
    """With `key_mask`: the propagation's self-training rounds (PropagateConfig.rounds); None: the preset's (0)."""
    threshold: float | None = None
    """With `key_mask`: object probability above which a pixel is matte (PropagateConfig.threshold)."""
    object_weight: float | None = None
    """With `key_mask`: weight of object pixels in the propagation's loss (PropagateConfig.object_weight)."""
    propagate_steps: int | None = None
    """With `key_mask`: the propagation's training steps (PropagateConfig.steps); None: the preset's."""
    propagate_budget: float | None = None
    """With `key_mask`: most minutes of the propagation's training (PropagateConfig.budget); None: the preset's."""
    propagate_work_size: int | None = None
    """With `key_mask`: the propagation's working resolution (PropagateConfig.work_size); None: the preset's."""
    flow_follow: bool | None = None
    """With `key_mask`: carry each frame's matte along the object's measured flow (PropagateConfig.flow_follow);
    None: the preset's (off)."""
    departure: float | None = None
    """With `key_mask`: the motion cue's departure from the background's motion, a share of the frame per frame
    (PropagateConfig.departure); 0 switches it off; None: the preset's (0)."""
    background_match: float | None = None
    """With `key_mask`: the background cue's colour difference under which the network's object is background
    (PropagateConfig.background_match); 0 switches it off; None: the preset's (0.1, 0 for ``paper``)."""
    carry: bool | None = None
    """Carry the pixels that other frames (or `clean`) show into each frame's matte before training, so that
    the network invents only what the shot never shows (carry/); None: the preset's (on, off for ``paper``)."""
    clean: str | None = None
    """Clean reference frames (a clean pass shot without the object, or frames painted clean), the first
    source of carried pixels; a frame pattern in the plate's format. None: none."""
    clean_frames: str | None = None
    """The frames of `clean` to use (``1001`` or ``1001,1040``); None: every frame of it on disk."""
    frames: str | None = None
    """Frame range as farms write it (``1001-1100``, ``1001,1005``, ``1-10x2``); None: every plate frame on disk."""
    mask_channel: str | None = None
    """Channel of `mask` (or of `key_mask`); None: ``A``, or the file's only channel."""
    preset: str | None = None
    """Named configuration of both stages (quick, final, paper); None: ``final``. Its CPU or GPU variant
    is chosen where each stage runs."""
    steps: int | None = None
    """The fill's training steps in all; None: the preset's."""
    budget: float | None = None
    """Most minutes of the fill's training per call (0: no limit); None: the preset's."""
    finetune_steps: int | None = None
    """The last this-many steps fine-tune with the regularizers; None: the preset's."""
    encoder: str | None = None
    """Anti-ambiguity features, ``random`` or ``vgg19:FILE``; None: the preset's."""
    work_size: int | None = None
    """Longest side of the fill's working resolution in pixels; None: the preset's."""
    dilate: int | None = None
    """Grow the matte by this many full-resolution pixels: the matte that is filled, or with ``writes:
    mattes`` the mattes written; None: the preset's (0)."""
    seed: int | None = None
    """Random seed of both stages; None: the preset's (0)."""
    scales: str | None = None
    """Progressive high resolution: ``auto``, ``off``, a count, or fractions ending with 1; None: ``auto``."""
    patch_size: int | None = None
    """Training patch side at the finer scales, in pixels; None or 0: chosen from the device."""
    scale_steps: int | None = None
    """Training steps of each finer scale; None or 0: chosen from the device."""
    tile_size: int | None = None
    """Inference tile side at the finer scales, in pixels; None or 0: chosen from the rendering device."""
    checkpoint_dir: str | None = None
    """The job folder (job.json, model.ckpt, scales.ckpt, propagate.ckpt, mattes/); None: ``.ivi/<name>/``
    beside the output."""
    name: str | None = None
    """Job name for farms and logs; None: the output's file stem."""

    def __post_init__(self) -> None:
        for key in ("plate", "out", *(("mask",) if self.key_mask is None else ("key_mask",))):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ConfigError(f"job: {key!r} must be a frame pattern such as plate.####.exr")
        if (self.mask is None) == (self.key_mask is None) or (self.key_mask is None) != (self.key_frames is None):
            raise ConfigError("job: give either 'mask' (a matte sequence), or 'key_mask' with 'key_frames' "
                              "(the roto of a few frames)")
        if self.writes not in WRITES:
            raise ConfigError(f"job: 'writes' is {self.writes!r}; it must be one of {', '.join(WRITES)}")
        if self.key_mask is None and any(getattr(self, key) is not None for key in PROPAGATION_KEYS):
            raise ConfigError(f"job: {', '.join(PROPAGATION_KEYS)} are mask propagation's settings; give them with "
                              f"'key_mask' and 'key_frames', or leave them out")
        if self.writes == "mattes":
            if self.key_mask is None:
                raise ConfigError("job: 'writes: mattes' predicts mattes from 'key_mask' and 'key_frames'; give them")
            fill = [key for key in FILL_KEYS if getattr(self, key) is not None]
            if fill:
                raise ConfigError(f"job: {', '.join(fill)} set the fill, which a job that writes mattes does not "
                                  f"run; leave them out (the propagation's are {', '.join(PROPAGATION_KEYS)})")
        for key in ("frames", "key_frames", "clean_frames"):
            if getattr(self, key) is not None:
                setattr(self, key, str(getattr(self, key)))
                parse_frames(getattr(self, key))  # a bad range is an error when the job is made, not on the farm

    # --- the job folder --------------------------------------------------------------------------

    @property
    def job_name(self) -> str:
        """The name, or the output's stem (``clean`` for ``shots/clean.####.exr``)."""
        return self.name or output_stem(self.out)

    @property
    def folder(self) -> Path:
        """The job folder: `checkpoint_dir`, or ``.ivi/<name>/`` beside the output frames."""
        if self.checkpoint_dir:
            return Path(self.checkpoint_dir)
        return Path(self.out).parent / ".ivi" / self.job_name

    @property
    def model_path(self) -> Path:
        """The fill's checkpoint inside the job folder."""
        return self.folder / MODEL_FILE

    @property
    def scales_path(self) -> Path:
        """The finer scales' file inside the job folder (absent when the plate needs none)."""
        return self.folder / SCALES_FILE

    @property
    def carry_path(self) -> Path:
        """The known-pixel carry inside the job folder (absent when the job does not carry)."""
        return self.folder / CARRY_FILE

    @property
    def propagate_path(self) -> Path:
        """The mask propagation's checkpoint inside a keyframe job's folder."""
        return self.folder / PROPAGATE_FILE

    @property
    def predicted_mattes(self) -> str:
        """Where a keyframe job's mask propagation writes its mattes: `out` for a job that writes mattes,
        else ``mattes/`` inside the job folder."""
        return self.out if self.writes == "mattes" else str(self.folder / MATTES)

    @property
    def fill_mask(self) -> str:
        """The matte sequence that the fill trains on and renders with: `mask`, or the predicted mattes."""
        return self.mask if self.mask is not None else self.predicted_mattes

    @property
    def fill_mask_channel(self) -> str | None:
        """The channel of `fill_mask`: `mask_channel`, or None (the predicted mattes' only channel, A);
        with a key_mask, `mask_channel` is the key roto's."""
        return self.mask_channel if self.mask is not None else None

    def key_frame_list(self) -> list[int]:
        """The key frames as numbers; [] for a matte-sequence job."""
        return [] if self.key_frames is None else list(parse_frames(self.key_frames))

    def frame_list(self) -> list[int] | None:
        """The frames as numbers, or None for every plate frame on disk."""
        return None if self.frames is None else list(parse_frames(self.frames))

    # --- the stages' configurations ---------------------------------------------------------------

    def hires_config(self) -> HiresConfig:
        """The progressive high-resolution settings (automatic sizes stay 0 until a device is known)."""
        return HiresConfig(scales=self.scales or "auto", patch_size=self.patch_size or 0,
                           scale_steps=self.scale_steps or 0, tile_size=self.tile_size or 0).validate()

    def train_config(self, device: str = "cpu") -> TrainConfig:
        """The fill's configuration: the preset (or the device's default), then this job's changes."""
        cfg = preset_config(self.preset, device).rescheduled(self.steps)
        return cfg.replace(budget=self.budget, finetune_steps=self.finetune_steps, encoder=self.encoder,
                           work_size=self.work_size, dilate=self.dilate if self.writes == "clean" else None,
                           seed=self.seed, carry=self.carry)

    def propagate_config(self, device: str = "cpu") -> PropagateConfig:
        """The mask propagation's configuration of a keyframe job: the preset's, with this job's seed and
        propagation settings (and `dilate`, for a job that writes mattes)."""
        return propagate_config(self.preset, device).replace(
            seed=self.seed, dilate=self.dilate if self.writes == "mattes" else None,
            **{field: getattr(self, key) for key, field in PROPAGATION_KEYS.items()})

    def absolute(self) -> JobSpec:
        """A copy whose paths are absolute, for a job that runs on other machines or in other folders."""
        paths = {key: os.path.abspath(getattr(self, key)) for key in ("plate", "mask", "out", "key_mask", "clean")
                 if getattr(self, key) is not None}
        return self.replace(**paths, checkpoint_dir=str(self.folder.absolute()))

    def replace(self, **changes: Any) -> JobSpec:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    # --- JSON round trip -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "job") -> JobSpec:
        """Inverse of to_dict. `source` names where the data came from (a file) in every error."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a job must be a JSON object with plate, mask and out")
        data = dict(data)
        version = data.pop("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ConfigError(f"{source}: job schema {version} is newer than this IVI-VFX understands "
                              f"({SCHEMA_VERSION}); upgrade ivi-vfx")
        if version < 4 and "checkpoint" in data:  # versions 1-3 named the job folder `checkpoint`
            data["checkpoint_dir"] = data.pop("checkpoint")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"{source}: unknown job keys: {', '.join(unknown)}; the keys are: {', '.join(names)}")
        missing = [key for key in ("plate", "out") if key not in data]
        if "mask" not in data and "key_mask" not in data:
            missing.insert(1, "mask (or key_mask with key_frames)")
        if missing:
            raise ConfigError(f"{source}: the job needs {', '.join(missing)}")
        try:
            spec = cls(**data)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from exc
        try:
            spec.train_config()  # a bad preset or value is an error now, naming the file
            spec.hires_config()
            spec.propagate_config()
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from exc
        return spec

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "job") -> JobSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}: not valid JSON ({exc}); fix the file or write it again") from exc
        return cls.from_dict(data, source)

    def save(self, path: Path) -> Path:
        """Write atomically (a farm node may read it while another writes it)."""
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_json())
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> JobSpec:
        """Read a job file; ConfigError names the file and the fix."""
        path = Path(path)
        if path.is_dir():
            path = path / JOB_FILE  # a checkpoint folder or a bundle
        if not path.is_file():
            raise ConfigError(f"{path}: no job file there; write one with `ivi-render submit` or check the path")
        return cls.from_json(path.read_text(), str(path))
