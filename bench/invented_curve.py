"""How the network's invented pixels, and the trainer's own estimate, move as training goes on.

With the carry, the network fills only what no frame shows (the shot's hole after `carry.lift`).
Training stops, or begins its rate's fall, on a plateau of the trainer's estimate: hole PSNR on
known pixels held out of the loss (validation.py). This bench asks whether that estimate follows
the quality of the invented pixels themselves. It trains the final preset's CPU variant with the
carry on one shot of the shared harness for a fixed number of steps and, every `--every` steps,
fills every frame with the network as it then is (`render.network_fill`, working resolution,
before the render's agreement and blends) and measures hole PSNR on the invented pixels against
the ground truth, display-referred as the shared scorer measures. Prints a markdown table.

usage: python bench/invented_curve.py --clip fixed_rocket [--steps 6000] [--every 400] [--set key=value ...]
                                      [--shared ../shared]
Needs the harness's clips (`python ../shared/bench/clips.py DIR`, given as --clips DIR) besides the project.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from quality import _value  # bench/quality.py: a --set value as JSON, else the string

ROOT = Path(__file__).resolve().parent.parent


def invented_psnr(model: torch.nn.Module, shot, truth: torch.Tensor) -> float:
    """Hole PSNR (dB, display-referred) of the network's fill over the shot's holes against `truth`.

    Args:
        shot: the lifted shot (its holes are what no frame shows).
        truth: (T, 3, ph, pw) network-domain ground truth, padded as the shot.
    """
    from ivi_vfx.render import network_fill
    from ivi_vfx.validation import display

    was_training = model.training
    model.eval()
    squared, count = 0.0, 0.0
    for index in range(len(shot.frames)):
        hole = shot.holes[index:index + 1] > 0.5
        if not hole.any():
            continue
        fill = display(shot.shaper.decode(network_fill(model, shot, index)))
        want = display(shot.shaper.decode(truth[index:index + 1]))
        squared += float(((fill - want) ** 2)[hole.expand_as(fill)].sum())
        count += 3.0 * float(hole.sum())
    model.train(was_training)
    return 10.0 * math.log10(1.0 / max(squared / max(count, 1.0), 1e-12))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", required=True, help="a clip of the shared harness, e.g. fixed_rocket")
    ap.add_argument("--clips", type=Path, default=Path("/tmp/clips"), help="folder the harness wrote its clips to")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--every", type=int, default=400)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a TrainConfig field (JSON value)")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    a = ap.parse_args()
    sys.path.insert(0, str(a.shared / "bench"))

    from ivi_vfx.carry import carry_shot, lift
    from ivi_vfx.config import preset_config
    from ivi_vfx.io.exr import read_exr
    from ivi_vfx.io.sequence import find_sequence
    from ivi_vfx.shot import load_shot, plate_rgb_work
    from ivi_vfx.train import fit

    changes = {key: _value(value) for key, value in (item.split("=", 1) for item in a.set)}
    cfg = preset_config("final", "cpu").replace(budget=0, steps=a.steps, **changes)
    clip = a.clips / a.clip
    plate = find_sequence(str(clip / "plate.####.exr"))
    shot = load_shot(plate, find_sequence(str(clip / "mask.####.exr"), plate.frames), work_size=cfg.work_size)
    gt = find_sequence(str(clip / "gt.####.exr"), plate.frames)
    truth = shot.geometry.pad(shot.shaper.encode(torch.stack(
        [plate_rgb_work(read_exr(gt.path(frame)), shot.geometry) for frame in gt.frames])))
    lifted = lift(shot, carry_shot(shot))
    rows: list[tuple[int, float, float | None]] = []

    def on_step(info) -> bool:
        if info.step % a.every == 0:
            rows.append((info.step, invented_psnr(info.model, lifted, truth), info.estimate_db))
        return False

    result = fit(lifted, cfg, device="cpu", on_step=on_step)
    if not rows or rows[-1][0] != result.step:
        rows.append((result.step, invented_psnr(result.model, lifted, truth), result.estimate_db))
    settings = " ".join(a.set) or "the preset's"
    print(f"\n{a.clip}, final preset (CPU), {settings} settings, {result.step} steps\n")
    print("| step | invented pixels' hole PSNR (dB) | trainer's estimate (dB) |")
    print("|---|---|---|")
    for step, invented, estimate in rows:
        print(f"| {step} | {invented:.2f} | {'-' if estimate is None else f'{estimate:.2f}'} |")


if __name__ == "__main__":
    main()
