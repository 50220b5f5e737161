"""The learnable linear blocks (irn.nn.linear) and the networks built on them: the x3 model's
ConvDownsampling and IRN-Color's ColorTransform. Exact inverses, log-determinants against autograd,
the official starts, and the image API of both networks."""

from __future__ import annotations

import pytest
import torch
from helpers import autograd_logdet, random_irn

from irn.errors import InputError
from irn.nn import IRN, ColorTransform, ConvDownsampling, HaarDownsampling, IRNColor, IRNConfig, rgb_to_luma
from irn.nn.linear import RGB_TO_YUV, conv_downsampling_start


def _perturbed(block: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        block.conv_weights.add_(torch.randn(block.conv_weights.shape, generator=gen) * 0.1)
    return block.double()


@pytest.mark.parametrize("rev", [False, True])
@pytest.mark.parametrize("scale", [2, 3])
def test_conv_downsampling_inverts_and_its_logdet_matches_autograd(scale: int, rev: bool) -> None:
    block = _perturbed(ConvDownsampling(scale))
    shape = (1, 3 * scale * scale, 2, 1) if rev else (1, 3, 2 * scale, scale)
    x = torch.rand(shape, dtype=torch.float64)
    y, logdet = block(x, rev=rev)
    back, logdet_back = block(y, rev=not rev)
    assert (back - x).abs().max() < 1e-10
    torch.testing.assert_close(logdet_back, -logdet)
    torch.testing.assert_close(logdet[0], autograd_logdet(lambda v: block(v, rev=rev), x))


def test_conv_downsampling_logdet_formula_and_shape() -> None:
    block = _perturbed(ConvDownsampling(3))
    x = torch.rand(2, 3, 6, 9, dtype=torch.float64)
    y, logdet = block(x)
    assert y.shape == (2, 27, 2, 3) and logdet.shape == (2,)
    expected = (6 * 9 / 9) * 3 * torch.linalg.slogdet(block.conv_weights)[1]
    torch.testing.assert_close(logdet, expected.expand(2))


def test_conv_downsampling_at_scale_2_starts_as_the_haar_level() -> None:
    """The official x2 start is the Haar matrix, in the Haar level's channel order."""
    x = torch.rand(2, 3, 8, 6)
    ours, ld = ConvDownsampling(2)(x)
    haar, ld_haar = HaarDownsampling(3)(x)
    torch.testing.assert_close(ours, haar)
    torch.testing.assert_close(ld, ld_haar)


def test_conv_downsampling_start_is_the_block_mean_then_identity() -> None:
    m = conv_downsampling_start(3)
    assert torch.allclose(m[0], torch.full((9,), 1 / 9))
    assert torch.equal(m[1:], torch.eye(9)[1:])
    x = torch.rand(1, 3, 6, 6)
    lr = ConvDownsampling(3)(x)[0][:, :3]
    torch.testing.assert_close(lr, torch.nn.functional.avg_pool2d(x, 3))


@pytest.mark.parametrize("rev", [False, True])
def test_color_transform_inverts_and_its_logdet_matches_autograd(rev: bool) -> None:
    block = _perturbed(ColorTransform())
    x = torch.rand(1, 3, 3, 2, dtype=torch.float64)
    y, logdet = block(x, rev=rev)
    back, logdet_back = block(y, rev=not rev)
    assert (back - x).abs().max() < 1e-10
    torch.testing.assert_close(logdet_back, -logdet)
    torch.testing.assert_close(logdet[0], autograd_logdet(lambda v: block(v, rev=rev), x))


def test_color_transform_starts_at_yuv_whose_first_row_is_the_luma() -> None:
    block = ColorTransform()
    assert torch.allclose(block.conv_weights, torch.tensor(RGB_TO_YUV))
    rgb = torch.rand(2, 3, 4, 5)
    torch.testing.assert_close(block(rgb)[0][:, :1], rgb_to_luma(rgb))
    grey = torch.full((1, 3, 1, 1), 0.5)
    torch.testing.assert_close(rgb_to_luma(grey), torch.full((1, 1, 1, 1), 0.5))  # luma weights sum to 1


def test_blocks_refuse_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="divisible by 3"):
        ConvDownsampling(3)(torch.rand(1, 3, 4, 6))
    with pytest.raises(ValueError, match="27 channels"):
        ConvDownsampling(3)(torch.rand(1, 3, 2, 2), rev=True)
    with pytest.raises(ValueError, match="3 channels"):
        ColorTransform()(torch.rand(1, 1, 2, 2))


