"""T-IRN (irn.nn.tirn): the official x2 and x4 state dicts and their outputs (fixtures made with the
official code), the z = 0 decoding, inverses where the official clamps do nothing, per-sample
log-determinants, no state kept on the modules, the colour conversions and the config."""

from __future__ import annotations

import pytest
import torch
from helpers import autograd_logdet, randomise, shared_path
from torch import Tensor, nn

from irn.errors import InputError
from irn.nn.network import quantize
from irn.nn.tirn import (
    LOGDET_TO_RGB,
    LOGDET_TO_YCBCR,
    TIRN,
    TIRNConfig,
    TriBranchInvBlock,
    rgb_to_ycbcr,
    ycbcr_to_rgb,
)

ATOL = 1e-5


def tiny_tirn(scale: int = 2, dtype: torch.dtype = torch.float32) -> TIRN:
    """A small T-IRN in eval mode with every weight random (the last convolutions too)."""
    blocks = (2,) if scale == 2 else (1, 2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = TIRN(TIRNConfig(scale=scale, blocks_per_stage=blocks, growth=8))
    randomise(model, std=0.05, last_std=0.02)
    return model.eval().to(dtype)


def hr_image(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Pixels in [0.2, 0.8]: the LR of a tiny random T-IRN stays inside [0, 1], where no clamp acts."""
    return torch.rand(*shape, dtype=dtype) * 0.6 + 0.2


def _official(scale: int) -> tuple[TIRN, dict[str, Tensor]]:
    weights = shared_path("fixtures", f"official_tirn_x{scale}_seed3.pth")
    io = torch.load(shared_path("fixtures", f"official_tirn_x{scale}_seed3_io.pt"), weights_only=True)
    model = TIRN(TIRNConfig(scale=scale))
    model.load_state_dict(torch.load(weights, weights_only=True), strict=True)
    return model.eval(), io


@pytest.fixture(scope="module", params=[2, 4], ids=["x2", "x4"])
def official(request: pytest.FixtureRequest) -> tuple[TIRN, dict[str, Tensor]]:
    return _official(request.param)


# ------------------------------------------------------------------ the official fixtures
def test_official_forward_and_lr(official: tuple[TIRN, dict[str, Tensor]]) -> None:
    model, io = official
    with torch.no_grad():
        out, lr, _ = model.official_forward(io["hr"])
        y, logdet = model(io["hr"])
        enc_lr, enc_z = model.encode(io["hr"])
        down = model.downscale(io["hr"])
    torch.testing.assert_close(out, io["forward"], rtol=0, atol=ATOL)
    torch.testing.assert_close(lr, io["lr"], rtol=0, atol=ATOL)
    torch.testing.assert_close(y, torch.cat((io["lr"], io["forward"][:, 2:-1]), 1), rtol=0, atol=ATOL)
    torch.testing.assert_close(enc_lr, io["lr"], rtol=0, atol=ATOL)
    torch.testing.assert_close(enc_z, io["forward"][:, 2:-1], rtol=0, atol=ATOL)
    assert (down - io["lr_quantized"]).abs().max() <= 1 / 255 + 1e-6  # equal unless a value sits on a rounding edge
    assert logdet.shape == (io["hr"].shape[0],)


def test_official_inverse_and_z0(official: tuple[TIRN, dict[str, Tensor]]) -> None:
    model, io = official
    lr = io["lr_quantized"]
    with torch.no_grad():
        hr, hr3, _ = model.official_forward(torch.cat((lr, io["z"]), 1), rev=True)
        decoded = model.decode(lr, io["z"])
        z0 = model.decode(lr, torch.zeros_like(io["z"]))
        up = model.upscale(lr)  # z = 0 by default, the official decoding
    torch.testing.assert_close(hr, io["inverse"], rtol=0, atol=ATOL)
    assert torch.equal(hr3, hr[:, :3])
    torch.testing.assert_close(decoded, io["inverse"], rtol=0, atol=ATOL)
    torch.testing.assert_close(z0, io["inverse_z0"], rtol=0, atol=ATOL)
    torch.testing.assert_close(up, io["inverse_z0"].clamp(0, 1), rtol=0, atol=ATOL)


def test_official_keys_and_shapes() -> None:
    x2 = TIRN(scale=2).state_dict()
    assert x2["haar_operations.0.haar_weights"].shape == (12, 1, 2, 2)
    assert x2["down_operations.2.E.conv1.weight"].shape == (32, 1, 3, 3)
    assert x2["down_operations.2.L.conv5.weight"].shape == (1, 137, 3, 3)
    assert "down_operations.3.E.conv1.weight" not in x2 and not any("_2." in k for k in x2)
    x4 = TIRN(scale=4).state_dict()
    assert x4["haar_operations_2.0.haar_weights"].shape == (48, 1, 2, 2)
    assert x4["down_operations_2.3.G.conv5.weight"].shape == (45, 130, 3, 3)
    assert "down_operations_2.4.G.conv5.weight" not in x4 and "down_operations.3.E.conv1.weight" not in x4
    assert len(x2) == 1 + 3 * 8 * 10 and len(x4) == 2 + 7 * 8 * 10


# ------------------------------------------------------------------ invertibility and log-determinants
@pytest.mark.parametrize("scale", [2, 4])
def test_flow_inverts_and_logdet_is_per_sample(scale: int) -> None:
    model = tiny_tirn(scale)
    x = hr_image(3, 3, 2 * scale, 3 * scale)
    with torch.no_grad():
        y, logdet = model(x)
        back, logdet_rev = model(y, rev=True)
        singles = torch.cat([model(x[i : i + 1])[1] for i in range(3)])
        lr, z = model.encode(x)
        decoded = model.decode(lr, z)
    assert y.shape == (3, 3 * scale * scale, 2, 3)
    assert 0 < y[:, :3].min() and y[:, :3].max() < 1  # no clamp acted
    assert (back - x).abs().max() < ATOL and (decoded - x).abs().max() < ATOL
    assert logdet.shape == logdet_rev.shape == (3,)
    torch.testing.assert_close(logdet_rev, -logdet, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(singles, logdet)


@pytest.mark.parametrize("scale", [2, 4])
def test_logdet_matches_autograd(scale: int) -> None:
    model = tiny_tirn(scale, dtype=torch.float64)
    x = hr_image(1, 3, scale, scale, dtype=torch.float64)
    _, logdet = model(x)
    torch.testing.assert_close(logdet[0], autograd_logdet(model, x))
    y, _ = model(x)
    _, logdet_rev = model(y, rev=True)
    torch.testing.assert_close(logdet_rev[0], autograd_logdet(lambda v: model(v, rev=True), y))


def test_tri_branch_block_inverts() -> None:
    block = randomise(TriBranchInvBlock(12, 2, growth=8)).eval()
    x = torch.randn(2, 12, 3, 4)
    with torch.no_grad():
        y, logdet = block(x)
        back, logdet_rev = block(y, rev=True)
    assert (back - x).abs().max() < ATOL
    assert logdet.shape == (2,)
    torch.testing.assert_close(logdet_rev, -logdet)


# ------------------------------------------------------------------ the official quirks
def test_colour_conversions_are_near_inverses_and_rgb_is_clamped() -> None:
    rgb = torch.rand(2, 3, 5, 4, dtype=torch.float64)
    assert (ycbcr_to_rgb(rgb_to_ycbcr(rgb)) - rgb).abs().max() < 2e-6
    assert 0 < abs(LOGDET_TO_YCBCR + LOGDET_TO_RGB) < 1e-7  # not exact inverses
    assert ycbcr_to_rgb(torch.tensor([[[[2.0]], [[0.5]], [[0.5]]]])).flatten().tolist() == [1.0, 1.0, 1.0]


def test_lr_is_clamped() -> None:
    model = tiny_tirn(2)
    with torch.no_grad():
        lr, _ = model.encode(torch.full((1, 3, 4, 4), 3.0))
    assert lr.min() >= 0 and lr.max() == 1


# ------------------------------------------------------------------ latents, state, config
def test_latent_defaults_to_zero_and_samples_are_normal() -> None:
    model = tiny_tirn(2)
    lr = torch.rand(2, 3, 4, 5)
    assert model.recommended_z() == "zero"
    assert torch.equal(model.sample_latent(lr), torch.zeros(2, 9, 4, 5))
    z = model.sample_latent(lr, "sample", temperature=0.5, seed=7)
    assert torch.equal(z, torch.randn((2, 9, 4, 5), generator=torch.Generator().manual_seed(7)) * 0.5)
    model.metadata = {"recommended_z": "sample"}
    assert model.recommended_z() == "sample" and torch.equal(model.sample_latent(lr, seed=7), z / 0.5)


def _attributes(model: nn.Module) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """Every module's attribute names, parameter names and buffer names."""
    return {name: (sorted(vars(m)), sorted(m._parameters), sorted(m._buffers)) for name, m in model.named_modules()}


def test_no_state_stashed_on_modules() -> None:
    model = tiny_tirn(4)
    before = _attributes(model)
    hr = hr_image(1, 3, 4, 8).requires_grad_()
    y, logdet = model(hr)
    (y.square().sum() + logdet.sum()).backward()
    model(y.detach(), rev=True)
    model.roundtrip(torch.rand(1, 3, 5, 7), seed=1)
    assert _attributes(model) == before


def test_image_api_pads_and_crops() -> None:
    model = tiny_tirn(4)
    hr = torch.rand(1, 3, 7, 5)
    with torch.no_grad():
        lr, z = model.encode(hr)
        down = model.downscale(hr)
        rt = model.roundtrip(hr)
    assert lr.shape == (1, 3, 2, 2) and z.shape == (1, 45, 2, 2)
    assert torch.equal(down, quantize(lr))
    assert rt.shape == hr.shape
    assert (model.kind, model.scale, model.latent_channels) == ("tirn", 4, 45)


def test_config() -> None:
    assert TIRNConfig(scale=2).blocks_per_stage == (3,) and TIRNConfig(scale=4).blocks_per_stage == (3, 4)
    cfg = TIRNConfig(scale=4, blocks_per_stage=(1, 2), growth=16)
    d = cfg.to_dict()
    assert d == {"kind": "tirn", "scale": 4, "blocks_per_stage": [1, 2], "growth": 16, "clamp": 1.0}
    assert TIRNConfig.from_dict(d) == cfg
    with pytest.raises(InputError, match="scale"):
        TIRNConfig(scale=8)
    with pytest.raises(InputError, match="blocks_per_stage"):
        TIRNConfig(scale=4, blocks_per_stage=(3,))
    with pytest.raises(InputError, match="unknown T-IRN config keys"):
        TIRNConfig.from_dict({"scale": 2, "e_blocks": 3})
    with pytest.raises(InputError, match="not a T-IRN config"):
        TIRNConfig.from_dict({"kind": "sain"})
