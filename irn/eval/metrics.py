"""Image quality metrics as the super-resolution literature (and the IRN paper) computes them.

* :func:`rgb_to_y`: the luma of MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, studio range), not
  rounded: ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for R, G, B in [0, 1], i.e. Y on
  the 0-255 scale (16..235).
* :func:`psnr`: ``10 log10(255^2 / MSE)`` on the 0-255 scale; identical images give ``inf``.
* :func:`ssim`: Wang et al. (2004) with an 11x11 Gaussian window (sigma 1.5), C1 = (0.01 * 255)^2,
  C2 = (0.03 * 255)^2, on the 0-255 scale, over the "valid" window positions only (as MATLAB's
  ``ssim_index`` / BasicSR); for RGB the mean over the three channels.

All take batches (B, C, H, W) (or one image (C, H, W)) with values in [0, 1], C = 3 (RGB) or
1 (greyscale, treated as R = G = B), run on any device, and return one value per image (B,).
They compute in the promoted floating dtype of the inputs (at least float32): pass float64
for reported figures. Values are used as given: round to 8-bit levels first to score images
as saved (``irn eval`` does). ``crop_border`` pixels are removed from every side first.

:func:`build_lpips` / :func:`lpips_distance`: LPIPS (Zhang et al. 2018, AlexNet, v0.1) through
the ``lpips`` package, with the AlexNet ImageNet weights read from the torch hub cache only
(never downloaded, never random).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from irn.errors import IRNError
from irn.zoo import read_hub_weights

if TYPE_CHECKING:
    from torch import nn

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


class MetricInputError(IRNError, ValueError):
    """Images a metric cannot compare (shape mismatch, too small after cropping, wrong layout)."""


def _as_batch(x: Tensor, name: str) -> Tensor:
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise MetricInputError(f"{name} must be (B, 3|1, H, W) or (3|1, H, W), got shape {tuple(x.shape)}")
    return x


def _prepare(x: Tensor, y: Tensor, crop_border: int, min_size: int) -> tuple[Tensor, Tensor]:
    """Validate, broadcast greyscale to RGB, crop, and promote both to one float dtype."""
    x, y = _as_batch(x, "x"), _as_batch(y, "y")
    for name, t in (("x", x), ("y", y)):
        if not t.is_floating_point():
            raise MetricInputError(f"{name} must be a float tensor in [0, 1], got {t.dtype} (8-bit: divide by 255)")
    if x.shape[0] != y.shape[0] or x.shape[-2:] != y.shape[-2:]:
        raise MetricInputError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if crop_border < 0:
        raise MetricInputError(f"crop_border must be >= 0, got {crop_border}")
    h, w = x.shape[-2:]
    if h - 2 * crop_border < min_size or w - 2 * crop_border < min_size:
        raise MetricInputError(
            f"image of {h}x{w} is too small: after cropping {crop_border} px per side it must be "
            f"at least {min_size}x{min_size}"
        )
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    x, y = x.to(dtype).expand(-1, 3, -1, -1), y.to(dtype).expand(-1, 3, -1, -1)
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
        y = y[..., crop_border:-crop_border, crop_border:-crop_border]
    return x, y


def rgb_to_y(x: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 1, H, W) BT.601 luma on the 0-255 scale (MATLAB ``rgb2ycbcr``)."""
    if x.dim() < 3 or x.shape[-3] != 3:
        raise MetricInputError(f"expected RGB (..., 3, H, W), got shape {tuple(x.shape)}")
    r, g, b = x.unbind(-3)
    y = r * 65.481
    y.add_(g, alpha=128.553).add_(b, alpha=24.966).add_(16.0)
    return y.unsqueeze(-3)


def _to_255(x: Tensor, y_channel: bool) -> Tensor:
    return rgb_to_y(x) if y_channel else x * 255.0


