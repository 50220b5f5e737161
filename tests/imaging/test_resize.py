"""irn.imaging.resize.imresize against MATLAB's own output, an independent float64 reference of MATLAB's
formula, Pillow (where Pillow's definition agrees: away from the borders) and pooling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import shared_path
from PIL import Image

from irn.imaging.io import read_image
from irn.imaging.resize import imresize, output_size

# ----------------------------------------------------------------- independent reference


def _ref_kernel(name: str, t: float) -> float:
    """MATLAB's kernel formulas (imresize.m), written out per case."""
    a = abs(t)
    if name == "cubic":
        if a <= 1:
            return 1.5 * a**3 - 2.5 * a**2 + 1
        if a <= 2:
            return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
        return 0.0
    if name == "linear":
        return (t + 1) if -1 <= t < 0 else (1 - t) if 0 <= t <= 1 else 0.0
    if name in ("box", "nearest"):
        return 1.0 if -0.5 <= t < 0.5 else 0.0
    n = {"lanczos2": 2, "lanczos3": 3}[name]
    eps = np.finfo(float).eps
    value = (math.sin(math.pi * t) * math.sin(math.pi * t / n) + eps) / (math.pi**2 * t * t / n + eps)
    return value if a < n else 0.0


_WIDTH = {"cubic": 4.0, "linear": 2.0, "box": 1.0, "nearest": 1.0, "lanczos2": 4.0, "lanczos3": 6.0}


def _mirror(k: int, n: int) -> int:
    """1-based index k reflected into 1..n with the edge pixel repeated."""
    while k < 1 or k > n:
        k = 1 - k if k < 1 else 2 * n + 1 - k
    return k


def _ref_resize_1d(v: np.ndarray, out_len: int, scale: float, kernel: str, antialias: bool) -> np.ndarray:
    """Resize the last axis of v, one output sample at a time (float64)."""
    n = v.shape[-1]
    stretch = scale < 1 and antialias and kernel != "nearest"
    reach = _WIDTH[kernel] / (scale if stretch else 1.0) / 2 + 1
    out = np.zeros(v.shape[:-1] + (out_len,))
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        acc, total = np.zeros(v.shape[:-1]), 0.0
        for k in range(math.floor(u - reach), math.ceil(u + reach) + 1):
            wgt = scale * _ref_kernel(kernel, scale * (u - k)) if stretch else _ref_kernel(kernel, u - k)
            acc = acc + wgt * v[..., _mirror(k, n) - 1]
            total += wgt
        out[..., x - 1] = acc / total
    return out


def _ref_imresize(img: np.ndarray, out_hw: tuple[int, int], scales: tuple[float, float], kernel: str, aa: bool):
    h_first = scales[0] <= scales[1]
    steps = [(-2, out_hw[0], scales[0]), (-1, out_hw[1], scales[1])]
    for axis, n, s in steps if h_first else steps[::-1]:
        img = np.moveaxis(_ref_resize_1d(np.moveaxis(img, axis, -1), n, s, kernel, aa), -1, axis)
    return img


KERNEL_CASES = ["cubic", "linear", "box", "nearest", "lanczos2", "lanczos3"]
SCALE_CASES: list[dict[str, object]] = [
    {"scale": 0.5},
    {"scale": 1 / 3},
    {"scale": 0.37},
    {"scale": (0.6, 1.8)},
    {"scale": 2},
    {"scale": 3.3},
    {"size": (5, 14)},
    {"size": (3, None)},
]


@pytest.mark.parametrize("kernel", KERNEL_CASES)
@pytest.mark.parametrize("antialias", [True, False])
def test_matches_independent_matlab_formula(kernel: str, antialias: bool) -> None:
    gen = torch.Generator().manual_seed(1)
    img = torch.rand(2, 9, 11, generator=gen, dtype=torch.float64)
    for case in SCALE_CASES:
        (oh, ow), scales = output_size((9, 11), **case)  # type: ignore[arg-type]
        ours = imresize(img, kernel=kernel, antialias=antialias, **case)  # type: ignore[arg-type]
        ref = _ref_imresize(img.numpy(), (oh, ow), scales, kernel, antialias)
        assert ours.shape == (2, oh, ow), case
        np.testing.assert_allclose(ours.numpy(), ref, atol=1e-12, err_msg=f"{kernel} {case}")


