"""SAIN (irn.nn.sain): the official state dict and its outputs (fixture made with the official code), exact
inverses, per-sample log-determinants, the Gaussian mixture's sampling, no state kept on the modules,
and the image API shared with IRN (irn.nn.network.Rescaler)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import autograd_logdet, randomise, shared_path
from torch import Tensor, nn

from irn.errors import InputError
from irn.nn.network import IRN, Rescaler, quantize
from irn.nn.sain import SAIN, EInvBlock, GaussianMixture, SAINConfig, VInvBlock
from irn.nn.tirn import TIRN

ATOL = 1e-5


def tiny_sain(scale: int = 2, e_blocks: int = 2, v_blocks: int = 1, dtype: torch.dtype = torch.float32) -> SAIN:
    """A small SAIN in eval mode with every weight random (the last convolutions too)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SAIN(SAINConfig(scale=scale, e_blocks=e_blocks, v_blocks=v_blocks, growth=8))
    randomise(model, std=0.05, last_std=0.02)
    return model.eval().to(dtype)


@pytest.fixture(scope="module")
def official() -> tuple[SAIN, dict[str, Tensor]]:
    weights = shared_path("fixtures", "official_sain_x2_seed3.pth")
    io = torch.load(shared_path("fixtures", "official_sain_x2_seed3_io.pt"), weights_only=True)
    model = SAIN(SAINConfig(scale=2))
    model.load_state_dict(torch.load(weights, weights_only=True), strict=True)
    return model.eval(), io


# ------------------------------------------------------------------ the official fixture
def test_official_forward_and_lr(official: tuple[SAIN, dict[str, Tensor]]) -> None:
    model, io = official
    with torch.no_grad():
        out, lr, logdet = model.official_forward(io["hr"])
        y, logdet2 = model(io["hr"])
        enc_lr, enc_z = model.encode(io["hr"])
        down = model.downscale(io["hr"])
    torch.testing.assert_close(out, io["forward"], rtol=0, atol=ATOL)
    torch.testing.assert_close(lr, io["lr"], rtol=0, atol=ATOL)
    torch.testing.assert_close(y, io["forward"], rtol=0, atol=ATOL)
    torch.testing.assert_close(logdet2, logdet)
    torch.testing.assert_close(enc_lr, io["lr"], rtol=0, atol=ATOL)
    torch.testing.assert_close(enc_z, io["forward"][:, 3:], rtol=0, atol=ATOL)
    assert (down - io["lr_quantized"]).abs().max() <= 1 / 255 + 1e-6  # equal unless a value sits on a rounding edge
    assert torch.equal(model.gmm.gmm_para.detach(), io["gmm_para"])


def test_official_inverse(official: tuple[SAIN, dict[str, Tensor]]) -> None:
    model, io = official
    with torch.no_grad():
        hr, lr, _ = model.official_forward(torch.cat((io["lr_quantized"], io["z"]), 1), rev=True)
        decoded = model.decode(io["lr_quantized"], io["z"])
        up = model.upscale(io["lr_quantized"], z=io["z"])
    torch.testing.assert_close(hr[:, :3], io["inverse"], rtol=0, atol=ATOL)
    torch.testing.assert_close(lr, io["inverse_lr"], rtol=0, atol=ATOL)
    torch.testing.assert_close(decoded, io["inverse"], rtol=0, atol=ATOL)
    torch.testing.assert_close(up, io["inverse"].clamp(0, 1), rtol=0, atol=ATOL)


def test_official_keys_and_shapes() -> None:
    sd = SAIN(SAINConfig(scale=2)).state_dict()
    assert sd["haar_operations.0.haar_weights"].shape == (12, 1, 2, 2)
    assert "haar_operations.1.haar_weights" not in sd
    assert sd["down_operations.4.E.conv1.weight"].shape == (32, 9, 3, 3)
    assert sd["down_operations.4.E.conv5.weight"].shape == (3, 137, 3, 3)
    assert "down_operations.5.E.conv1.weight" not in sd
    assert sd["comp_operations.2.G.conv5.weight"].shape == (9, 131, 3, 3)
    assert not any(k.startswith("comp_operations.3.") or k.startswith("comp_operations.0.E.") for k in sd)
    assert sd["gmm.gmm_para"].shape == (3, 5)
    assert len(sd) == 1 + 5 * 4 * 10 + 3 * 3 * 10 + 1


