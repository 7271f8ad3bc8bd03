"""Known pixels first: what other frames show is carried into the matte, on real EXR files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from exr_helpers import write_test_exr
from ivi_vfx.carry import CONFIDENCE, TRUST, Carry, load_carry, trace_shot
from ivi_vfx.config import TrainConfig
from ivi_vfx.errors import ConfigError, ShapeError
from ivi_vfx.io.exr import read_exr
from ivi_vfx.jobs import JobSpec
from ivi_vfx.pipeline import render_job, run_job

# A tiny network and a few steps: these tests are about what is carried, not what is learnt.
TINY = TrainConfig(preset="test", cnum=8, steps=3, batch_size=2, work_size=64, log_every=1, carry=True)


def _static_shot(folder: Path, count: int = 6, height: int = 24, width: int = 40, gains: list[float] | None = None,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A locked-off textured wall with its own grain each frame, a square object crossing it left to right,
    and a 4x4 patch at the top left that an unmoving second object hides in every frame (never shown).

    Returns (truth, mattes): (T, H, W, 3) the wall as written (half-rounded), (T, H, W) the mattes.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    wall = rng.uniform(0.05, 0.8, (height, width, 3)).astype(np.float32)
    truths, mattes = [], []
    for t in range(count):
        truth = wall + rng.normal(0, 0.01, wall.shape).astype(np.float32)  # each frame's own grain
        truth *= (gains or [1.0] * count)[t]
        truth = truth.astype(np.float16).astype(np.float32)
        plate = truth.copy()
        matte = np.zeros((height, width), np.float32)
        x0 = 2 + 6 * t
        matte[8:16, x0:x0 + 6] = 1
        matte[1:5, 1:5] = 1
        plate[matte > 0] = (0.9, 0.05, 0.05)
        _write_frame(folder, 1001 + t, plate, matte)
        truths.append(truth)
        mattes.append(matte)
    return np.stack(truths), np.stack(mattes)


def _write_frame(folder: Path, frame: int, plate: np.ndarray, matte: np.ndarray) -> None:
    """Frame `frame` of plate.####.exr (RGB (H, W, 3), alpha 1) and of mask.####.exr (the (H, W) matte as A)."""
    write_test_exr(folder / f"plate.{frame:04d}.exr", np.concatenate([plate, np.ones_like(plate[..., :1])], -1))
    write_test_exr(folder / f"mask.{frame:04d}.exr", matte[..., None], channels=("A",))


def _spec(folder: Path, out: Path, **changes) -> JobSpec:
    return JobSpec(plate=str(folder / "plate.####.exr"), mask=str(folder / "mask.####.exr"),
                   out=str(out / "clean.####.exr"), **changes)


def _output(out: Path, frame: int) -> dict[str, np.ndarray]:
    image = read_exr(out / f"clean.{frame}.exr")
    return {name: image.channel(name) for name in image.channel_names}


def test_a_locked_off_shot_carries_the_frames_that_show_each_pixel(tmp_path: Path) -> None:
    truths, mattes = _static_shot(tmp_path / "in")
    out = tmp_path / "out"
    run_job(_spec(tmp_path / "in", out), device="cpu", cfg=TINY)
    for t in range(len(truths)):
        got = _output(out, 1001 + t)
        rgb = np.stack([got[c] for c in "RGB"], -1)
        moving = np.zeros(mattes[t].shape, bool)
        moving[8:16] = mattes[t][8:16] > 0
        # Every pixel the crossing object hides is shown by other frames, on whole pixels: the mean of
        # the nearest frames that show it, each with its grain, so within the grain of the truth.
        assert np.abs(rgb[moving] - truths[t][moving]).max() < 0.06
        assert got[CONFIDENCE][moving].min() >= TRUST
        shown = [s for s in range(len(truths)) if s != t and not mattes[s][moving].any()]
        assert shown  # the test shot is built so
        # The carried values are copies of the plate's own pixels, not a blend with the network: the
        # mean of whole-pixel samples of the frames that show them.
        carried = rgb[moving]
        candidates = np.stack([truths[s][moving] for s in range(len(truths)) if s != t])
        assert np.all((carried >= candidates.min(0) - 1e-3) & (carried <= candidates.max(0) + 1e-3))
        # The patch no frame shows is invented, and says so.
        assert np.all(got[CONFIDENCE][1:5, 1:5] == 0)
        outside = mattes[t] == 0
        assert np.all(got[CONFIDENCE][outside] == 1)
    folder = out / ".ivi" / "clean"
    assert (folder / "carry.npz").is_file()


