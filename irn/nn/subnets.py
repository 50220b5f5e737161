"""Dense-block subnet used for F, G and H of the coupling blocks (IRN paper, Sec. 3.3)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class DenseBlock(nn.Module):
    """Five 3x3 convolutions with dense connections (growth ``growth``), LeakyReLU(0.2).

    (B, in_channels, H, W) -> (B, out_channels, H, W). The first four convolutions are
    Xavier-normal initialised and scaled by 0.1, the last one is zero, so a fresh subnet
    outputs 0 and a fresh coupling block is the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, growth: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, growth, 3, 1, 1)
        self.conv2 = nn.Conv2d(in_channels + growth, growth, 3, 1, 1)
        self.conv3 = nn.Conv2d(in_channels + 2 * growth, growth, 3, 1, 1)
        self.conv4 = nn.Conv2d(in_channels + 3 * growth, growth, 3, 1, 1)
        self.conv5 = nn.Conv2d(in_channels + 4 * growth, out_channels, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            nn.init.xavier_normal_(conv.weight)
            with torch.no_grad():
                conv.weight.mul_(0.1)
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.conv5.weight)
        nn.init.zeros_(self.conv5.bias)

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        return self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
