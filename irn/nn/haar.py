"""Invertible Haar wavelet downsampling (IRN paper, Sec. 3.2).

Input (B, C, H, W) with even H, W; output (B, 4C, H/2, W/2). Output channel ``k*C + c``
holds sub-band ``k`` of input channel ``c``: k = 0 is the low-pass (mean of each 2x2 block),
k = 1, 2, 3 the horizontal, vertical and diagonal high-pass bands, exactly as the
official code orders them. Every band is normalised by 1/4, so each 2x2 block is mapped
by a matrix with |det| = 1/16: log|det J| = (C*H*W/4) * log(1/16) per sample.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def haar_filters(channels: int) -> Tensor:
    """The (4*channels, 1, 2, 2) filter bank of the official code (channel-major repeat)."""
    w = torch.ones(4, 1, 2, 2)
    w[1, 0, 0, 1] = w[1, 0, 1, 1] = -1
    w[2, 0, 1, 0] = w[2, 0, 1, 1] = -1
    w[3, 0, 1, 0] = w[3, 0, 0, 1] = -1
    return torch.cat([w] * channels, 0)


class HaarDownsampling(nn.Module):
    """One Haar level: (B, C, H, W) -> (B, 4C, H/2, W/2), exactly invertible."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        # A buffer, not a parameter: it is fixed, and the paper's parameter counts exclude it.
        # It keeps the official state-dict key ``operations.N.haar_weights``.
        self.register_buffer("haar_weights", haar_filters(channels))

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        """Return ``(y, logdet)`` with logdet of shape (B,)."""
        b, c, h, w = x.shape
        weights = self.haar_weights.to(dtype=x.dtype)
        if not rev:
            if c != self.channels:
                raise ValueError(f"HaarDownsampling expects {self.channels} channels, got {c}")
            if h % 2 or w % 2:
                raise ValueError(f"HaarDownsampling needs even height and width, got {h}x{w}")
            y = F.conv2d(x, weights, stride=2, groups=c) / 4.0
            y = y.reshape(b, c, 4, h // 2, w // 2).transpose(1, 2).reshape(b, 4 * c, h // 2, w // 2)
            logdet = c * h * w / 4 * math.log(1 / 16)
        else:
            if c != 4 * self.channels:
                raise ValueError(f"inverse HaarDownsampling expects {4 * self.channels} channels, got {c}")
            y = x.reshape(b, 4, c // 4, h, w).transpose(1, 2).reshape(b, c, h, w)
            y = F.conv_transpose2d(y, weights, stride=2, groups=c // 4)
            # the inverse of the forward map: (C * 2h * 2w / 4) blocks, each |det| = 16
            logdet = (c // 4) * h * w * math.log(16)
        return y, x.new_full((b,), logdet)
