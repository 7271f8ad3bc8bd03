"""Typed configuration of a training run, the named presets, and their JSON round trip."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar

from ivi_vfx.errors import ConfigError

SCHEMA_VERSION = 1


class JsonConfig:
    """What every configuration dataclass shares: checks, copies with changes, a JSON round trip.

    A subclass is a dataclass that lists its checks in `_checks`; tuples are stored as JSON lists.
    """

    def _checks(self) -> list[tuple[bool, str]]:
        raise NotImplementedError

    def validate(self: C) -> C:
        """Raise ConfigError naming the field and the fix when a value cannot work; return self."""
        for ok, message in self._checks():
            if not ok:
                raise ConfigError(f"invalid configuration: {message}")
        return self

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (None values are ignored), validated."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes).validate()  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        d = {k: list(v) if isinstance(v, tuple) else v
             for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]
        d["schema_version"] = SCHEMA_VERSION
        return d

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Inverse of to_dict; unknown keys and a newer schema are errors."""
        data = dict(data)
        version = data.pop("schema_version", SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise ConfigError(f"configuration schema {version} is newer than this IVI-VFX ({SCHEMA_VERSION}); "
                              f"upgrade ivi-vfx")
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - set(fields)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**data).validate()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        try:
            return cls.from_dict(json.loads(text))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"configuration is not valid JSON: {exc}") from exc


C = TypeVar("C", bound=JsonConfig)


