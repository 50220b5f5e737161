"""irn.eval.metrics: PSNR/SSIM against a direct NumPy/SciPy transcription of the MATLAB/BasicSR
definitions, edge cases, and the LPIPS weight-loading path."""

from __future__ import annotations

import math
from pathlib import Path

import lpips
import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from irn.errors import IRNError
from irn.eval.metrics import (
    ALEXNET_FILE,
    MetricInputError,
    alexnet_weights_path,
    build_lpips,
    lpips_distance,
    psnr,
    rgb_to_y,
    ssim,
)


def _random_pair(b: int = 2, h: int = 40, w: int = 33, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (b, 3, h, w), generator=gen).double() / 255
    noise = torch.randint(-20, 21, (b, 3, h, w), generator=gen).double() / 255
    return x, (x + noise).clamp(0, 1)


# ------------------------------------------------------------ NumPy reference (MATLAB / BasicSR)


def _np_y(img: np.ndarray) -> np.ndarray:
    """img (H, W, 3) RGB on 0-255 -> Y on 0-255, MATLAB rgb2ycbcr in double precision."""
    return 16.0 + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.0


def _np_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else 20 * math.log10(255.0 / math.sqrt(mse))


def _np_ssim(a: np.ndarray, b: np.ndarray) -> float:
    t = np.arange(11) - 5
    g = np.exp(-(t**2) / (2 * 1.5**2))
    window = np.outer(g / g.sum(), g / g.sum())
    f = lambda m: convolve2d(m, window, mode="valid")  # noqa: E731
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = f(a), f(b)
    s1, s2, s12 = f(a * a) - mu1**2, f(b * b) - mu2**2, f(a * b) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))
    return float(m.mean())


def _hwc255(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).numpy() * 255.0


@pytest.mark.parametrize("crop", [0, 3])
def test_psnr_and_ssim_match_reference(crop: int) -> None:
    x, y = _random_pair()
    c = slice(crop, -crop) if crop else slice(None)
    for i in range(2):
        a, b = _hwc255(x[i])[c, c], _hwc255(y[i])[c, c]
        assert psnr(x, y, crop)[i].item() == pytest.approx(_np_psnr(_np_y(a), _np_y(b)), abs=1e-10)
        assert psnr(x, y, crop, y_channel=False)[i].item() == pytest.approx(_np_psnr(a, b), abs=1e-10)
        assert ssim(x, y, crop)[i].item() == pytest.approx(_np_ssim(_np_y(a), _np_y(b)), abs=1e-12)
        rgb = np.mean([_np_ssim(a[..., ch], b[..., ch]) for ch in range(3)])
        assert ssim(x, y, crop, y_channel=False)[i].item() == pytest.approx(rgb, abs=1e-12)