def test_output_sizes_follow_matlab() -> None:
    x = torch.zeros(1, 3, 7, 9)
    assert imresize(x, 0.5).shape[-2:] == (4, 5)  # ceil
    assert imresize(x, 1 / 3).shape[-2:] == (3, 3)
    assert imresize(torch.zeros(300, 301), 1 / 3).shape == (100, 101)
    assert imresize(x, (2, 0.5)).shape[-2:] == (14, 5)
    assert imresize(x, size=(10, None)).shape[-2:] == (10, 13)  # 9 * 10/7 = 12.86 -> 13
    assert imresize(x, size=(None, 3)).shape[-2:] == (3, 3)
    assert imresize(torch.zeros(5, 6), 2.5).shape == (13, 15)


# ----------------------------------------------------------------- MATLAB's own output


@pytest.mark.parametrize("scale", [2, 4])
def test_matches_matlab_on_set5(scale: int) -> None:
    gt_dir = shared_path("datasets", "Set5", "GTmod12")
    lr_dir = shared_path("datasets", "Set5", f"LRbicx{scale}")
    names = sorted(p.name for p in gt_dir.glob("*.png"))
    assert len(names) == 5
    for name in names:
        hr = read_image(gt_dir / name).double()
        ours = (imresize(hr, 1 / scale).clamp(0, 1) * 255).round()
        ref = torch.from_numpy(np.array(Image.open(lr_dir / name).convert("RGB"))).permute(2, 0, 1).double()
        diff = (ours - ref).abs()
        assert ours.shape == ref.shape
        assert diff.mean().item() <= 1e-3, name
        assert diff.max().item() <= 1, name
        # float32 lands on the same uint8 values up to the same rare half-level ties
        ours32 = (imresize(hr.float(), 1 / scale).clamp(0, 1) * 255).round().double()
        assert (ours32 - ref).abs().max().item() <= 1
        assert (ours32 - ref).abs().mean().item() <= 2e-3


# ----------------------------------------------------------------- Pillow and pooling


_PIL = {"cubic": Image.Resampling.BICUBIC, "linear": Image.Resampling.BILINEAR, "lanczos3": Image.Resampling.LANCZOS}


@pytest.mark.parametrize("kernel", sorted(_PIL))
@pytest.mark.parametrize("factor", [1 / 2, 1 / 3, 1 / 4, 2, 3])
def test_agrees_with_pillow_away_from_borders(kernel: str, factor: float) -> None:
    """Pillow uses the same kernels, centres and antialiasing but truncates at the borders
    instead of mirroring, so only outputs whose taps stay inside the image are compared."""
    gen = torch.Generator().manual_seed(2)
    img = torch.rand(48, 60, generator=gen)
    out_h, out_w = round(48 * factor), round(60 * factor)
    pil = Image.fromarray(img.numpy(), mode="F").resize((out_w, out_h), _PIL[kernel])
    theirs = torch.from_numpy(np.array(pil)).double()
    ours = imresize(img.double(), factor, kernel=kernel)
    assert ours.shape == theirs.shape
    reach = 3 if kernel == "lanczos3" else 2  # kernel radius in input pixels (before stretching)
    m = math.ceil(reach * max(1.0, factor)) + 1  # output margin whose taps may leave the image
    torch.testing.assert_close(ours[m:-m, m:-m], theirs[m:-m, m:-m], atol=2e-6, rtol=0)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_area_downscale_is_average_pooling(factor: int) -> None:
    img = torch.rand(2, 3, 12 * factor, 7 * factor, dtype=torch.float64)
    for kernel in ("area", "box"):
        torch.testing.assert_close(imresize(img, 1 / factor, kernel=kernel), F.avg_pool2d(img, factor))