@dataclass
class TrainConfig(JsonConfig):
    """Everything that decides how one shot is trained and rendered.

    Stored inside every checkpoint; a resumed run takes the architecture from the checkpoint.
    """

    preset: str = "paper"
    """Name of the preset this configuration started from (informative)."""
    cnum: int = 48
    """Generator base width; 48 is the paper's network (4,051,278 parameters). A multiple of 4."""
    steps: int = 50_000
    """Optimiser steps in all, both stages. The reference runs 50,000 (30k-80k for a 100-frame shot),
    and 20,000-40,000 more to fine-tune with the regularizers."""
    finetune_steps: int = 0
    """The last this-many of `steps` form the fine-tune stage, where the regularizers join the
    reconstruction loss (the reference recipe: 50,000 reconstruction steps, then 20,000-40,000
    with them, Adam restarted between the two: see finetune_restart). 0: reconstruction only, the
    reference's default."""
    finetune_restart: bool = False
    """True starts the fine-tune stage with a fresh Adam, as the reference recipe does (its second
    run reloads the weights only). We keep Adam's moments: on deficient_coffee at 300 + 200 steps
    the restart alone cost 5.2 dB of hole PSNR and doubled the fill's frame-to-frame motion, which
    hid what the regularizers do (bench/ablation.py)."""
    ambiguity_weight: float = 0.1
    """Weight of the anti-ambiguity (contextual) term in the fine-tune stage; 0 switches it off."""
    stabilization_weight: float = 0.2
    """Weight of each of the two stabilisation terms in the fine-tune stage; 0 switches them off."""
    stabilize_affine: bool = True
    """Stabilisation's g includes the reference's random affine warp."""
    stabilize_brightness: bool = True
    """Stabilisation's g includes the paper's brightness change."""
    stabilize_blur: bool = True
    """Stabilisation's g includes the paper's blur."""
    stabilize_matte: bool = True
    """Stabilisation's g also moves the hole against the picture (ours; see perturb.py)."""
    encoder: str = "random"
    """Features of the anti-ambiguity term: 'random' (fixed random convs, no download) or
    'vgg19:PATH' (the reference's VGG19 relu4_2, weights from a torchvision state-dict file)."""
    context_positions: int = 2048
    """Most feature positions per frame in the contextual loss; more are average-pooled down,
    which bounds its (positions x positions) memory at any resolution."""
    budget: float = 0.0
    """Wall-clock minutes that one training call may take; 0 means no limit. Training ends at `steps`
    or when the budget is spent, whichever comes first (a checkpoint is written either way, so a
    later run with the same settings continues towards `steps`). Step counts, not budgets, make a
    run reproducible."""
    batch_size: int = 5
    """Frames per step; the reference takes 5 consecutive frames, cycling through the shot."""
    lr: float = 2e-4
    """Adam learning rate (the peak of a schedule); the reference's is 2e-4."""
    lr_schedule: str = "constant"
    """'constant' (the reference) or 'cosine': from `lr` down to lr/20 over each stage, following
    the larger of the stage's share of steps and of the budget's time, after a 10-step warm-up. A
    short budget spent at a falling rate gets further than one spent at the reference's constant rate."""
    lr_decay: float = 1.0
    """With 'cosine': the last share of each stage over which the rate falls; before it, the rate
    holds at `lr`. 1.0 falls over the whole stage; 0.3 holds for 70% of it, then falls. A plateau of
    the held-out error (`patience`) met while the rate holds begins the fall at once, over as large a
    share of the steps taken so far, and training ends when it is done; a plateau met while it falls
    changes nothing."""
    lr_hold_steps: int = 0
    """With 'cosine': a stage whose fall would begin (by the budget's time or the step count) after fewer
    than this many steps holds its rate to the end instead; a plateau still begins a fall. A run that
    is still far from its fill (a slow machine's budget) loses by falling early."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """Adam (beta1, beta2)."""
    adam_eps: float = 1e-7
    """Adam epsilon; 1e-7 is Keras's default, which the reference used."""
    work_size: int = 600
    """Longest side of the working resolution in pixels; plates larger than this are scaled down to
    train and infer, and the fill is scaled back up. The reference works at 320x600."""
    crop: int = 0
    """Side of square training crops in working pixels, a multiple of 4; 0 trains on whole frames as the reference.
    Crops are placed around the hole so that each step teaches filling."""
    validate_every: int = 50
    """Steps between two validations on held-out known pixels (validation.py): the stopping rule
    and the run's quality estimate. 0: no pixels are held out, no estimate, no early stop. With
    crops, whole-frame steps: a crop of a quarter of the frame validates every 4 x this many steps."""
    patience: int = 8
    """Validations without a 1% gain that make a plateau: the first one begins the fine-tune stage
    (when the run has one), the next ends training; under the cosine schedule a plateau instead begins
    the rate's fall if it has not begun (lr_decay), and training ends with the fall. 0: validate, but
    never stop early."""
    dilate: int = 0
    """Grow the matte by this many full-resolution pixels before filling (the reference dilates its
    masks offline by a 12x12 box)."""
    carry: bool = False
    """Known pixels first (carry/): before training, carry into each frame's matte what other frames
    show along the background's optical flow; the network trains on them as known data and fills
    only what no frame shows. False is the paper's method: the network fills the whole matte."""
    seed: int = 0
    """Seed of every random draw; the same seed, shot and config give the same result on CPU."""
    log_every: int = 50
    """Steps between two log lines."""
    checkpoint_every: int = 1000
    """Steps between two checkpoints (one is always written at the end and on a stop)."""
    channels_last: bool = True
    """Run the generator with NHWC activations and weights (runtime.py); the same network and values."""
    precision: str = "auto"
    """Convolutions' dtype in training: 'auto' (fp32 on a CPU, bf16 on a GPU that has it, else fp16),
    'fp32', 'bf16' or 'fp16' (with loss scaling on CUDA). Weights and losses stay fp32 (runtime.py)."""
    compile: bool = False
    """torch.compile the generator; pays only when the run is long enough to repay its compile time."""
    threads: int = 0
    """Intra-op CPU threads: 0 torch's choice (one per core); -1 one per core that other work leaves free
    when training starts, much faster on a shared machine but a resume is then exact only if the count
    comes out the same (runtime.configure_threads)."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            (self.cnum > 0 and self.cnum % 4 == 0, "cnum must be a positive multiple of 4"),
            (self.steps >= 0, "steps must be 0 or more"),
            (self.budget >= 0, "budget must be 0 (no limit) or a positive number of minutes"),
            (0 <= self.finetune_steps <= self.steps, "finetune_steps must be between 0 and steps"),
            (self.ambiguity_weight >= 0 and self.stabilization_weight >= 0, "loss weights must be 0 or more"),
            (self.encoder == "random" or self.encoder.startswith("vgg19:"),
             "encoder must be 'random' or 'vgg19:/path/to/vgg19.pth'"),
            (self.context_positions >= 16, "context_positions must be at least 16"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.lr > 0, "lr must be positive"),
            (self.lr_schedule in ("constant", "cosine"), "lr_schedule must be 'constant' or 'cosine'"),
            (0.0 < self.lr_decay <= 1.0, "lr_decay must lie between 0 (excluded) and 1, a share of the stage"),
            (self.lr_hold_steps >= 0, "lr_hold_steps must be 0 or more"),
            (self.work_size >= 16, "work_size must be at least 16 pixels"),
            (self.crop == 0 or (self.crop >= 16 and self.crop % 4 == 0),
             "crop must be 0 (whole frames) or a multiple of 4 of at least 16 pixels (the generator halves it twice)"),
            (self.dilate >= 0, "dilate must be 0 or more pixels"),
            (self.validate_every >= 0 and self.patience >= 0, "validate_every and patience must be 0 or more"),
            (self.log_every >= 1 and self.checkpoint_every >= 1, "log_every and checkpoint_every must be at least 1"),
            (self.precision in ("auto", "fp32", "bf16", "fp16"), "precision must be auto, fp32, bf16 or fp16"),
            (self.threads >= -1, "threads must be -1 (as many as the free cores), 0 (one per core) or a count"),
        ]

    @property
    def regularized(self) -> bool:
        """True when the run has a fine-tune stage with at least one regularizer."""
        return self.finetune_steps > 0 and (self.ambiguity_weight > 0 or self.stabilization_weight > 0)

    def rescheduled(self, steps: int | None) -> TrainConfig:
        """A copy running `steps` in all, its fine-tune stage keeping the same share of them."""
        if steps is None or steps == self.steps:
            return self.replace()
        share = self.finetune_steps / self.steps if self.steps else 0.0
        return self.replace(steps=steps, finetune_steps=round(share * steps))


@dataclass(frozen=True)
class Preset:
    """A named starting configuration, named for what the user wants: both stages of a job (the
    mask propagation of a keyframe job, then the fill), each with one variant per kind of device."""

    intent: str
    """What it is for, in the user's words, and what it spends on each kind of device."""
    cpu: TrainConfig
    """The fill's configuration on a CPU."""
    gpu: TrainConfig
    """The fill's configuration on a GPU."""
    propagate_cpu: PropagateConfig
    """The mask propagation's configuration on a CPU (a keyframe job's first stage)."""
    propagate_gpu: PropagateConfig
    """The mask propagation's configuration on a GPU."""

    def config(self, device: str) -> TrainConfig:
        """The fill's variant for `device` ('cpu', 'cuda', 'cuda:1', ...), a fresh copy."""
        return dataclasses.replace(self.gpu if on_gpu(device) else self.cpu)

    def propagate_config(self, device: str) -> PropagateConfig:
        """The mask propagation's variant for `device`, a fresh copy."""
        return dataclasses.replace(self.propagate_gpu if on_gpu(device) else self.propagate_cpu)