def test_exposure_changes_between_frames_leave_no_step(tmp_path: Path) -> None:
    gains = [1.0, 1.15, 1.3, 1.45, 1.6, 1.75]
    truths, mattes = _static_shot(tmp_path / "in", gains=gains)
    out = tmp_path / "out"
    run_job(_spec(tmp_path / "in", out), device="cpu", cfg=TINY)
    for t in (0, 3, 5):
        got = _output(out, 1001 + t)
        rgb = np.stack([got[c] for c in "RGB"], -1)
        moving = np.zeros(mattes[t].shape, bool)
        moving[8:16] = mattes[t][8:16] > 0
        # Without the exposure match a pixel carried from a frame 15% brighter or darker would be off by
        # about 0.06 on average, all one way; matched, only the grain is left, with no bias.
        error = rgb[moving] - truths[t][moving]
        assert np.abs(error).mean() < 0.025 and abs(float(error.mean())) < 0.005


def test_a_frame_painted_clean_is_the_first_source(tmp_path: Path) -> None:
    truths, mattes = _static_shot(tmp_path / "in")
    painted = tmp_path / "painted"
    write_test_exr(painted / "clean.1003.exr", np.concatenate([truths[2], np.ones_like(truths[2][..., :1])], -1))
    out = tmp_path / "out"
    run_job(_spec(tmp_path / "in", out, clean=str(painted / "clean.####.exr")), device="cpu", cfg=TINY)
    for t in range(len(truths)):
        got = _output(out, 1001 + t)
        rgb = np.stack([got[c] for c in "RGB"], -1)
        inside = mattes[t] > 0
        # Every frame takes the painted frame, at the same place (locked off): its pixels exactly,
        # even the patch that no plate frame shows.
        assert np.array_equal(rgb[inside], truths[2][inside]), t
        assert got[CONFIDENCE][inside].min() >= TRUST


def test_clean_frames_that_do_not_fit_are_refused_by_name(tmp_path: Path) -> None:
    _static_shot(tmp_path / "in")
    wrong = tmp_path / "wrong"
    write_test_exr(wrong / "clean.1002.exr", np.ones((10, 12, 4), np.float32))
    with pytest.raises(ShapeError, match=r"clean\.1002\.exr is 12x10 .*Reformat"):
        run_job(_spec(tmp_path / "in", tmp_path / "out", clean=str(wrong / "clean.####.exr")), device="cpu", cfg=TINY)
    with pytest.raises(ConfigError, match="--clean-frames 1200: frames 1200 are not frames of the plate"):
        write_test_exr(wrong / "clean.1200.exr", np.ones((24, 40, 4), np.float32))
        run_job(_spec(tmp_path / "in", tmp_path / "out2", clean=str(wrong / "clean.####.exr"), clean_frames="1200"),
                device="cpu", cfg=TINY)
    assert not list((tmp_path / "out").glob("*.exr")) and not list((tmp_path / "out2").glob("*.exr"))


def test_a_chunk_renders_from_the_folder_as_the_whole_job_did(tmp_path: Path) -> None:
    _static_shot(tmp_path / "in")
    out = tmp_path / "out"
    spec = _spec(tmp_path / "in", out)
    run_job(spec, device="cpu", cfg=TINY)
    first = {f: _output(out, f) for f in (1002, 1005)}
    render_job(spec.replace(preset="quick"), [1002, 1005], device="cpu", overwrite=True)  # a farm chunk
    for frame, channels in first.items():
        again = _output(out, frame)
        assert sorted(again) == sorted(channels)
        for name in channels:
            assert np.array_equal(again[name], channels[name]), (frame, name)


