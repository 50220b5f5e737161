"""Affine coupling block (IRN paper, Eq. 1-2; the official ``InvBlockExp``).

Forward, with x split into x1 (first ``split`` channels) and x2 (the rest)::

    y1 = x1 + F(x2)
    s  = clamp * (2 * sigmoid(H(y1)) - 1)
    y2 = x2 * exp(s) + G(y1)

log|det J| = sum(s) per sample. The inverse undoes the two steps in reverse order.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from irn.nn.subnets import DenseBlock


class AffineCoupling(nn.Module):
    """(B, channels, H, W) -> (B, channels, H, W), exactly invertible."""

    def __init__(self, channels: int, split: int = 3, clamp: float = 1.0, growth: int = 32) -> None:
        super().__init__()
        if not 0 < split < channels:
            raise ValueError(f"split must be in (0, {channels}), got {split}")
        self.split = split
        self.clamp = clamp
        # Attribute names F, G, H keep the official state-dict keys.
        self.F = DenseBlock(channels - split, split, growth)
        self.G = DenseBlock(split, channels - split, growth)
        self.H = DenseBlock(split, channels - split, growth)

    def set_log_scale(self, value: float) -> None:
        """Make s = ``value`` (in (-clamp, clamp)) wherever H's output is 0: H's last bias becomes
        logit((value / clamp + 1) / 2). A fresh block (H's last weights zero) then has s = value
        everywhere: its forward pass multiplies x2 by exp(value) and its inverse divides by it."""
        if not abs(value) < self.clamp:
            raise ValueError(f"log-scale must be in (-{self.clamp}, {self.clamp}), got {value}")
        p = (value / self.clamp + 1) / 2
        with torch.no_grad():
            self.H.conv5.bias.fill_(math.log(p / (1 - p)))

    def log_scale(self, y1: Tensor) -> Tensor:
        return self.clamp * (torch.sigmoid(self.H(y1)) * 2 - 1)

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        """Return ``(y, logdet)`` with logdet of shape (B,)."""
        x1, x2 = x[:, : self.split], x[:, self.split :]
        if not rev:
            y1 = x1 + self.F(x2)
            s = self.log_scale(y1)
            y2 = x2 * torch.exp(s) + self.G(y1)
            logdet = s.flatten(1).sum(1)
        else:
            s = self.log_scale(x1)
            y2 = (x2 - self.G(x1)) / torch.exp(s)
            y1 = x1 - self.F(y2)
            logdet = -s.flatten(1).sum(1)
        return torch.cat((y1, y2), 1), logdet