def on_gpu(device: str) -> bool:
    """True for a CUDA device ('cuda', 'cuda:1'): the one test that picks every GPU variant and default."""
    return device.startswith("cuda")


@dataclass
class PropagateConfig(JsonConfig):
    """How mattes are predicted for a whole shot from one or more roto'd keyframes.

    Stored inside every propagation checkpoint. The reference (`train_mask.py`) trains a U-Net of
    width 64 for 8,000 steps on 6 copies of its one annotated frame, at 320x608.
    """

    preset: str = "paper"
    """Name of the preset this configuration started from (informative)."""
    width: int = 64
    """U-Net base width (levels width..16*width); 64 is the reference's (31M parameters)."""
    steps: int = 8000
    """Optimiser steps (the reference: 8,000; its README: 4,000-20,000)."""
    budget: float = 0.0
    """Wall-clock minutes that one training call may take; 0 means no limit."""
    batch_size: int = 6
    """Samples per step, each a keyframe with its object pasted at a random cyclic shift."""
    lr: float = 1e-4
    """Adam learning rate (constant, as the reference)."""
    object_weight: float = 0.8
    """Weight of object pixels in the binary cross-entropy; background pixels get 1 - this. Above 0.5
    a missed object pixel costs more than an extra background pixel (the paper's weighted BCE; the
    reference code's plain BCE is 0.5)."""
    threshold: float = 0.5
    """Probability above which a pixel is object (the reference's 0.5; the quick and final presets
    0.35: for a removal a missed object pixel stays in the plate, an extra one is filled again)."""
    dilate: int = 0
    """Grow the predicted mattes by this many full-resolution pixels (the reference's workflow
    dilates by a 12x12 box at 320x600 before inpainting)."""
    work_size: int = 608
    """Longest side of the working resolution in pixels."""
    seed: int = 0
    """Seed of every random draw."""
    log_every: int = 100
    """Steps between two log lines."""
    checkpoint_every: int = 1000
    """Steps between two checkpoints (one is always written at the end and on a stop)."""
    rounds: int = 0
    """Self-training rounds, evenly from 30% to 85% of the run: at each, the network's own tracked
    mattes mark where the object may be; from then on, samples are also drawn on the other
    frames, whose pixels away from that region are taught as background (without them the
    network only ever sees the key frames' background, and calls anything new object). The
    rounds sweep outward from the keys: round k of n looks at the frames within k/n of the
    farthest frame's distance, so a frame is first judged by a network that has learnt the
    background of the frames next to it. 0 trains on the key frames alone, as the reference."""
    other_frames: float = 0.5
    """Share of the samples drawn on other frames (those near a key from the start, see max_speed;
    every frame once a self-training round has run)."""
    max_speed: float = 0.0
    """The fastest the object moves across the frame, as a share of the working frame's longest
    side per frame: on a frame t frames from a key, what lies farther than margin + max_speed * t
    from the key matte is background from the first step on (the object cannot be there). It
    also bounds the object's region frame by frame (`mattes.tracking.chained`), for the self-training
    rounds and for the written mattes: a false part growing out of the object faster than this is
    cut. 0 makes no such assumption (bmx-trees' rider moves at most 0.009 a frame,
    pan_astronaut's object 0.026)."""
    margin: float = 0.06
    """Band around a self-training matte left out of the loss, a share of the frame's longest side."""
    track: float = 0.04
    """Temporal constraint: outward from each key, a frame keeps the parts of its prediction within
    this share of the frame's longest side of the previous frame's matte. 0: each frame on its own."""
    flow_follow: bool = False
    """Motion cue (`mattes.motion`): the previous matte, carried along the object's own flow, bounds
    the network's (near it, little beyond the object's recent area). Off: it traded recall for IoU."""
    departure: float = 0.0
    """Motion cue: away from the carried matte, the network's matte is kept only where the motion
    departs from the background's by more than this share of the frame per frame (a look-alike
    moving with the background is not followed; a lost object is found by its motion). 0: off."""
    background_match: float = 0.0
    """Background cue (`mattes.background`): where the network calls object but the frame matches a frame
    near it aligned by the background's motion (mean absolute network-domain colour difference under
    this, over a 5x5 box), the pixel is background: a background the keys never showed moves with the
    camera, the object does not. 0: off (the paper's network alone)."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            (self.rounds >= 0, "rounds must be 0 or more"),
            (0.0 <= self.departure < 1.0, "departure must lie between 0 (off) and 1 (a share of the frame per frame)"),
            (0.0 <= self.background_match < 2.0,
             "background_match must lie between 0 (off) and 2 (a difference of network-domain colours, -1..1)"),
            (0.0 <= self.other_frames <= 1.0, "other_frames must lie between 0 and 1"),
            (0.0 <= self.margin < 1.0, "margin must lie between 0 and 1 (a share of the frame)"),
            (0.0 <= self.track < 1.0, "track must lie between 0 and 1 (a share of the frame)"),
            (self.max_speed >= 0.0, "max_speed must be 0 (no limit) or a positive share of the frame per frame"),
            (self.width >= 2, "width must be at least 2"),
            (self.steps >= 0, "steps must be 0 or more"),
            (self.budget >= 0, "budget must be 0 (no limit) or a positive number of minutes"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.lr > 0, "lr must be positive"),
            (0.0 < self.object_weight < 1.0, "object_weight must lie between 0 and 1"),
            (0.0 < self.threshold < 1.0, "threshold must lie between 0 and 1"),
            (self.dilate >= 0, "dilate must be 0 or more pixels"),
            (self.work_size >= 16, "work_size must be at least 16 pixels"),
            (self.log_every >= 1 and self.checkpoint_every >= 1, "log_every and checkpoint_every must be at least 1"),
        ]


# The CPU variants are bound by their budgets: on 2 cores more steps beat bigger batches and wider
# networks at equal time (docs/results.md), so they train the paper's network at 2/3 width in
# batches of 2, and their step counts are caps that the budget or the stopping rule reaches first.
# The final one trains on 96 px crops around the matte: 2.2x the steps of whole 192x108 frames in
# the same time, which took fixed_rocket from 21.36 to 23.03 dB at 10 minutes (64 px crops, with
# too little context around the hole, fell to 18.52). Their rate holds for 70% of the budget, then
# falls (or falls from the plateau that would have ended the run): at a constant rate the last step
# lands anywhere in a wide spread (deficient_coffee 22.1-26.6 dB from one seed to the next), and the
# fall took davis_bmx_objswan +0.38/+0.17 dB and deficient_coffee +1.24/+4.35 at equal steps, two
# seeds, with fixed_rocket -0.01/+0.15 and davis_blackswan_fixed -0.37/+0.04 (docs/results.md, 2026-12-07).
# A run with fewer than 2,800 steps when its fall is due holds the rate instead: on a slow machine
# (about 1,930 steps in the budget) the fall cost fixed_rocket 0.70 dB and davis_bmx_objswan 0.48.
class _CpuTrain(TypedDict, total=False):
    """The TrainConfig fields the CPU variants share (and the quick one partly overrides)."""

    cnum: int
    batch_size: int
    work_size: int
    lr_schedule: str
    lr_decay: float
    lr_hold_steps: int
    log_every: int
    checkpoint_every: int


_CPU = _CpuTrain(cnum=32, batch_size=2, work_size=256, lr_schedule="cosine", lr_decay=0.3, lr_hold_steps=2800,
                 log_every=50, checkpoint_every=200)


class _Removal(TypedDict):
    """The PropagateConfig fields of the presets made for a removal (quick and final), where a missed
    object pixel stays in the plate: the background cue on, and a threshold under the reference's 0.5
    (docs/results.md, mask propagation, 2026-12-03 and 2026-12-04)."""

    background_match: float
    threshold: float


_REMOVAL = _Removal(background_match=0.1, threshold=0.35)

PRESETS: dict[str, Preset] = {
    "quick": Preset(
        "A quick look: is the matte right, will the fill hold? The half-width network (1.0M parameters) "
        "at up to 192 px for 3 minutes of training on a CPU; the paper's network at up to 600 px for "
        "5 minutes on a GPU. A keyframe job first predicts its mattes for up to 2 minutes on a CPU "
        "(a 12-wide U-Net at 192 px), 3 on a GPU.",
        cpu=TrainConfig(preset="quick", **_CPU | _CpuTrain(cnum=24, work_size=192, log_every=25, checkpoint_every=100),
                        steps=10_000, budget=3.0, carry=True),
        gpu=TrainConfig(preset="quick", steps=10_000, budget=5.0, carry=True),
        propagate_cpu=PropagateConfig(preset="quick", width=12, steps=200, budget=2.0, work_size=192, log_every=25,
                                      checkpoint_every=100, **_REMOVAL),
        propagate_gpu=PropagateConfig(preset="quick", width=32, steps=2000, budget=3.0, **_REMOVAL),
    ),
    "final": Preset(
        "The final render, the default: on a CPU the paper's network at 2/3 width (1.8M parameters) at up "
        "to 256 px, on 96 px crops around the matte in batches of 2, for 8 minutes of training, so that a "
        "30-frame 216x120 shot is done in under 10 minutes on 2 cores; on a GPU the paper's network and "
        "schedule at up to 600 px (50,000 steps, then 20,000 with both regularizers) within an hour, the "
        "fine-tune stage taking its last 17 minutes, ending sooner when the held-out error stops falling. "
        "A keyframe job first predicts its mattes for up to 6 minutes on a CPU (a 16-wide U-Net at 256 px), "
        "30 on a GPU (the reference's U-Net).",
        cpu=TrainConfig(preset="final", **_CPU, crop=96, steps=20_000, budget=8.0, carry=True),
        gpu=TrainConfig(preset="final", steps=70_000, finetune_steps=20_000, budget=60.0, carry=True),
        propagate_cpu=PropagateConfig(preset="final", width=16, steps=600, budget=6.0, work_size=256, log_every=50,
                                      checkpoint_every=200, **_REMOVAL),
        propagate_gpu=PropagateConfig(preset="final", budget=30.0, **_REMOVAL),
    ),
    "paper": Preset(
        "The reference method as published, to compare against: the 4.05M-parameter network, whole frames "
        "in batches of 5, 50,000 reconstruction steps then 20,000 with both regularizers, up to 600 px, "
        "no time limit (hours on a GPU, days on a CPU); a keyframe job's mattes from the reference's "
        "U-Net (width 64, 8,000 steps at up to 608 px).",
        cpu=TrainConfig(preset="paper", steps=70_000, finetune_steps=20_000),
        gpu=TrainConfig(preset="paper", steps=70_000, finetune_steps=20_000),
        propagate_cpu=PropagateConfig(preset="paper"),
        propagate_gpu=PropagateConfig(preset="paper"),
    ),
}

PRESET_ALIASES: dict[str, str] = {"preview": "quick", "cpu": "final"}
"""Earlier preset names, still read (job files, scripts): 'preview' is now 'quick', 'cpu' is 'final'."""

PRESET_NAMES: tuple[str, ...] = (*PRESETS, *PRESET_ALIASES)
"""Every name --preset and a job file's `preset` accept."""


def preset_name(name: str) -> str:
    """The current name of a preset (an earlier name's successor); ConfigError lists the names on a typo."""
    name = PRESET_ALIASES.get(name, name)
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return name


def preset_config(name: str | None, device: str = "cpu") -> TrainConfig:
    """The training configuration of a named preset on `device` (a fresh copy); None: the default preset."""
    return PRESETS[preset_name(name or default_preset(device))].config(device)


def propagate_config(name: str | None, device: str = "cpu") -> PropagateConfig:
    """The mask propagation configuration of a named preset on `device` (a fresh copy); None: the default preset."""
    return PRESETS[preset_name(name or default_preset(device))].propagate_config(device)


def default_preset(device: str) -> str:
    """The preset a run takes when none is named: the final render, on any device."""
    return "final"
