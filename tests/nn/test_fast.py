"""The fast inference path (irn.nn.fast) pinned to the plain model it accelerates: every public
method, at every scale, in every dtype it runs, with both convolution backends; its constants
derived from the modules; operations it does not know refused; what irn.load returns."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable

import pytest
import torch
from helpers import random_irn
from torch import Tensor, nn

import irn
from irn.nn.coupling import AffineCoupling
from irn.nn.fast import (
    HALO,
    LEAKY_SLOPE,
    FastIRN,
    FastOptions,
    UnsupportedOperation,
    dense_block_halo,
    fast_or_plain,
    mkldnn_available,
    optimize_for_inference,
)
from irn.nn.subnets import DenseBlock
from irn.pipeline import for_inference
from irn.zoo import save

#: how far each output may move from the plain path's (fp32 rounding of reordered sums)
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-9}
H, W = 18, 22  # not multiples of 4 or 8: the padding rule runs too

Method = Callable[[nn.Module, Tensor, Tensor], Tensor | tuple[Tensor, ...]]


def _forward(m: nn.Module, hr: Tensor, flow_in: Tensor) -> tuple[Tensor, Tensor]:
    return m(m._pad(hr))


def _inverse(m: nn.Module, hr: Tensor, flow_in: Tensor) -> tuple[Tensor, Tensor]:
    return m(flow_in, rev=True)


def _encode(m: nn.Module, hr: Tensor, flow_in: Tensor) -> tuple[Tensor, Tensor]:
    return m.encode(hr)


def _decode(m: nn.Module, hr: Tensor, flow_in: Tensor) -> Tensor:
    c = m.lr_channels
    return m.decode(flow_in[:, :c], flow_in[:, c:], size=(H - 1, W - 3))


def _downscale(m: nn.Module, hr: Tensor, flow_in: Tensor) -> Tensor:
    return m.downscale(hr)


def _upscale(m: nn.Module, hr: Tensor, flow_in: Tensor) -> Tensor:
    c = m.lr_channels
    return m.upscale(flow_in[:, :c].clamp(0, 1), z="sample", seed=3, temperature=0.8)


def _roundtrip(m: nn.Module, hr: Tensor, flow_in: Tensor) -> Tensor:
    return m.roundtrip(hr, z="zero")


METHODS: dict[str, Method] = {
    "forward": _forward,
    "inverse": _inverse,
    "encode": _encode,
    "decode": _decode,
    "downscale": _downscale,
    "upscale": _upscale,
    "roundtrip": _roundtrip,
}

BACKENDS = [
    pytest.param(
        True,
        id="onednn",
        marks=pytest.mark.skipif(not mkldnn_available(), reason="this torch build has no oneDNN fused convolutions"),
    ),
    pytest.param(False, id="generic"),
]


def _cases() -> list[object]:
    cases = []
    for scale in (2, 4, 8):
        for dtype in (torch.float32, torch.float64):
            for mkldnn in BACKENDS:
                if dtype == torch.float64 and mkldnn.values[0]:
                    continue  # oneDNN's fused kernels are fp32 only (the generic path takes fp64)
                cases.append(
                    pytest.param(
                        scale, dtype, mkldnn.values[0], id=f"x{scale}-{str(dtype)[6:]}-{mkldnn.id}", marks=mkldnn.marks
                    )
                )
    return cases


@pytest.mark.parametrize(("scale", "dtype", "mkldnn"), _cases())
def test_every_method_equals_the_plain_model(scale: int, dtype: torch.dtype, mkldnn: bool) -> None:
    plain = random_irn(scale, blocks=2, dtype=dtype)
    _check_every_method(plain, FastIRN(plain, FastOptions(stripe_pixels=40, mkldnn=mkldnn)))  # several stripes


@pytest.mark.parametrize("mkldnn", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(("kind", "scale"), [("color", 1), ("conv", 3)], ids=["color", "x3"])
def test_colour_and_x3_models_take_the_fast_path_with_the_same_outputs(
    kind: str, scale: int, dtype: torch.dtype, mkldnn: bool
) -> None:
    """Issue 29.4: IRN-Color (a colour transform, then couplings at full resolution that split 1 / 2)
    and the x3 model (a learnable downsampling) run the fast path too, and it keeps their API."""
    if dtype == torch.float64 and mkldnn:
        pytest.skip("oneDNN's fused kernels are fp32 only")
    plain = random_irn(scale, blocks=2, dtype=dtype, kind=kind)
    fast = optimize_for_inference(plain, FastOptions(stripe_pixels=40, mkldnn=mkldnn))
    assert isinstance(fast, FastIRN) and type(fast).__name__ == ("FastIRNColor" if kind == "color" else "FastIRN")
    _check_every_method(plain, fast)
    if kind == "color":
        rgb = torch.rand(1, 3, H, W, dtype=dtype)
        with torch.inference_mode():
            grey = fast.decolorize(rgb)
            assert grey.shape == (1, 1, H, W)
            torch.testing.assert_close(fast.colorize(grey, z="zero"), plain.colorize(grey, z="zero"), atol=1e-4, rtol=0)
    assert isinstance(fast_or_plain(plain), FastIRN)


def _check_every_method(plain: irn.IRN, fast: FastIRN) -> None:
    scale, dtype = plain.scale, next(plain.parameters()).dtype
    c = plain.lr_channels
    gen = torch.Generator().manual_seed(scale)
    hr = torch.rand(2, 3, H, W, generator=gen).to(dtype)
    hs, ws = -(-H // scale), -(-W // scale)
    flow_in = torch.cat(
        (torch.rand(2, c, hs, ws, generator=gen), torch.randn(2, plain.latent_channels, hs, ws, generator=gen)), 1
    ).to(dtype)
    tol = TOLERANCE[dtype]
    with torch.inference_mode():
        for name, method in METHODS.items():
            want, got = method(plain, hr, flow_in), method(fast, hr, flow_in)
            want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
            for w, g in zip(want, got, strict=True):
                assert g.shape == w.shape and g.dtype == w.dtype, name
                if name == "downscale":  # 8-bit levels: a rounding tie may land one level away
                    assert (g - w).abs().max() <= 1 / 255 + tol, name
                    assert (g != w).float().mean() < 0.01, name
                elif w.dim() == 1:  # a log-determinant: a sum over every pixel
                    torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-3, msg=name)
                else:
                    scale_of = max(1.0, float(w.abs().max()))
                    assert float((g - w).abs().max()) <= tol * scale_of, name
        # the random weights really transform: a fast path that skipped a block would fail above
        assert float((fast.roundtrip(hr, z="zero") - hr).abs().max()) > 1e-3


def test_constants_are_derived_from_the_blocks() -> None:
    block = DenseBlock(3, 9, 8)
    assert HALO == dense_block_halo(block) == 5
    assert LEAKY_SLOPE == block.lrelu.negative_slope


class _OtherBlock(nn.Module):
    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        return x, x.new_zeros(x.shape[0])


class _DoubledCoupling(AffineCoupling):
    def log_scale(self, y1: Tensor) -> Tensor:
        return 2 * super().log_scale(y1)


def _with_operation(model: irn.IRN, index: int, op: nn.Module) -> irn.IRN:
    model.operations[index] = op
    return model


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: _with_operation(m, 1, _OtherBlock()), "operations.1: _OtherBlock is not an operation"),
        (lambda m: _with_operation(m, 1, _DoubledCoupling(12, 3, 1.0, 8)), "operations.1: _DoubledCoupling"),
        (lambda m: setattr(m.operations[1].G, "conv3", nn.Conv2d(24, 8, 5, 1, 2)) or m, "operations.1.G.conv3"),
        (lambda m: setattr(m.operations[1].F.lrelu, "negative_slope", 0.1) or m, "LeakyReLU(0.1)"),
        (lambda m: m.operations[0].haar_weights.mul_(2) is None or m, "Haar filters"),
    ],
    ids=["unknown-block", "subclassed-coupling", "5x5-convolution", "other-slope", "other-haar"],
)
def test_unknown_operations_are_refused_not_assumed(change: Callable[[irn.IRN], irn.IRN], message: str) -> None:
    model = change(random_irn(2))
    with pytest.raises(UnsupportedOperation, match=message.replace("(", r"\(").replace(")", r"\)")):
        optimize_for_inference(model)
    assert fast_or_plain(model) is model  # the plain model runs its own forward instead
    assert for_inference(model) is model


def test_irn_load_returns_the_fast_path(tmp_path) -> None:
    plain = random_irn(4)
    path = save(plain, tmp_path / "m.pt", metadata={"recommended_z": "zero"})
    model = irn.load(path)
    assert isinstance(model, FastIRN) and isinstance(model, irn.IRN)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert model.recommended_z() == "zero" and model.metadata["source"] == "irn"
    assert for_inference(model) is model
    hr = torch.rand(1, 3, 16, 20)
    with torch.inference_mode():
        torch.testing.assert_close(model.encode(hr)[1], plain.encode(hr)[1], atol=1e-4, rtol=0)
    assert list(model.state_dict()) == list(plain.state_dict())
    # a copy or a pickle leaves the prepared weights behind and works
    for other in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert other._prepared is None
        with torch.inference_mode():
            torch.testing.assert_close(other.encode(hr)[0], plain.encode(hr)[0], atol=1e-4, rtol=0)


def test_gradients_and_training_use_the_plain_flow() -> None:
    plain = random_irn(2)
    fast = FastIRN(plain)
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    y, _ = fast(x)
    assert y.grad_fn is not None  # the plain path ran: autograd works through the fast model
    y.sum().backward()
    assert x.grad is not None
