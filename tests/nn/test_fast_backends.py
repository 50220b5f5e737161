"""The fast inference path (irn.nn.fast) against the plain path, and the GPU recipe run on CPU."""

from __future__ import annotations

import pytest
import torch
from helpers import random_irn, shared_path

from irn.imaging.tiling import spans
from irn.nn.fast import (
    AcceleratorOptions,
    FastIRN,
    FastOptions,
    accelerated_flow,
    mkldnn_available,
    optimize_for_inference,
)
from irn.zoo import load_checkpoint

TOL = 1e-4


BACKENDS = [
    pytest.param(
        True,
        id="onednn",
        marks=pytest.mark.skipif(not mkldnn_available(), reason="this torch build has no oneDNN fused convolutions"),
    ),
    pytest.param(False, id="generic"),
]


@pytest.mark.parametrize("mkldnn", BACKENDS)
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_fast_flow_equals_plain_flow(scale: int, mkldnn: bool) -> None:
    model = random_irn(scale, blocks=2 if scale == 2 else 1, growth=16)
    # 144 pixels per stripe: 6-row stripes at the first level (batch 2 x width 12), 3 of them, each
    # with cut halos; whole-level stripes below
    fast = FastIRN(model, FastOptions(stripe_pixels=144, mkldnn=mkldnn))
    x = torch.rand(2, 3, 32, 24)
    with torch.no_grad():
        y_plain, ld_plain = model(x)
        y_fast, ld_fast = fast(x)
        back_plain, _ = model(y_plain, rev=True)
        back_fast, ld_back = fast(y_plain, rev=True)
    assert y_fast.shape == y_plain.shape and y_fast.is_contiguous()
    assert (y_fast - y_plain).abs().max() <= TOL
    assert (back_fast - back_plain).abs().max() <= TOL
    torch.testing.assert_close(ld_fast, ld_plain, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(ld_back, -ld_plain, rtol=1e-5, atol=1e-3)
    # the blocks really transform: the test would see a wrong fast path
    assert (y_plain[:, :3] - torch.nn.functional.avg_pool2d(x, scale)).abs().max() > 1e-2


@pytest.mark.parametrize("scale", [2, 4])
def test_fast_image_api_equals_plain(scale: int) -> None:
    # downscale's fast path skips the last block's latent half: the LR must not notice
    model = random_irn(scale, blocks=2 if scale == 2 else 1, growth=8)
    fast = optimize_for_inference(model, FastOptions(stripe_pixels=64))
    hr = torch.rand(1, 3, 23, 17)  # odd size: reflect padding, crop back
    with torch.inference_mode():
        lr_plain, lr_fast = model.downscale(hr), fast.downscale(hr)
        # the same quantised LR into both decoders: a rounding flip in downscale is not an upscale error
        up_plain = model.upscale(lr_plain, z="sample", seed=5, size=(23, 17))
        up_fast = fast.upscale(lr_plain, z="sample", seed=5, size=(23, 17))
        lr_exact, _ = model.encode(hr)
        lr_only, _ = fast._flow(fast._pad(hr), rev=False, lr_only=True)  # what downscale quantises
    assert lr_only.shape[1] == 3 and (lr_only - lr_exact).abs().max() <= TOL
    assert (lr_fast - lr_plain).abs().max() <= 1 / 255 + 1e-6
    assert (lr_fast != lr_plain).float().mean() < 0.01
    assert up_fast.shape == (1, 3, 23, 17)
    assert (up_fast - up_plain).abs().max() <= TOL


def test_fast_model_shares_weights_and_keys() -> None:
    model = random_irn(4, blocks=1)
    fast = optimize_for_inference(model)
    assert list(fast.state_dict()) == list(model.state_dict())
    assert all(a is b for a, b in zip(fast.parameters(), model.parameters(), strict=True))
    assert optimize_for_inference(fast) is fast


def test_fast_path_follows_weight_changes() -> None:
    model = random_irn(2, blocks=1)
    fast = FastIRN(model)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        before, _ = fast(x)
        model.operations[1].F.conv5.weight.mul_(3.0)
        after, _ = fast(x)
        expected, _ = model(x)
    assert (after - before).abs().max() > 1e-3
    assert (after - expected).abs().max() <= TOL


def test_fast_path_falls_back_to_autograd() -> None:
    model = random_irn(2, blocks=1).train()
    fast = FastIRN(model)
    x = torch.rand(1, 3, 16, 16)
    y, _ = fast(x)
    assert y.requires_grad
    y.square().sum().backward()
    assert model.operations[1].F.conv1.weight.grad is not None


def test_fast_path_reproduces_official_fixture() -> None:
    state = shared_path("fixtures", "official_irn_x2_seed7.pth")
    io = torch.load(shared_path("fixtures", "official_irn_x2_seed7_io.pt"), weights_only=True)
    model, _ = load_checkpoint(state)
    fast = optimize_for_inference(model, FastOptions(stripe_pixels=200))
    with torch.no_grad():
        forward, _ = fast(io["hr"])
        inverse, _ = fast(torch.cat((io["lr_quantized"], io["z"]), 1), rev=True)
    torch.testing.assert_close(forward, io["forward"], atol=1e-5, rtol=0)
    torch.testing.assert_close(inverse, io["inverse"], atol=1e-5, rtol=0)


def test_mkldnn_forced_on_a_wrong_input_is_an_error() -> None:
    fast = FastIRN(random_irn(2, blocks=1), FastOptions(mkldnn=True))
    with pytest.raises(RuntimeError, match="fp32 CPU"), torch.no_grad():
        fast(torch.rand(1, 3, 8, 8, dtype=torch.float64))


def test_fast_path_runs_other_dtypes_generically() -> None:
    model = random_irn(2, blocks=1).double()
    x = torch.rand(1, 3, 12, 12, dtype=torch.float64)
    with torch.no_grad():
        y_fast, _ = FastIRN(model, FastOptions(stripe_pixels=30))(x)
        y_plain, _ = model(x)
    assert y_fast.dtype == torch.float64
    assert (y_fast - y_plain).abs().max() <= 1e-10


def test_stripes_cover_rows_once_with_halo() -> None:
    got = list(spans(23, 5, 2))  # FastIRN's stripes (irn.imaging.tiling.spans)
    assert [(a, b) for a, b, _, _ in got] == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    assert [(ha, hb) for _, _, ha, hb in got] == [(0, 7), (3, 12), (8, 17), (13, 22), (18, 23)]
    with pytest.raises(ValueError, match="stripe_pixels"):
        FastOptions(stripe_pixels=0)


# ---------------------------------------------------------------------------- GPU recipe on CPU
def test_accelerated_flow_fp32_equals_plain_and_trains() -> None:
    model = random_irn(2, blocks=1)
    reference = random_irn(2, blocks=1)
    flow = accelerated_flow(model, AcceleratorOptions(precision="fp32", channels_last=True, compile=False))
    x = torch.rand(2, 3, 16, 16)
    y, logdet = flow(x, False)
    y_ref, logdet_ref = reference(x)
    assert (y - y_ref).abs().max() <= TOL
    torch.testing.assert_close(logdet, logdet_ref, rtol=1e-5, atol=1e-3)
    y.square().mean().backward()
    assert model.operations[1].G.conv1.weight.grad is not None


def test_accelerated_flow_bf16_mixed_is_close_on_cpu() -> None:
    model = random_irn(2, blocks=1)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        y_ref, _ = model(x)
        flow = accelerated_flow(model, AcceleratorOptions(precision="bf16-mixed", compile=False))
        y, logdet = flow(x, False)
        back, _ = flow(y, True)
    assert y.dtype == torch.float32 and logdet.dtype == torch.float32
    assert (y - y_ref).abs().max() < 0.05  # bfloat16 has 8 significant bits
    assert (y - y_ref).abs().max() > 0  # autocast really ran in bfloat16
    assert (back - x).abs().max() < 0.1


def test_cuda_graphs_need_a_cuda_model() -> None:
    with pytest.raises(ValueError, match="CUDA"):
        accelerated_flow(random_irn(2, blocks=1), AcceleratorOptions(cuda_graphs=True))
    with pytest.raises(ValueError, match="precision"):
        AcceleratorOptions(precision="fp8")  # type: ignore[arg-type]