def test_large_plates_carry_from_the_full_resolution_files(tmp_path: Path) -> None:
    """At a working size half the plate's, the carried pixels still come from the plate's own
    pixels (the grain is kept), not from the working frames scaled up."""
    truths, mattes = _static_shot(tmp_path / "in", height=48, width=80)
    out = tmp_path / "out"
    run_job(_spec(tmp_path / "in", out), device="cpu", cfg=TINY.replace(work_size=40))
    t = 2
    got = _output(out, 1001 + t)
    rgb = np.stack([got[c] for c in "RGB"], -1)
    moving = np.zeros(mattes[t].shape, bool)
    moving[8:16] = mattes[t][8:16] > 0
    error = np.abs(rgb[moving] - truths[t][moving])
    assert error.mean() < 0.015
    # The grain survives: the carried pixels vary from one to the next as much as the truth's do.
    detail = np.abs(np.diff(rgb[8:16], axis=1))[moving[8:16, 1:]].mean()
    truth_detail = np.abs(np.diff(truths[t][8:16], axis=1))[moving[8:16, 1:]].mean()
    assert detail > 0.6 * truth_detail


def test_a_pan_carries_along_the_flow_and_leaves_what_no_frame_shows(tmp_path: Path) -> None:
    """A camera pan (the wall slides 2 pixels a frame): chains follow it to where the pixel is shown."""
    rng = np.random.default_rng(3)
    count, height, width = 8, 32, 48
    wall = rng.uniform(0.05, 0.8, (height, width + 2 * count, 3)).astype(np.float32)
    wall = (wall + np.roll(wall, 1, 0) + np.roll(wall, 1, 1) + np.roll(wall, 1, (0, 1))) / 4
    images, holes, truths = [], [], []
    for t in range(count):
        truth = wall[:, 2 * t: 2 * t + width]
        hole = np.zeros((height, width), bool)
        hole[10:20, 4 + 4 * t: 12 + 4 * t] = True
        image = truth.copy()
        image[hole] = (0.9, 0.1, 0.1)
        images.append(image)
        holes.append(hole)
        truths.append(truth)
    carry = trace_shot(np.stack(images), np.stack(holes))
    for t in range(count):
        hits = carry.hits[t]
        trusted = hits.best >= TRUST
        assert trusted.mean() > 0.9
        ys, xs = np.divmod(hits.points[trusted], width)
        assert np.abs(carry.values[t][trusted] - truths[t][ys, xs]).mean() < 0.03
    assert not carry.static.any()


def test_the_carry_file_round_trips_and_is_not_reused_for_another_shot(tmp_path: Path) -> None:
    from ivi_vfx.carry import save_carry
    _, mattes = _static_shot(tmp_path / "in")
    images = np.random.default_rng(0).uniform(0.1, 0.9, (*mattes.shape, 3)).astype(np.float32)
    carry = trace_shot(images, mattes > 0)
    path = save_carry(tmp_path / "carry.npz", carry, "abc")
    again = load_carry(path, "abc")
    assert again is not None and again.work == carry.work
    for a, b in zip(again.hits, carry.hits):
        assert np.array_equal(a.points, b.points) and np.array_equal(a.weight, b.weight)
    assert load_carry(path, "another shot") is None
    path.write_bytes(b"not a carry")
    with pytest.raises(ConfigError, match="carry.npz: not a readable carry"):
        load_carry(path)


def test_farm_tasks_name_the_clean_frames_on_their_command_lines(tmp_path: Path) -> None:
    """Train traces from the clean frames and every Render chunk samples them: both tasks carry the path, so a
    farm's path mapping sees it."""
    from ivi_vfx.farm.commands import job_paths, render_args, train_args

    spec = _spec(tmp_path / "in", tmp_path / "out", clean=str(tmp_path / "clean pass/clean.####.exr")).absolute()
    paths = job_paths(spec)
    for args in (train_args(spec, "job.json", paths, "cuda:1"), render_args(spec, "job.json", paths, "1-5", "cpu")):
        assert args[args.index("--clean") + 1] == str(tmp_path / "clean pass/clean.####.exr")


