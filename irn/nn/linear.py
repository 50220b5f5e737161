"""Learnable invertible linear maps: the x3 model's downsampling and IRN-Color's colour transform.

:class:`ConvDownsampling` (the official x3, ``use_ConvDownsampling: True``) replaces the Haar levels
by one learnable downsampling: space-to-depth by s, then one s² x s² matrix M applied to each s x s
block of every colour channel (the same M for all channels), inverted with M⁻¹. Output channel
``k*C + c`` holds coefficient ``k`` of input channel ``c`` (band-major, like the Haar level), so
channels 0..C-1 are the LR image when M's first row is the block mean.

:class:`ColorTransform` (the official ``Conv1x1Grey``) is one learnable 3 x 3 colour matrix applied
per pixel; it starts at RGB -> YUV, whose first row is the BT.601 luma.

Both keep the official state-dict key ``conv_weights`` and follow the blocks' contract:
``forward(x, rev=False) -> (y, log|det J| per sample)``, with no state kept between calls.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# The official IRN-Color start: rows Y, U, V of the BT.601 analogue YUV transform.
RGB_TO_YUV = (
    (0.299, 0.587, 0.114),
    (-0.147, -0.289, 0.436),
    (0.615, -0.515, -0.100),
)


def haar_matrix() -> Tensor:
    """The 4 x 4 matrix of one Haar level on a 2 x 2 block (pixels in row-major order), as
    :class:`irn.nn.HaarDownsampling` computes it: mean, then the three high-pass bands, each / 4."""
    return (
        torch.tensor(
            [
                [1.0, 1.0, 1.0, 1.0],
                [1.0, -1.0, 1.0, -1.0],
                [1.0, 1.0, -1.0, -1.0],
                [1.0, -1.0, -1.0, 1.0],
            ]
        )
        / 4
    )


def conv_downsampling_start(scale: int) -> Tensor:
    """The official start of M: the Haar matrix at s = 2; otherwise the identity with its first row
    the block mean (1/s² everywhere), so that the LR starts as the box-filtered image."""
    if scale == 2:
        return haar_matrix()
    m = torch.eye(scale * scale)
    m[0] = 1.0 / (scale * scale)
    return m


def _logabsdet(m: Tensor) -> Tensor:
    # float64 keeps the log-determinant of an ill-conditioned learnt matrix accurate
    return torch.linalg.slogdet(m.double())[1].to(m.dtype)


class ConvDownsampling(nn.Module):
    """(B, C, H, W) -> (B, C s², H/s, W/s) with H, W multiples of s; exactly invertible while M is."""

    def __init__(self, scale: int, channels: int = 3) -> None:
        super().__init__()
        if scale < 2:
            raise ValueError(f"ConvDownsampling needs a scale of at least 2, got {scale}")
        self.scale = scale
        self.channels = channels
        self.conv_weights = nn.Parameter(conv_downsampling_start(scale))

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        """Return ``(y, logdet)`` with logdet of shape (B,)."""
        s, c = self.scale, self.channels
        m = self.conv_weights.to(x.dtype)
        b, ch, h, w = x.shape
        if not rev:
            if ch != c:
                raise ValueError(f"ConvDownsampling expects {c} channels, got {ch}")
            if h % s or w % s:
                raise ValueError(f"ConvDownsampling needs height and width divisible by {s}, got {h}x{w}")
            blocks = x.reshape(b, c, h // s, s, w // s, s).permute(0, 1, 3, 5, 2, 4)
            blocks = blocks.reshape(b, c, s * s, h // s, w // s)
            y = torch.einsum("kp,bcphw->bkchw", m, blocks).reshape(b, s * s * c, h // s, w // s)
            logdet = _logabsdet(m) * (c * h * w / (s * s))
        else:
            if ch != c * s * s:
                raise ValueError(f"inverse ConvDownsampling expects {c * s * s} channels, got {ch}")
            coeffs = x.reshape(b, s * s, c, h, w)
            # inv_ex: no error-check op, so the graph exports to ONNX (irn.onnx.export); a singular M
            # (never the case for a trained map) gives non-finite values instead of an exception
            blocks = torch.einsum("pk,bkchw->bcphw", torch.linalg.inv_ex(m)[0], coeffs)
            y = blocks.reshape(b, c, s, s, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, h * s, w * s)
            logdet = -_logabsdet(m) * (c * h * w)
        return y, logdet.expand(b).clone()


class ColorTransform(nn.Module):
    """(B, 3, H, W) -> (B, 3, H, W): one learnable colour matrix per pixel (start: RGB -> YUV)."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        if channels != 3:
            raise ValueError(f"ColorTransform maps 3 colour channels, got {channels}")
        self.channels = channels
        self.conv_weights = nn.Parameter(torch.tensor(RGB_TO_YUV))

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        """Return ``(y, logdet)`` with logdet of shape (B,)."""
        b, ch, h, w = x.shape
        if ch != self.channels:
            raise ValueError(f"ColorTransform expects {self.channels} channels, got {ch}")
        m = self.conv_weights.to(x.dtype)
        if rev:  # inv_ex: see ConvDownsampling
            y = torch.einsum("ij,bjhw->bihw", torch.linalg.inv_ex(m)[0], x)
            logdet = -_logabsdet(m) * (h * w)
        else:
            y = torch.einsum("ij,bjhw->bihw", m, x)
            logdet = _logabsdet(m) * (h * w)
        return y, logdet.expand(b).clone()


def rgb_to_luma(rgb: Tensor) -> Tensor:
    """BT.601 luma (B, 1, H, W) of an RGB batch in [0, 1]: the first row of :data:`RGB_TO_YUV`, the
    grey image an IRN-Color model is trained towards."""
    weights = torch.tensor(RGB_TO_YUV[0], dtype=rgb.dtype, device=rgb.device)
    return torch.einsum("j,bjhw->bhw", weights, rgb).unsqueeze(1)