def psnr(x: Tensor, y: Tensor, crop_border: int = 0, y_channel: bool = True) -> Tensor:
    """Peak signal-to-noise ratio in dB, (B,): 10 log10(255^2 / MSE) on Y (or on RGB) at 0-255.

    x, y: (B, 3|1, H, W) in [0, 1]. Identical images give ``inf``.
    """
    x, y = _prepare(x, y, crop_border, 1)
    mse = (_to_255(x, y_channel) - _to_255(y, y_channel)).pow(2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(255.0**2 / mse)  # mse == 0 -> inf


def gaussian_taps(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> list[float]:
    """Normalised 1-D Gaussian (size,), float64; its outer product is MATLAB's fspecial('gaussian')."""
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return (g / g.sum()).tolist()


def _filter_valid(x: Tensor, taps: list[float]) -> Tensor:
    """Separable filter over the last two dims, valid positions: (..., H, W) -> (..., H-k+1, W-k+1).

    k shifted, fused multiply-adds per axis: exact in float64, light on memory, fast on every
    device (CPU float64 convolutions are slow), and differentiable.
    """
    k = len(taps)
    h, w = x.shape[-2:]
    rows = x[..., : h - k + 1, :] * taps[0]
    for i in range(1, k):
        rows.add_(x[..., i : h - k + 1 + i, :], alpha=taps[i])
    out = rows[..., : w - k + 1] * taps[0]
    for i in range(1, k):
        out.add_(rows[..., i : w - k + 1 + i], alpha=taps[i])
    return out


def ssim(x: Tensor, y: Tensor, crop_border: int = 0, y_channel: bool = True) -> Tensor:
    """Structural similarity (Wang et al. 2004), (B,): mean SSIM map over valid window positions.

    x, y: (B, 3|1, H, W) in [0, 1]; scored on Y (or per RGB channel, averaged) at 0-255 with an
    11x11 Gaussian window, sigma 1.5. Needs at least 11x11 pixels after cropping.
    """
    x, y = _prepare(x, y, crop_border, SSIM_WINDOW)
    a, b = _to_255(x, y_channel), _to_255(y, y_channel)  # (B, C, H, W), C = 1 (Y) or 3
    taps = gaussian_taps()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    maps = torch.stack((a, b, a * a, b * b, a * b))
    mu_a, mu_b, aa, bb, ab = _filter_valid(maps, taps)  # local means of a, b, a^2, b^2, ab
    mu_ab, mu_aa, mu_bb = mu_a * mu_b, mu_a * mu_a, mu_b * mu_b
    numerator = (2 * mu_ab + c1) * (2 * (ab - mu_ab) + c2)
    denominator = (mu_aa + mu_bb + c1) * ((aa - mu_aa) + (bb - mu_bb) + c2)
    ssim_map = numerator / denominator
    return ssim_map.flatten(1).mean(1)


# --------------------------------------------------------------------------- LPIPS

#: The torchvision AlexNet ImageNet weights file that LPIPS's backbone needs.
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = f"https://download.pytorch.org/models/{ALEXNET_FILE}"


def alexnet_weights_path() -> Path:
    """Where the AlexNet backbone weights are expected: ``$TORCH_HOME/hub/checkpoints/`` + file.

    ``torch.hub.get_dir()`` resolves TORCH_HOME (default ``~/.cache/torch``) as torchvision does.
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def build_lpips(device: str | torch.device | None = None) -> nn.Module:
    """LPIPS v0.1 with the AlexNet backbone, in eval mode, no gradients, on ``device``.

    The linear-layer weights ship inside the ``lpips`` package; the AlexNet ImageNet backbone is
    read from :func:`alexnet_weights_path`. Nothing is downloaded: when the file is missing (or is
    not AlexNet weights), an :class:`IRNError` says which file to put where.
    """
    path = alexnet_weights_path()
    backbone = read_hub_weights(path, ALEXNET_URL, "LPIPS", "AlexNet")
    import lpips

    with warnings.catch_warnings():  # torchvision's notes on the deprecated 'pretrained' argument
        warnings.simplefilter("ignore", UserWarning)
        # pnet_rand=True: lpips builds the AlexNet without asking torchvision to download weights;
        # the real ImageNet weights are loaded just below (strictly: every backbone tensor).
        net = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    features = {k[len("features.") :]: v for k, v in dict(backbone).items() if k.startswith("features.")}
    target = net.net.state_dict()
    mapped: dict[str, Tensor] = {}
    for key in target:  # "slice2.3.weight" <- torchvision "features.3.weight"
        layer_param = key.split(".", 1)[1]
        if layer_param not in features or features[layer_param].shape != target[key].shape:
            raise IRNError(f"{path}: not the torchvision AlexNet weights (no matching 'features.{layer_param}')")
        mapped[key] = features[layer_param]
    net.net.load_state_dict(mapped, strict=True)
    net.eval().requires_grad_(False)
    if device is not None:
        net.to(device)
    return net


def lpips_distance(net: nn.Module, x: Tensor, y: Tensor, crop_border: int = 0) -> Tensor:
    """LPIPS distance (B,) between RGB batches x, y (B, 3|1, H, W) in [0, 1] (lower is closer)."""
    x, y = _prepare(x, y, crop_border, 16)
    param = next(net.parameters())
    x, y = x.to(param), y.to(param)
    with torch.no_grad():
        return net(x, y, normalize=True).reshape(x.shape[0]).to(torch.float64)