# ------------------------------------------------------------------ invertibility and log-determinants
@pytest.mark.parametrize("scale", [2, 4])
def test_flow_inverts_and_logdet_is_per_sample(scale: int) -> None:
    model = tiny_sain(scale)
    x = torch.rand(3, 3, 2 * scale, 3 * scale)
    with torch.no_grad():
        y, logdet = model(x)
        back, logdet_rev = model(y, rev=True)
        singles = torch.cat([model(x[i : i + 1])[1] for i in range(3)])
    assert y.shape == (3, 3 * scale * scale, 2, 3)
    assert (back - x).abs().max() < ATOL
    assert logdet.shape == logdet_rev.shape == (3,)
    torch.testing.assert_close(logdet_rev, -logdet, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(singles, logdet)


def test_decode_inverts_the_output_itself() -> None:
    """decode(out[:, :3], out[:, 3:]) is the exact inverse; encode's LR (the E-block's) differs from out[:, :3]."""
    model = tiny_sain(2)
    hr = torch.rand(2, 3, 6, 4)
    with torch.no_grad():
        out, lr, _ = model.official_forward(hr)
        back = model.decode(out[:, :3], out[:, 3:])
    assert (back - hr).abs().max() < ATOL
    assert not torch.allclose(lr, out[:, :3])


def test_logdet_matches_autograd() -> None:
    model = tiny_sain(2, dtype=torch.float64)
    x = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    _, logdet = model(x)
    torch.testing.assert_close(logdet[0], autograd_logdet(model, x))
    y, _ = model(x)
    _, logdet_rev = model(y, rev=True)
    torch.testing.assert_close(logdet_rev[0], autograd_logdet(lambda v: model(v, rev=True), y))


def test_e_block_lr_and_inverse() -> None:
    block = randomise(EInvBlock(12, 3, growth=8)).eval()
    x = torch.randn(2, 12, 3, 4)
    with torch.no_grad():
        y, lr, logdet = block.forward_with_lr(x)
        back, lr_rev, logdet_rev = block.forward_with_lr(y, rev=True)
        y2, logdet2 = block(x)
    torch.testing.assert_close(lr, x[:, :3] + block.E(x[:, 3:]))
    torch.testing.assert_close(lr_rev, lr, rtol=0, atol=ATOL)  # the inverse recomputes the same LR
    assert (back - x).abs().max() < ATOL and torch.equal(y2, y) and torch.equal(logdet2, logdet)
    torch.testing.assert_close(logdet_rev, -logdet)
    assert isinstance(VInvBlock(12, 3, growth=8), nn.Module)


def test_sain_x4_builds_with_the_official_sizes_and_runs() -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = SAIN(SAINConfig(scale=4))
    assert (model.config.e_blocks, model.config.v_blocks, model.config.gmm_components) == (10, 6, 5)
    sd = model.state_dict()
    assert sd["haar_operations.1.haar_weights"].shape == (48, 1, 2, 2)
    assert sd["down_operations.9.E.conv1.weight"].shape == (32, 45, 3, 3)
    assert sd["comp_operations.5.H.conv5.weight"].shape == (45, 131, 3, 3)
    assert "down_operations.10.E.conv1.weight" not in sd and "comp_operations.6.F.conv1.weight" not in sd
    randomise(model, std=0.02, last_std=0.01).eval()
    hr = torch.rand(1, 3, 8, 12)
    with torch.no_grad():
        y, logdet = model(hr)
        back, _ = model(y, rev=True)
        lr, z = model.encode(hr)
        up = model.upscale(quantize(lr), seed=0)
    assert y.shape == (1, 48, 2, 3) and logdet.shape == (1,)
    assert lr.shape == (1, 3, 2, 3) and z.shape == (1, 45, 2, 3) and up.shape == (1, 3, 8, 12)
    assert (back - hr).abs().max() < ATOL


# ------------------------------------------------------------------ the Gaussian mixture
def _two_modes() -> GaussianMixture:
    gmm = GaussianMixture(2)
    with torch.no_grad():
        gmm.gmm_para.copy_(torch.tensor([[math.log(0.3), math.log(0.7)], [-3.0, 2.0], [math.log(0.25), 0.0]]))
    return gmm


def test_mixture_samples_follow_its_parameters() -> None:
    gmm = _two_modes()
    with torch.no_grad():
        z = gmm.sample((200_000,), generator=torch.Generator().manual_seed(0))
    mean = 0.3 * -3 + 0.7 * 2  # 0.5
    var = 0.3 * (0.25 + 9) + 0.7 * (1 + 4) - mean**2  # 6.025
    assert z.shape == (200_000,)
    assert abs(z.mean().item() - mean) < 0.03
    assert abs(z.var().item() - var) < 0.1
    low = z < -0.5  # the first mode, and 0.6 % of the second's tail
    assert abs(low.float().mean().item() - (0.3 + 0.7 * 0.00621)) < 0.006
    assert abs(z[low].mean().item() - (-3.0)) < 0.05  # the first mode's mean, barely moved by the tail
    near_first, near_second = (z + 3).abs() < 0.5, (z - 2).abs() < 1  # within one sigma of each mode
    assert abs(near_first.float().mean().item() - 0.3 * 0.6827) < 0.006
    assert abs(near_second.float().mean().item() - 0.7 * 0.6827) < 0.006


def test_mixture_reproducible_and_clamped() -> None:
    gmm = _two_modes()
    a = gmm.sample((4, 5), generator=torch.Generator().manual_seed(1))
    b = gmm.sample((4, 5), generator=torch.Generator().manual_seed(1))
    c = gmm.sample((4, 5), generator=torch.Generator().manual_seed(2))
    assert a.shape == (4, 5) and torch.equal(a, b) and not torch.equal(a, c)
    torch.testing.assert_close(gmm.weights(), torch.tensor([0.3, 0.7]))
    with torch.no_grad():
        gmm.gmm_para[2].copy_(torch.tensor([50.0, -50.0]))
    torch.testing.assert_close(gmm.log_variances(), torch.tensor([20.0, -20.0]))
    torch.testing.assert_close(gmm.stds(), torch.tensor([math.exp(10), math.exp(-10)]))


def test_sample_latent_draws_from_the_mixture() -> None:
    model = tiny_sain(2)
    model.gmm = _two_modes()
    lr = torch.rand(2, 3, 40, 50)
    z = model.sample_latent(lr, "sample", seed=3)
    assert z.shape == (2, 9, 40, 50)
    assert torch.equal(z, model.sample_latent(lr, "sample", seed=3))
    assert abs((z < -0.5).float().mean().item() - 0.304) < 0.02  # bimodal, not N(0, 1)
    torch.testing.assert_close(model.sample_latent(lr, "sample", temperature=0.5, seed=3), 0.5 * z)
    assert torch.equal(model.sample_latent(lr, "sample", temperature=0.0, seed=3), torch.zeros_like(z))
    assert torch.equal(model.sample_latent(lr, "zero"), torch.zeros_like(z))
    assert model.recommended_z() == "sample"
    assert torch.equal(model.sample_latent(lr, seed=3), z)
    model.metadata = {"recommended_z": "zero"}
    assert model.recommended_z() == "zero"


# ------------------------------------------------------------------ no hidden state
def _attributes(model: nn.Module) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """Every module's attribute names, parameter names and buffer names."""
    return {name: (sorted(vars(m)), sorted(m._parameters), sorted(m._buffers)) for name, m in model.named_modules()}


def test_no_state_stashed_on_modules() -> None:
    model = tiny_sain(2)
    before = _attributes(model)
    hr = torch.rand(1, 3, 4, 6, requires_grad=True)
    y, logdet = model(hr)
    (y.square().sum() + logdet.sum()).backward()
    model(y.detach(), rev=True)
    model.official_forward(hr.detach())
    model.roundtrip(torch.rand(1, 3, 5, 3), seed=1)
    assert _attributes(model) == before


# ------------------------------------------------------------------ image API and config
def test_image_api_pads_and_crops() -> None:
    model = tiny_sain(2)
    hr = torch.rand(1, 3, 7, 5)
    with torch.no_grad():
        lr, z = model.encode(hr)
        down = model.downscale(hr)
        rt = model.roundtrip(hr, seed=0)
        up = model.upscale(down, z="zero", size=(7, 5))
    assert lr.shape == (1, 3, 4, 3) and z.shape == (1, 9, 4, 3)
    assert torch.equal(down, quantize(lr))
    assert rt.shape == up.shape == hr.shape and rt.min() >= 0 and rt.max() <= 1
    with pytest.raises(InputError, match="expected an image batch"):
        model.encode(torch.rand(1, 4, 8, 8))


def test_every_rescaler_has_the_same_api() -> None:
    names = ["config", "scale", "kind", "lr_channels", "latent_channels", "forward", "encode", "decode"]
    names += ["downscale", "sample_latent", "recommended_z", "upscale", "roundtrip", "num_parameters"]
    for cls in (IRN, SAIN, TIRN):
        assert issubclass(cls, Rescaler)
        model = cls()
        assert all(hasattr(model, n) for n in names), cls
        assert (model.scale, model.lr_channels) == (model.config.scale, 3)
    sain = SAIN(scale=4)
    assert (sain.kind, sain.latent_channels) == ("sain", 45)


def test_config() -> None:
    assert (SAINConfig(scale=2).e_blocks, SAINConfig(scale=2).v_blocks) == (5, 3)
    cfg = SAINConfig(scale=4, e_blocks=2, v_blocks=0, gmm_components=3, growth=16)
    d = cfg.to_dict()
    assert d["kind"] == "sain" and SAINConfig.from_dict(d) == cfg
    assert SAINConfig.from_dict({"scale": 4}) == SAINConfig(scale=4, e_blocks=10, v_blocks=6)
    with pytest.raises(InputError, match="scale"):
        SAINConfig(scale=3)
    with pytest.raises(InputError, match="e_blocks"):
        SAINConfig(e_blocks=0)
    with pytest.raises(InputError, match="unknown SAIN config keys"):
        SAINConfig.from_dict({"scale": 2, "depth": 3})
    with pytest.raises(InputError, match="not a SAIN config"):
        SAINConfig.from_dict({"kind": "tirn"})
    with pytest.raises(InputError, match="not both"):
        SAIN(SAINConfig(), scale=2)