# ------------------------------------------------------------------ the networks
@pytest.mark.parametrize("size", [(9, 12), (17, 23), (2, 4)])
def test_x3_network_inverts_with_the_padding_rule(size: tuple[int, int]) -> None:
    model = random_irn(3, 2, growth=16, kind="conv", dtype=torch.float64)
    hr = torch.rand(1, 3, *size, dtype=torch.float64)
    with torch.no_grad():
        lr, z = model.encode(hr)
        back = model.decode(lr, z, size=size)
    assert lr.shape == (1, 3, -(-size[0] // 3), -(-size[1] // 3))
    assert z.shape == (1, 24, *lr.shape[-2:])
    assert (back - hr).abs().max() < 1e-10
    up = model.upscale(model.downscale(hr), seed=0, size=size)
    assert up.shape == hr.shape and 0 <= up.min() and up.max() <= 1


@pytest.mark.parametrize("kind", ["conv", "color"])
def test_network_logdet_matches_autograd(kind: str) -> None:
    scale = 3 if kind == "conv" else 1
    model = random_irn(scale, 1, growth=4, kind=kind, dtype=torch.float64)
    x = torch.rand(1, 3, 3, 3, dtype=torch.float64)
    _, logdet = model(x)
    torch.testing.assert_close(logdet[0], autograd_logdet(model, x))


def test_color_network_api() -> None:
    model = random_irn(1, 2, growth=16, kind="color")
    assert isinstance(model, IRNColor) and model.lr_channels == 1 and model.latent_channels == 2
    rgb = torch.rand(2, 3, 7, 5)
    with torch.no_grad():
        grey, z = model.encode(rgb)
        assert grey.shape == (2, 1, 7, 5) and z.shape == (2, 2, 7, 5)
        assert (model.decode(grey, z) - rgb).abs().max() < 1e-5
        g8 = model.decolorize(rgb)
        assert torch.equal(g8, torch.round(g8 * 255) / 255)
        colour = model.colorize(g8, z="zero")
        assert colour.shape == rgb.shape
        torch.testing.assert_close(colour, model.upscale(g8, z="zero"))
        torch.testing.assert_close(model.colorize(g8, z="sample", seed=1), model.upscale(g8, z="sample", seed=1))
        # z="auto" on a model without metadata: the official IRN-Color's z = 0
        torch.testing.assert_close(model.colorize(g8, seed=1), colour)
    with pytest.raises(InputError, match=r"\(B, 1, h, w\)"):
        model.colorize(rgb)


def test_config_of_the_kinds() -> None:
    assert IRNConfig(kind="conv", scale=3).levels == 1
    assert IRNConfig(kind="conv", scale=3).latent_channels == 24
    assert IRNConfig(kind="color", scale=1).lr_channels == 1
    assert "kind" not in IRNConfig(scale=2).to_dict()  # files of the Haar IRN stay as they were
    for config in (IRNConfig(kind="conv", scale=3, blocks_per_level=(12,)), IRNConfig(kind="color", scale=1)):
        assert IRNConfig.from_dict(config.to_dict()) == config
    with pytest.raises(InputError, match="kind"):
        IRNConfig(kind="wavelet")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="scale 1"):
        IRNConfig(kind="color", scale=2)
    with pytest.raises(InputError, match="scale must be 2, 4 or 8"):
        IRNConfig(scale=3)
    with pytest.raises(InputError, match="kind 'color'"):
        IRNColor(IRNConfig(scale=2))
    assert type(IRN(IRNConfig(kind="conv", scale=3))) is IRN
    x3 = IRN(IRNConfig(kind="conv", scale=3, blocks_per_level=(12,)))
    assert x3.num_parameters() == 3_139_029  # the official x3 fixture's size