def test_nearest_upscale_repeats_pixels() -> None:
    img = torch.rand(1, 3, 5, 6)
    expected = img.repeat_interleave(3, -2).repeat_interleave(3, -1)
    torch.testing.assert_close(imresize(img, 3, kernel="nearest"), expected, atol=0, rtol=0)


# ----------------------------------------------------------------- tensors, dtypes, autograd


@pytest.mark.parametrize("kernel", KERNEL_CASES)
def test_constant_image_stays_constant(kernel: str) -> None:
    img = torch.full((1, 2, 13, 10), 0.3, dtype=torch.float64)
    for scale in (0.3, 0.5, 1.7, 4):
        out = imresize(img, scale, kernel=kernel)
        torch.testing.assert_close(out, torch.full_like(out, 0.3))


def test_batch_dtype_and_layout() -> None:
    img = torch.rand(2, 3, 20, 17, dtype=torch.float64)
    out64 = imresize(img, 0.5)
    out32 = imresize(img.float(), 0.5)
    assert out64.dtype == torch.float64 and out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, atol=2e-6, rtol=0)
    torch.testing.assert_close(imresize(img[1, 2], 0.5), out64[1, 2])  # 2-D input
    torch.testing.assert_close(imresize(img.transpose(-1, -2), 0.5), out64.transpose(-1, -2))  # strided
    with pytest.raises(TypeError, match="floating-point"):
        imresize(torch.zeros(4, 4, dtype=torch.uint8), 0.5)


def test_dense_and_gather_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    import irn.imaging.resize as resize_module

    img = torch.rand(1, 3, 31, 40)
    dense = [imresize(img, s, kernel=k) for s in (0.25, 2.5) for k in ("cubic", "lanczos3")]
    monkeypatch.setattr(resize_module, "DENSE_LIMIT", 0)
    gather = [imresize(img, s, kernel=k) for s in (0.25, 2.5) for k in ("cubic", "lanczos3")]
    for a, b in zip(dense, gather, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_reduced_precision_matmul_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """With TF32/bf16 float32 matmuls allowed, float32 resizing falls back to the exact gathers."""
    img = torch.rand(1, 3, 16, 16)
    exact = imresize(img.double(), 0.5).float()
    real_matmul = torch.matmul
    calls: list[torch.dtype] = []

    def spy(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        calls.append(a.dtype)
        return real_matmul(a, b)

    monkeypatch.setattr(torch, "matmul", spy)
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        torch.testing.assert_close(imresize(img, 0.5), exact, atol=1e-6, rtol=0)
        assert calls == []
        torch.set_float32_matmul_precision("highest")
        imresize(img, 0.5)
        assert calls == [torch.float32, torch.float32]
    finally:
        torch.set_float32_matmul_precision(before)


@pytest.mark.parametrize("scale", [0.5, 1.5])
def test_gradients(scale: float, monkeypatch: pytest.MonkeyPatch) -> None:
    import irn.imaging.resize as resize_module

    img = torch.rand(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, scale), (img,), fast_mode=True)
    monkeypatch.setattr(resize_module, "DENSE_LIMIT", 0)
    assert torch.autograd.gradcheck(lambda t: imresize(t, scale, kernel="lanczos3"), (img,), fast_mode=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    img = torch.rand(2, 3, 37, 29, dtype=torch.float64)
    for scale in (0.5, 0.3, 2):
        torch.testing.assert_close(imresize(img.cuda(), scale).cpu(), imresize(img, scale))
        out32 = imresize(img.float().cuda(), scale)
        assert out32.device.type == "cuda"
        torch.testing.assert_close(out32.cpu().double(), imresize(img, scale), atol=2e-6, rtol=0)


def test_bad_arguments() -> None:
    img = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="unknown kernel"):
        imresize(img, 0.5, kernel="mitchell")
    with pytest.raises(ValueError, match="exactly one"):
        imresize(img)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(img, 0.5, size=(4, 4))
    with pytest.raises(ValueError, match="positive"):
        imresize(img, 0)
    with pytest.raises(ValueError, match="positive"):
        imresize(img, size=(0, 4))
    with pytest.raises(ValueError, match="empty"):
        imresize(torch.zeros(1, 0, 4), 2)