def _sliding(count: int, height: int, width: int, speeds: list[float], seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A textured wall in horizontal bands, band k sliding speeds[k] pixels a frame (sub-pixel, bilinear),
    with grain, and a square matte that crosses it. Returns (images, holes): (T, H, W, 3), (T, H, W)."""
    import cv2

    rng = np.random.default_rng(seed)
    wall = cv2.GaussianBlur(rng.uniform(0, 1, (height, width * 2, 3)).astype(np.float32), (0, 0), 2.0)
    wall = 0.05 + 0.75 * (wall - wall.min()) / (wall.max() - wall.min())  # contrast well above the grain
    bands = np.array_split(np.arange(height), len(speeds))
    images, holes = [], []
    for t in range(count):
        image = np.zeros((height, width, 3), np.float32)
        for rows, speed in zip(bands, speeds):
            shift = np.float32([[1, 0, speed * t], [0, 1, 0]])  # the view moves right: the wall slides left
            view = cv2.warpAffine(wall, shift, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            image[rows] = view[rows]
        image += rng.normal(0, 0.004, image.shape).astype(np.float32)
        hole = np.zeros((height, width), bool)
        hole[height // 3: 2 * height // 3, 8 + 3 * t: 22 + 3 * t] = True
        image[hole] = (0.9, 0.1, 0.1)
        images.append(image)
        holes.append(hole)
    return np.stack(images), np.stack(holes)


def test_a_pan_of_one_plane_follows_its_registered_camera_exactly() -> None:
    """DIS's vectors wander by tenths of a pixel; a pan is followed by its registered camera, to hundredths."""
    from ivi_vfx.carry import _log_domain
    from ivi_vfx.carry.flow import background_flows

    images, holes = _sliding(8, 60, 96, [1.37])
    flows = background_flows(_log_domain(images), images, holes)
    assert flows.rigid and not flows.static.any()
    # Everywhere, the matte included; DIS's own vectors here are off by 0.03 on average, 0.25 at worst,
    # and a chain through them wanders where one through the camera does not.
    error = np.abs(flows.forward[..., 0] + 1.37)
    assert error.mean() < 0.03 and error.max() < 0.08
    assert np.abs(flows.forward[..., 1]).max() < 0.08
    assert np.abs(flows.backward + flows.forward).max() < 0.01  # the same camera both ways


def test_parallax_keeps_the_measured_flow() -> None:
    """Two depths moving apart are not one plane: the flow is measured, not the camera's."""
    from ivi_vfx.carry import _log_domain
    from ivi_vfx.carry.flow import background_flows

    images, holes = _sliding(8, 60, 96, [2.5, 0.0])
    flows = background_flows(_log_domain(images), images, holes)
    assert not flows.rigid
    top, bottom = flows.forward[:, 5:15, 40:60, 0], flows.forward[:, 45:55, 40:60, 0]
    assert np.median(top) < -2.0 and abs(float(np.median(bottom))) < 0.3


def test_a_locked_off_matte_edge_is_carried_from_the_very_next_frame() -> None:
    """On a locked-off shot, a matte moving less than a guard's width a frame still gets its edge back.

    A chain that has moved is off by a fraction of a pixel, so a moving chain's frame shows only
    what is one pixel clear of its matte; a chain along locked-off links sits on its own pixel, and
    the frame just after shows the column its matte has just left, exactly.
    """
    rng = np.random.default_rng(3)
    count, height, width = 5, 20, 32
    wall = rng.uniform(0.1, 0.8, (height, width, 3)).astype(np.float32)
    images = np.stack([wall + rng.normal(0, 0.005, wall.shape).astype(np.float32) for _ in range(count)])
    holes = np.zeros((count, height, width), bool)
    for t in range(count):
        holes[t, 6:14, 10 + t: 18 + t] = True  # one pixel a frame: the edge it leaves is next to it
    carry = trace_shot(images, holes)
    assert carry.static.all()
    t = 1
    found = carry.hits[t]
    ys, xs = np.divmod(found.points, width)
    left = xs == 10 + t  # the matte's first column, shown by frame t + 1 right beside its matte
    assert left.any()
    assert np.all(found.source[left, 0] == t + 1)
    assert np.all(found.weight[left, 0] > 0.9)  # a whole link: only the grain's mismatch costs
    np.testing.assert_array_equal(found.pos[left, 0], np.stack([xs[left], ys[left]], 1).astype(np.float32))
    # The value is frame t + 1's own pixel, averaged with the next hit (frame t + 2, further clear)
    # by their nearly equal weights: within a hundredth of the grain of either.
    want = (images[t + 1][ys[left], xs[left]] + images[t + 2][ys[left], xs[left]]) / 2
    np.testing.assert_allclose(carry.values[t][left], want, atol=1e-4)


def _three_carried(folder: Path, height: int, width: int, row: int, confidences: list[float]) -> Carry:
    """A two-frame plate of 0.5 everywhere (exact in half float), and a carry that brings 0.5 from the
    second frame into pixels 3, 4 and 5 of `row` of the first, along chains of these confidences."""
    from ivi_vfx.carry.chains import Hits

    for frame in (1001, 1002):
        write_test_exr(folder / f"plate.{frame}.exr", np.full((height, width, 4), 0.5, np.float32))
    points = np.array([row * width + 3, row * width + 4, row * width + 5], np.int64)
    pos = np.stack([points % width, points // width], 1).astype(np.float32)[:, None]
    hits = Hits(points=points, source=np.ones((3, 1), np.int32), pos=pos,
                weight=np.array(confidences, np.float32)[:, None])
    empty = Hits(points=np.zeros(0, np.int64), source=np.zeros((0, 1), np.int32), pos=np.zeros((0, 1, 2), np.float32),
                 weight=np.zeros((0, 1), np.float32))
    return Carry(frames=(1001, 1002), work=(height, width), exposure=np.zeros((2, 3), np.float32), clean=(),
                 static=np.ones(1, bool), hits=[hits, empty], values=[np.full((3, 3), 0.5, np.float32),
                                                                      np.zeros((0, 3), np.float32)])


def test_weak_chains_are_mixed_half_and_half_with_the_fill(tmp_path: Path) -> None:
    """Between MIX_FROM and TRUST, the output is the carried value and the network's fill in equal parts."""
    from ivi_vfx.carry import CarrySampler
    from ivi_vfx.carry.sampling import MIX, MIX_FROM
    from ivi_vfx.io.exr import read_exr
    from ivi_vfx.io.sequence import find_sequence

    height, width = 8, 12
    carry = _three_carried(tmp_path, height, width, 2, [0.9, (MIX_FROM + TRUST) / 2, MIX_FROM / 2])  # 3 strengths
    sampler = CarrySampler(carry, find_sequence(str(tmp_path / "plate.####.exr")))
    fill = np.zeros((height, width, 4), np.float32)  # the network's fill: 0, the matte: row 2
    fill[2, :, 3] = 1.0
    out, names = sampler.blend(read_exr(tmp_path / "plate.1001.exr"), 1001, fill, ("R", "G", "B", "A"))
    red = out[2, 3:6, names.index("R")]
    # Each is its own working pixel (no scaling), so the ramp between regions lies on pixel centres.
    np.testing.assert_allclose(red, [0.5, MIX * 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(out[2, 3:6, names.index(CONFIDENCE)], [0.9, (MIX_FROM + TRUST) / 2, 0.0], atol=1e-6)


def test_weaker_chains_take_the_low_frequencies_of_the_networks_own_fill_by_their_confidence(tmp_path: Path) -> None:
    """Given the network's own fill of the whole matte, a carried pixel's low frequencies are the
    confidence-weighted mean of the two (in the network domain); confidence 1 and invented pixels
    stay as they were, and so does every pixel outside the matte."""
    from ivi_vfx.carry import CarrySampler
    from ivi_vfx.color import Shaper
    from ivi_vfx.io.exr import read_exr
    from ivi_vfx.io.sequence import find_sequence

    height, width = 10, 40
    carry = _three_carried(tmp_path, height, width, 4, [1.0, 0.9, 0.4])  # a full chain, a weaker one, a weak one
    shaper = Shaper()
    sampler = CarrySampler(carry, find_sequence(str(tmp_path / "plate.####.exr")), shaper=shaper)
    pixels = np.full((height, width, 4), 0.5, np.float32)  # the fill as composited: 0.5 (alpha: the matte)
    pixels[..., 3] = 0.0
    pixels[:, :30, 3] = 1.0  # the matte: columns 0-29, far wider than the Gaussian around the pixels
    pixels[:, 30:, :3] = 0.7  # the plate outside it
    own = np.full((height, width, 3), 0.25, np.float32)  # the network's own fill, everywhere the same
    out, names = sampler.blend(read_exr(tmp_path / "plate.1001.exr"), 1001, pixels.copy(), ("R", "G", "B", "A"),
                               own=own)
    red = out[4, 2:6, names.index("R")]

    def weighed(share: float) -> float:
        mine, theirs = shaper.encode(torch.tensor(0.5)), shaper.encode(torch.tensor(0.25))
        return float(shaper.decode(mine + (1.0 - share) * (theirs - mine)))

    # invented (left as the fill), full chain (as carried), weaker (10% of the way), mixed (60%)
    np.testing.assert_allclose(red, [0.5, 0.5, weighed(0.9), weighed(0.4)], atol=1e-5)
    assert red[1] == 0.5  # untouched, bit for bit
    np.testing.assert_array_equal(out[:, 30:, :4], pixels[:, 30:, :4])
    np.testing.assert_allclose(out[4, 2:6, names.index(CONFIDENCE)], [0.0, 1.0, 0.9, 0.4], atol=1e-6)


GRAIN = 0.025


def _grainy_pan(folder: Path, hidden: bool) -> tuple[np.ndarray, np.ndarray]:
    """A wall panning 2 pixels a frame with its own grain (GRAIN) each frame, under a matte moving 3
    pixels a frame that other frames show (chains of confidence about 0.8); with `hidden`, also a
    patch that a second object hides in every frame, so that the network has something to learn.

    Returns (truth, mattes): (T, H, W, 3) as written (half-rounded), (T, H, W) the mattes."""
    rng = np.random.default_rng(3)
    count, height, width = 8, 32, 48
    wall = rng.uniform(0.05, 0.8, (height, width + 2 * count, 3)).astype(np.float32)
    wall = (wall + np.roll(wall, 1, 0) + np.roll(wall, 1, 1) + np.roll(wall, 1, (0, 1))) / 4
    folder.mkdir(parents=True, exist_ok=True)
    truths, mattes = [], []
    for t in range(count):
        truth = wall[:, 2 * t: 2 * t + width] + rng.normal(0, GRAIN, (height, width, 3)).astype(np.float32)
        truth = truth.astype(np.float16).astype(np.float32)
        matte = np.zeros((height, width), np.float32)
        matte[10:20, 14 + 3 * t: 20 + 3 * t] = 1
        if hidden:
            matte[24:30, 2:8] = 1
        plate = truth.copy()
        plate[matte > 0] = (0.9, 0.1, 0.1)
        _write_frame(folder, 1001 + t, plate, matte)
        truths.append(truth)
        mattes.append(matte)
    return np.stack(truths), np.stack(mattes)


@pytest.mark.parametrize("hidden", [False, True], ids=["all-carried", "some-invented"])
def test_the_networks_own_fill_weighs_weaker_chains_only_once_it_has_learnt_the_shot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hidden: bool) -> None:
    """A job whose every matte pixel is carried never trains, and its untrained network touches none of
    them; one that trains weighs its weaker chains' low frequencies against the network's own fill.
    Rendered again with the network's fill made black, the first is the same to the bit, the second
    darker where its chains are weaker, with the same grain."""
    from ivi_vfx import checkpoint as ckpt
    from ivi_vfx import render
    from ivi_vfx.color import Shaper

    truths, mattes = _grainy_pan(tmp_path / "in", hidden)
    spec = _spec(tmp_path / "in", tmp_path / "out")
    run_job(spec, device="cpu", cfg=TINY)
    data = ckpt.load(spec.model_path)
    assert data["trained"] is hidden
    shaper = Shaper(**data["shaper"])
    first = {t: _output(tmp_path / "out", 1001 + t) for t in range(len(truths))}
    monkeypatch.setattr(render, "predict", lambda model, shot, frame, device="cpu": np.zeros(
        (*shot.geometry.full, 3), np.float32))
    render_job(spec, device="cpu", overwrite=True)
    moving = np.zeros(mattes[0].shape, bool)
    moving[10:20] = True
    for t in range(len(truths)):
        got, before = _output(tmp_path / "out", 1001 + t), first[t]
        if not hidden:
            for name in before:
                assert np.array_equal(got[name], before[name]), (t, name)
            continue
        weaker = moving & (mattes[t] > 0) & (got[CONFIDENCE] >= TRUST) & (got[CONFIDENCE] < 1.0)
        assert weaker.sum() > 30
        rgb, was = (np.stack([image[c] for c in "RGB"], -1) for image in (got, before))
        assert (rgb[weaker] < was[weaker]).mean() > 0.95  # pulled towards the black fill
        # The grain is not smoothed away (in the network's domain, where the two are weighed): only the
        # low frequencies move.
        pairs = weaker[:, 1:] & weaker[:, :-1]
        detail, detail_was = (np.abs(np.diff(shaper.encode(torch.from_numpy(x)).numpy(), axis=1))[pairs].mean()
                              for x in (rgb, was))
        assert detail > 0.8 * detail_was


def test_a_locked_off_run_fills_each_pixel_with_every_frame_that_shows_it(tmp_path: Path) -> None:
    """On a locked-off shot, a hidden pixel is the mean of all the frames that show it, brought to each
    frame's exposure: it holds still from frame to frame, its full-resolution edge included, and a
    farm chunk renders it from the job folder alone."""
    from ivi_vfx.carry.still import still_runs

    assert still_runs(np.array([True, True, False, True, False, False, True])) == [(0, 2), (3, 4), (6, 7)]
    gains = [1.0, 1.1, 1.2, 1.1, 1.0, 0.9]
    folder, out = tmp_path / "in", tmp_path / "out"
    rng = np.random.default_rng(4)
    height, width, count = 48, 80, len(gains)
    wall = rng.uniform(0.1, 0.8, (height, width, 3)).astype(np.float32)
    folder.mkdir()
    truths, mattes = [], []
    for t, gain in enumerate(gains):
        truth = ((wall + rng.normal(0, 0.01, wall.shape)) * gain).astype(np.float16).astype(np.float32)
        matte = np.zeros((height, width), bool)
        matte[16:32, 20 + t: 36 + t] = True  # a full-resolution pixel a frame: half a working pixel
        plate = np.where(matte[..., None], np.float32([0.9, 0.05, 0.05]), truth)
        write_test_exr(folder / f"plate.{1001 + t}.exr", np.concatenate([plate, np.ones_like(plate[..., :1])], -1))
        write_test_exr(folder / f"mask.{1001 + t}.exr", matte[..., None].astype(np.float32), channels=("A",))
        truths.append(truth)
        mattes.append(matte)
    spec = _spec(folder, out)
    run_job(spec, device="cpu", cfg=TINY.replace(work_size=40))
    carry = load_carry(spec.carry_path)
    assert carry is not None and carry.static.all() and len(carry.stills) == 1
    shows = ~np.stack(mattes)
    flat = np.stack([truths[s] / gains[s] for s in range(count)])  # each frame at the first's exposure
    mean = (flat * shows[..., None]).sum(0) / np.maximum(shows.sum(0), 1)[..., None]
    rendered = {}
    for t in range(count):
        got = _output(out, 1001 + t)
        rgb = np.stack([got[c] for c in "RGB"], -1)
        shown = mattes[t] & shows.any(0)  # every pixel of this matte but the columns all the mattes hide
        assert shown.sum() >= 4 * 16  # the columns the matte crosses in the shot's six frames
        # The exposure is measured from the plate (to within a fraction of a percent), the mean is exact.
        np.testing.assert_allclose(rgb[shown], mean[shown] * gains[t], atol=0.01)
        assert np.all(got[CONFIDENCE][shown] == 1.0)
        assert np.array_equal(rgb[~mattes[t]], truths[t][~mattes[t]])  # the plate, bit for bit
        rendered[t] = rgb
    # Held still: a pixel hidden in two neighbouring frames differs between them by their exposures only.
    both = mattes[2] & mattes[3] & shows.any(0)
    np.testing.assert_allclose(rendered[2][both] / gains[2], rendered[3][both] / gains[3], atol=0.005)
    render_job(spec, [1003], device="cpu", overwrite=True)  # a farm chunk, from the job folder
    again = _output(out, 1003)
    assert np.array_equal(np.stack([again[c] for c in "RGB"], -1), rendered[2])


def test_a_locked_off_background_that_changes_is_carried_from_near_frames_not_averaged(tmp_path: Path) -> None:
    """A locked-off shot whose background changes in one place (light coming onto it): the mean of its
    frames there is a picture that no frame shows, so the still background leaves it to the chains,
    which bring it from the nearest frames; the static wall beside it keeps the mean of every frame."""
    import cv2

    folder, out = tmp_path / "in", tmp_path / "out"
    rng = np.random.default_rng(6)
    height, width, count = 48, 80, 16
    wall = rng.uniform(0.1, 0.8, (height, width, 3)).astype(np.float32)
    before = cv2.GaussianBlur(rng.uniform(0.1, 0.8, (16, 20, 3)).astype(np.float32), (0, 0), 1.0)
    truths, mattes = [], []
    folder.mkdir()
    for t in range(count):
        truth = wall + rng.normal(0, 0.01, wall.shape).astype(np.float32)
        truth[16:32, 20:40] = before + 0.3 * t / (count - 1) + rng.normal(0, 0.01, before.shape)  # a slow change
        truth = truth.astype(np.float16).astype(np.float32)
        matte = np.zeros((height, width), bool)
        matte[16:32, 12 + 4 * t: 20 + 4 * t] = True
        plate = np.where(matte[..., None], np.float32([0.9, 0.05, 0.05]), truth)
        write_test_exr(folder / f"plate.{1001 + t}.exr", np.concatenate([plate, np.ones_like(plate[..., :1])], -1))
        write_test_exr(folder / f"mask.{1001 + t}.exr", matte[..., None].astype(np.float32), channels=("A",))
        truths.append(truth)
        mattes.append(matte)
    spec = _spec(folder, out)
    run_job(spec, device="cpu", cfg=TINY.replace(work_size=40))
    carry = load_carry(spec.carry_path)
    assert carry is not None and len(carry.stills) == 1
    still = carry.stills[0]
    t, on_the_wall = 2, 12  # frames whose mattes lie on the changing patch and on the still wall
    assert still.holds(t) and still.holds(on_the_wall)
    run = slice(still.first, still.last + 1)  # DIS may take the change of light for motion on some pair
    shows = ~np.stack(mattes[run])
    pairs = (shows[1:] & shows[:-1]).sum(0)  # successive frames that both show a pixel
    x0, y0, _, _ = still.box
    count_full = np.zeros((height, width), np.int32)
    count_full[y0:y0 + still.count.shape[0], x0:x0 + still.count.shape[1]] = still.count
    changing = np.zeros((height, width), bool)
    changing[16:32, 20:40] = True
    judged = changing & (pairs >= 6) & np.stack(mattes[run]).any(0)  # hidden somewhere, and judged
    assert judged.sum() > 100 and np.all(count_full[judged] == 0)  # left to the chains
    mean = (np.stack(truths[run]) * shows[..., None]).sum(0) / np.maximum(shows.sum(0), 1)[..., None]
    got = _output(out, 1001 + t)
    rgb = np.stack([got[c] for c in "RGB"], -1)
    under = mattes[t] & changing & shows.any(0)
    assert under.sum() > 50
    near, averaged = (np.abs(rgb - truths[t])[under].mean(), np.abs(mean - truths[t])[under].mean())
    assert near < 0.5 * averaged  # the nearest frames, not the blur of all of them
    assert np.array_equal(rgb[~mattes[t]], truths[t][~mattes[t]])
    got = _output(out, 1001 + on_the_wall)
    rgb = np.stack([got[c] for c in "RGB"], -1)
    on_wall = mattes[on_the_wall] & (count_full > 0)
    assert on_wall.sum() > 0.95 * 8 * 16  # grain alone may pass for a change on a pixel or two
    np.testing.assert_allclose(rgb[on_wall], mean[on_wall], atol=0.01)
    assert np.all(got[CONFIDENCE][on_wall] == 1.0)
