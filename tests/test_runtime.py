"""How the generator runs: channels_last and bf16 change speed, not the network or its losses."""
from __future__ import annotations

import pytest
import torch

from ivi_vfx import losses, runtime
from ivi_vfx.config import TrainConfig
from ivi_vfx.errors import ConfigError
from ivi_vfx.nets import build_generator

FP32 = TrainConfig(cnum=8, channels_last=False, precision="fp32", compile=False, threads=0)


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(2, 3, 32, 48, generator=g) * 2 - 1
    holes = torch.zeros(2, 1, 32, 48)
    holes[:, :, 8:20, 10:30] = 1
    return images, holes, 1.0 - holes


def _model(cfg: TrainConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    return runtime.prepare_model(build_generator(cfg.cnum), "cpu", cfg)


def _step(cfg: TrainConfig) -> tuple[dict[str, float], torch.nn.Module]:
    """One training step as train.fit runs it with the runtime switches; returns its losses and the model."""
    model = _model(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    images, holes, weight = (runtime.prepare_input(t, cfg) for t in _batch())
    with runtime.autocast("cpu", cfg):
        coarse, refined = model(images, holes)
    terms = losses.reconstruction(images, coarse.float(), refined.float(), weight)
    total = torch.stack(list(terms.values())).sum()
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    return {k: float(v.detach()) for k, v in terms.items()}, model


def test_channels_last_gives_the_plain_models_output_and_keeps_its_parameters() -> None:
    plain, nhwc = _model(FP32), _model(FP32.replace(channels_last=True))
    assert nhwc.coarse[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert sum(p.numel() for p in nhwc.parameters()) == sum(p.numel() for p in plain.parameters())
    images, holes, _ = _batch()
    with torch.no_grad():
        for a, b in zip(plain(images, holes), nhwc(runtime.prepare_input(images, nhwc_cfg := FP32.replace(
                channels_last=True)), runtime.prepare_input(holes, nhwc_cfg))):
            torch.testing.assert_close(b.contiguous(), a, atol=1e-12, rtol=1e-3)  # untrained outputs are ~1e-7
    # The same parameters (one seed): the layout changes no value.
    assert all(torch.equal(x, y) for x, y in zip(plain.state_dict().values(), nhwc.state_dict().values()))
    # A checkpoint of either loads into the other and runs as it: a differently seeded plain network takes
    # the channels_last one's weights and gives its outputs.
    torch.manual_seed(1)
    other = build_generator(FP32.cnum)
    with torch.no_grad():
        assert not torch.allclose(other(images, holes)[1], plain(images, holes)[1], atol=1e-12, rtol=0.1)
        other.load_state_dict(nhwc.state_dict())
        torch.testing.assert_close(other(images, holes)[1], plain(images, holes)[1], atol=1e-12, rtol=1e-3)


def test_a_bf16_channels_last_step_gives_finite_losses_close_to_fp32s_and_keeps_fp32_weights() -> None:
    reference, ref_model = _step(FP32)
    fast, fast_model = _step(FP32.replace(channels_last=True, precision="bf16"))
    assert all(torch.isfinite(torch.tensor(v)) for v in fast.values())
    for name, value in reference.items():
        assert fast[name] == pytest.approx(value, rel=0.03), name
    assert all(p.dtype == torch.float32 for p in fast_model.parameters())
    # The step moved the weights as fp32's did, to within bf16's rounding of the gradients' direction.
    for b in fast_model.parameters():
        assert torch.isfinite(b).all()
    moved = sum(float((a - b).abs().sum()) for a, b in zip(ref_model.parameters(), _model(FP32).parameters()))
    differ = sum(float((a - b).abs().sum()) for a, b in zip(ref_model.parameters(), fast_model.parameters()))
    assert differ < 0.5 * moved


def test_auto_precision_is_fp32_on_cpu_and_a_bad_precision_is_refused() -> None:
    assert runtime.compute_dtype("cpu", "auto") == torch.float32
    assert runtime.compute_dtype("cpu", "bf16") == torch.bfloat16
    assert isinstance(runtime.autocast("cpu", FP32.replace(precision="auto")), type(runtime.autocast("cpu", FP32)))
    with pytest.raises(ValueError, match="precision"):
        runtime.compute_dtype("cpu", "fp8")
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp8").validate()
    assert not runtime.grad_scaler("cpu", FP32.replace(precision="fp16")).is_enabled()  # fp16 scaling: CUDA only


def test_compiling_in_place_keeps_the_checkpoint_names() -> None:
    plain = build_generator(8)
    compiled = runtime.prepare_model(build_generator(8), "cpu", FP32.replace(compile=True))
    assert list(compiled.state_dict()) == list(plain.state_dict())  # no _orig_mod. prefix


def test_configure_threads_sets_the_count_and_restores() -> None:
    before, flush = torch.get_num_threads(), False
    try:
        assert runtime.configure_threads(1) == 1 == torch.get_num_threads()
        assert 1 <= runtime.auto_threads() <= runtime.cpu_count()
        assert runtime.configure_threads(0) == 1  # 0 leaves the count as it is
        assert 1 <= runtime.configure_threads(-1) <= runtime.cpu_count()
    finally:
        torch.set_num_threads(before)
        torch.set_flush_denormal(flush)


def test_runtime_fields_round_trip_and_are_free_to_change_on_resume() -> None:
    cfg = TrainConfig(channels_last=False, precision="bf16", compile=True, threads=2)
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    assert runtime.RUNTIME_KEYS <= set(cfg.to_dict())


def test_training_leaves_denormals_alone_so_half_subnormals_read_back(tmp_path) -> None:  # noqa: ANN001
    """A flushed-denormal mode left on by training would zero a plate's subnormal half pixels on read (the
    half -> float conversion is where the CPU flag acts: the frame is read as float32, as read_exr does)."""
    import numpy as np
    import OpenImageIO as oiio

    from ivi_vfx.io.exr import read_exr

    pixels = np.array([[[1e-6], [3e-7], [-2e-6], [0.5]]], np.float16)  # three half subnormals and a normal
    image = oiio.ImageBuf(oiio.ImageSpec(4, 1, 1, oiio.HALF))
    image.set_pixels(oiio.ROI(), pixels)
    image.write(str(tmp_path / "sub.exr"))
    try:
        if runtime.configure_threads(0, flush_denormal=True) and torch.set_flush_denormal(True):
            # The check can fail: with the flag on, the same read loses the subnormals.
            assert not read_exr(tmp_path / "sub.exr").pixels[0, :3, 0].any()
        runtime.configure_threads(0)  # as train.fit calls it
        back = read_exr(tmp_path / "sub.exr").pixels
        assert np.array_equal(back.ravel(), pixels.astype(np.float32).ravel()) and back[0, 0, 0] != 0
    finally:
        torch.set_flush_denormal(False)