def test_rgb_to_y_is_matlab_bt601() -> None:
    colours = torch.tensor([[0.0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)
    y = rgb_to_y(colours.view(5, 3, 1, 1)).flatten()
    torch.testing.assert_close(y, torch.tensor([16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966]).double())


def test_identical_images() -> None:
    x, _ = _random_pair()
    assert torch.isinf(psnr(x, x)).all() and (psnr(x, x) > 0).all()
    assert torch.isinf(psnr(x, x.clone(), crop_border=2, y_channel=False)).all()
    torch.testing.assert_close(ssim(x, x), torch.ones(2, dtype=torch.float64))


def test_batches_dtypes_and_single_images() -> None:
    x, y = _random_pair(b=3)
    batch = psnr(x, y, 2)
    assert batch.shape == (3,) and batch.dtype == torch.float64
    for i in range(3):
        assert psnr(x[i], y[i], 2).item() == pytest.approx(batch[i].item(), abs=1e-12)  # (3, H, W) input
    torch.testing.assert_close(psnr(x.float(), y.float(), 2).double(), batch, atol=1e-3, rtol=0)
    torch.testing.assert_close(ssim(x.float(), y.float(), 2).double(), ssim(x, y, 2), atol=1e-5, rtol=0)
    assert psnr(x.float(), y.float()).dtype == torch.float32


def test_greyscale_is_r_equals_g_equals_b() -> None:
    x, y = _random_pair()
    gx, gy = x[:, :1], y[:, :1]
    for fn in (psnr, ssim):
        for y_channel in (True, False):
            expected = fn(gx.expand(-1, 3, -1, -1), gy.expand(-1, 3, -1, -1), 2, y_channel)
            torch.testing.assert_close(fn(gx, gy, 2, y_channel), expected)
    torch.testing.assert_close(rgb_to_y(gx.expand(-1, 3, -1, -1)), 16 + 219 * gx)


def test_bad_inputs_are_clear_errors() -> None:
    x, y = _random_pair(h=20, w=20)
    with pytest.raises(MetricInputError, match="differ in shape"):
        psnr(x, y[..., :19])
    with pytest.raises(MetricInputError, match="differ in shape"):
        ssim(x, y[:1])
    with pytest.raises(MetricInputError, match=r"x must be a float tensor in \[0, 1\], got torch.uint8"):
        psnr((x * 255).round().byte(), y)  # would be -36 dB: 0-255 values read as [0, 1]
    with pytest.raises(ValueError, match="too small"):  # also a ValueError
        ssim(x, y, crop_border=5)  # 10x10 left < 11x11 window
    assert ssim(x, y, crop_border=4).shape == (2,)  # 12x12 is enough
    with pytest.raises(IRNError, match="too small"):  # and an IRNError for the CLI
        psnr(x, y, crop_border=10)
    with pytest.raises(MetricInputError, match=r"\(B, 3\|1, H, W\)"):
        psnr(torch.zeros(2, 4, 8, 8), torch.zeros(2, 4, 8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    x, y = _random_pair()
    torch.testing.assert_close(psnr(x.cuda(), y.cuda(), 2).cpu(), psnr(x, y, 2))
    torch.testing.assert_close(ssim(x.cuda(), y.cuda(), 2).cpu(), ssim(x, y, 2))


# ------------------------------------------------------------------------------ LPIPS


def test_lpips_missing_backbone_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / ALEXNET_FILE
    assert alexnet_weights_path() == expected
    with pytest.raises(IRNError, match="AlexNet") as info:
        build_lpips()
    assert str(expected) in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing was downloaded or created


def test_lpips_loads_backbone_from_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(3)
    features = {k: v for k, v in torchvision.models.alexnet().state_dict().items() if k.startswith("features.")}
    path = tmp_path / "hub" / "checkpoints" / ALEXNET_FILE
    path.parent.mkdir(parents=True)
    torch.save(features, path)

    net = build_lpips()
    backbone = net.net.state_dict()
    assert len(backbone) == 10  # five convolutions, weight and bias
    for key, value in backbone.items():  # "slice2.3.weight" <- "features.3.weight"
        torch.testing.assert_close(value, features["features." + key.split(".", 1)[1]], atol=0, rtol=0)
    shipped = torch.load(
        Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth", map_location="cpu", weights_only=True
    )
    for key, value in shipped.items():  # the linear heads come from the lpips package itself
        torch.testing.assert_close(net.state_dict()[key], value, atol=0, rtol=0)
    assert not net.training and not any(p.requires_grad for p in net.parameters())

    x, y = _random_pair(h=32, w=32)
    d = lpips_distance(net, x, y)
    assert d.shape == (2,) and (d > 0).all()
    torch.testing.assert_close(lpips_distance(net, x, x), torch.zeros(2, dtype=torch.float64))

    torch.save({"features.0.weight": torch.zeros(3)}, path)  # wrong file: clear error, not random weights
    with pytest.raises(IRNError, match="not the torchvision AlexNet weights"):
        build_lpips()
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(IRNError, match="cannot read"):
        build_lpips()
