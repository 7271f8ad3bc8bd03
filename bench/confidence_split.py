"""Where a clean plate's error lies: hole PSNR and detail split by the output's confidence, and per frame.

The shared scorer gives one hole PSNR a shot. This splits it by what `confidence.Y` says of each
matte pixel (invented by the network, mixed with a weak chain, carried), so that a change to the
carry or to the network is seen where it acts; `--region` splits it again by a second matte (an
evaluation-only mask of what the truth holds there, such as DAVIS's own object mattes under another
shot's holes). The PSNR of a band pools its pixels over the shot (the scorer's is the mean of the
frames'); detail is the scorer's (mean |Laplacian| of the output over the truth's, display-referred).

usage: python bench/confidence_split.py CLIP OUTPUT_PATTERN [--frames] [--region PATTERN]
       e.g. CLIP = /tmp/q5/clips/davis_bmx_objswan (a shot of the shared harness: gt., mask.####.exr)
            OUTPUT_PATTERN = /tmp/q5/davis_bmx_objswan/both/clean.####.exr
            --region '/work/shared/data/davis/bmx-trees/masks/*.png' (sorted, one a frame, any size)
"""
from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BANDS = (("invented", 0.0, 0.3), ("mixed", 0.3, 0.5), ("carried", 0.5, 1.01))
"""Confidence bands [low, high): the network's own fill (a chain below the mix writes 0), the mixed band
(sampling.MIX_FROM to TRUST), trusted chains."""


def _regions(pattern: str | None, count: int, size: tuple[int, int]) -> list[np.ndarray] | None:
    """One (h, w) bool matte per frame from a glob of 8-bit images (sorted), scaled to the plate's size."""
    if pattern is None:
        return None
    paths = sorted(glob.glob(pattern))[:count]
    if len(paths) < count:
        raise SystemExit(f"--region {pattern}: {len(paths)} files for {count} frames")
    out = []
    for path in paths:
        picture = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if picture is None:
            raise SystemExit(f"--region: cannot read {path}")
        out.append(cv2.resize(picture, size[::-1], interpolation=cv2.INTER_AREA) > 64)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip", type=Path)
    ap.add_argument("output", help="the clean plate's frame pattern (####)")
    ap.add_argument("--frames", action="store_true", help="also print each frame's hole PSNR and carried share")
    ap.add_argument("--region", default=None, help="a glob of one evaluation matte a frame, to split by")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    a = ap.parse_args()
    sys.path.insert(0, str(a.shared / "bench"))
    from exrio import frames, linear_to_srgb, read_exr  # the shared harness's reader and display transform

    truths = list(frames(str(a.clip / "gt.####.exr")))
    first = read_exr(truths[0][1])[0]
    regions = _regions(a.region, len(truths), first.shape[:2])
    groups = ["all"] + (["inside region", "outside region"] if regions is not None else [])
    error = {(g, b[0]): 0.0 for g in groups for b in BANDS} | {(g, "any"): 0.0 for g in groups}
    count = dict.fromkeys(error, 0)
    lap_out, lap_truth = dict.fromkeys(error, 0.0), dict.fromkeys(error, 0.0)
    per_frame = []
    for i, (frame, path) in enumerate(truths):
        truth = linear_to_srgb(read_exr(path)[0][..., :3]).astype(np.float32)
        matte = read_exr(str(a.clip / f"mask.{frame:04d}.exr"))[0][..., 0] > 0.5
        pixels, spec = read_exr(a.output.replace("####", f"{frame:04d}"))
        names = list(spec.channelnames)
        out = linear_to_srgb(pixels[..., [names.index(c) for c in "RGB"]]).astype(np.float32)
        confidence = pixels[..., names.index("confidence.Y")] if "confidence.Y" in names else np.zeros(matte.shape)
        squared = ((truth - out) ** 2).mean(-1)
        laplace_out = np.abs(cv2.Laplacian(out, cv2.CV_32F)).mean(-1)
        laplace_truth = np.abs(cv2.Laplacian(truth, cv2.CV_32F)).mean(-1)
        where = {"all": matte}
        if regions is not None:
            where |= {"inside region": matte & regions[i], "outside region": matte & ~regions[i]}
        for group, inside in where.items():
            for band, low, high in (*BANDS, ("any", 0.0, 2.0)):
                sel = inside & (confidence >= low) & (confidence < high)
                if sel.any():
                    error[group, band] += float(squared[sel].sum())
                    count[group, band] += int(sel.sum())
                    lap_out[group, band] += float(laplace_out[sel].sum())
                    lap_truth[group, band] += float(laplace_truth[sel].sum())
        per_frame.append((frame, 10 * np.log10(1 / max(float(squared[matte].mean()), 1e-12)),
                          float((confidence[matte] >= 0.5).mean())))
    total = count["all", "any"]
    print("| pixels | confidence | share of the hole | hole PSNR (pooled) | detail |")
    print("|---|---|---|---|---|")
    for group in groups:
        for band in (*(b[0] for b in BANDS), "any"):
            n = count[group, band]
            if not n:
                continue
            psnr = 10 * np.log10(n / max(error[group, band], 1e-12))
            detail = lap_out[group, band] / lap_truth[group, band] if lap_truth[group, band] else float("nan")
            print(f"| {group} | {band} | {n / total:.1%} | {psnr:.2f} | {detail:.2f} |")
    print(f"\nhole PSNR, the mean of the frames' (the scorer's): {np.mean([p for _, p, _ in per_frame]):.2f}")
    if a.frames:
        print("\n| frame | hole PSNR | carried (>= 0.5) |\n|---|---|---|")
        for frame, psnr, share in per_frame:
            print(f"| {frame} | {psnr:.2f} | {share:.0%} |")


if __name__ == "__main__":
    main()
