"""What an output frame carries besides the fill (issue 24): a multipart plate's other parts pass through,
the other layers are left as they were and named (the layer policy), and the header says who made it."""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import OpenEXR
import pytest

from exr_helpers import read_with_openexr, write_test_exr
from ivi_vfx import __version__
from ivi_vfx.config import TrainConfig
from ivi_vfx.io.exr import read_exr
from ivi_vfx.jobs import JobSpec
from ivi_vfx.pipeline import render_job, run_job
from ivi_vfx.provenance import LAYER_POLICY, unfilled

TINY = TrainConfig(preset="test", cnum=8, steps=2, batch_size=2, work_size=32, log_every=1, validate_every=0,
                   threads=1)  # one thread: two on a loaded 2-core machine stall
H, W = 24, 32


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # two on a loaded 2-core machine stall


def _multipart_shot(folder: Path, count: int = 2) -> tuple[str, str, list[dict[str, np.ndarray]]]:
    """Plates of two parts as Nuke writes them: 'rgba' (R, G, B, A and a depth AOV, half) with Nuke's
    Software and node hash, and 'utility' (Z float, id uint32); a square object under the matte."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    utilities = []
    for t in range(count):
        frame = 1001 + t
        matte = np.zeros((H, W), np.float32)
        matte[8:15, 6 + 3 * t:13 + 3 * t] = 1
        rgba = {c: rng.uniform(0.05, 0.8, (H, W)).astype(np.float16) for c in "RGB"}
        for c, v in zip("RGB", (0.9, 0.1, 0.1)):
            rgba[c][matte > 0] = v
        rgba["A"] = np.ones((H, W), np.float16)
        rgba["depth.Z"] = np.where(matte > 0, 2.0, 10.0).astype(np.float16)  # the object is nearer
        utility = {"Z": rng.uniform(1, 100, (H, W)).astype(np.float32),
                   "id": (rng.integers(0, 2**32 - 1, (H, W), dtype=np.uint64)).astype(np.uint32)}
        utilities.append(utility)
        header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage,
                  "Software": "Nuke 14.0v5", "nuke/node_hash": "b3f2a9c01d4e5f60"}
        OpenEXR.File([OpenEXR.Part(header, rgba, name="rgba"),
                      OpenEXR.Part({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                                   dict(utility), name="utility")]).write(str(folder / f"plate.{frame}.exr"))
        write_test_exr(folder / f"mask.{frame}.exr", matte[..., None], channels=("A",))
    return str(folder / "plate.####.exr"), str(folder / "mask.####.exr"), utilities


def test_a_multipart_plates_other_parts_and_layers_pass_through_named(tmp_path: Path) -> None:
    """The other parts were dropped (with a warning); the depth AOV kept the object without saying so."""
    plate, mask, utilities = _multipart_shot(tmp_path / "in")
    for frame in (1001, 1002):  # shot a day ago: a capDate of the moment of writing cannot pass for it
        os.utime(tmp_path / "in" / f"plate.{frame}.exr", (time.time() - 86400, time.time() - 86400))
    spec = JobSpec(plate=plate, mask=mask, out=str(tmp_path / "out" / "clean.####.exr"),
                   checkpoint_dir=str(tmp_path / "job"))
    run_job(spec, device="cpu", existing="refuse", cfg=TINY)
    digest = hashlib.sha256(spec.model_path.read_bytes()).hexdigest()
    for t, frame in enumerate((1001, 1002)):
        path = tmp_path / "out" / f"clean.{frame}.exr"
        exr = OpenEXR.File(str(path), separate_channels=True)  # kept: its parts' channels live in it
        parts = exr.parts
        assert len(parts) == 2
        assert [p.name() for p in parts] == ["rgba", "utility"]
        for name, values in utilities[t].items():  # bit for bit, uint32 ids included
            assert parts[1].channels[name].pixels.dtype == values.dtype, name
            assert np.array_equal(parts[1].channels[name].pixels, values), name
        header, channels = read_with_openexr(path)
        _, source = read_with_openexr(tmp_path / "in" / f"plate.{frame}.exr")
        assert np.array_equal(channels["depth.Z"].view(np.uint16), source["depth.Z"].view(np.uint16))
        assert header["ivi:unfilled"] == "depth.Z,utility/Z,utility/id"
        assert header["ivi:layerPolicy"] == LAYER_POLICY
        # Provenance: ours, not the plate's; no hash of the input left to make Nuke take it for the plate.
        assert header["Software"] == f"IVI-VFX {__version__}" and header["ivi:inputSoftware"] == "Nuke 14.0v5"
        assert "nuke/node_hash" not in header
        assert header["ivi:version"] == __version__ and header["ivi:checkpoint"] == digest
        assert header["ivi:job"] == str(spec.folder) and header["ivi:checkpointStep"] == 2
        assert header["ivi:source"] == str(tmp_path / "in" / f"plate.{frame}.exr")
        # The plate has no capDate: the output's is the plate file's time, not the moment of writing.
        modified = (tmp_path / "in" / f"plate.{frame}.exr").stat().st_mtime
        assert header["capDate"] == time.strftime("%Y:%m:%d %H:%M:%S", time.localtime(modified))

    # A chunk rendered again from the folder writes the same bytes: nothing in the header is of the moment.
    first = (tmp_path / "out" / "clean.1002.exr").read_bytes()
    render_job(spec, [1002], device="cpu", overwrite=True)
    assert (tmp_path / "out" / "clean.1002.exr").read_bytes() == first


def test_the_unfilled_channels_are_the_plates_not_ours(tmp_path: Path) -> None:
    """Channels the renderer adds (A on a plate without one, confidence.Y) are not 'left as they were'."""
    write_test_exr(tmp_path / "p.exr", np.zeros((4, 4, 5)), channels=("R", "G", "B", "N.x", "Z"))
    assert sorted(unfilled(read_exr(tmp_path / "p.exr"))) == ["N.x", "Z"]
    write_test_exr(tmp_path / "q.exr", np.zeros((4, 4, 4)))
    assert unfilled(read_exr(tmp_path / "q.exr")) == []
