"""The compression restoration module (CRM) of the official IRN-Compression: an RRDB network
(ESRGAN's residual-in-residual dense blocks) at the LR's own resolution, which restores a
JPEG-decoded LR image before the IRN's inverse pass.

:class:`CompressionRestorer` keeps the official state-dict keys (``conv_first``,
``RRDB_trunk.N.RDBk.convj``, ``trunk_conv``, ``conv_last``), so an official CRM file loads as is
(:func:`irn.zoo.load`). ``module(x) -> restored``: (B, 3, h, w) in [0, 1] in and out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from irn.errors import InputError


@dataclass(frozen=True)
class RestorerConfig:
    """The RRDB network's size (official CRM: in 3, out 3, nf 64, nb 8, gc 32)."""

    in_channels: int = 3
    out_channels: int = 3
    features: int = 64
    blocks: int = 8
    growth: int = 32

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"{name} must be a whole number of at least 1, got {value!r}", param=name)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> RestorerConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown restorer config keys: {sorted(unknown)}")
        return cls(**d)  # type: ignore[arg-type]


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convolutions, each seeing the input and every earlier output; x + 0.2 * the last."""

    def __init__(self, features: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, growth, 3, 1, 1)
        self.conv2 = nn.Conv2d(features + growth, growth, 3, 1, 1)
        self.conv3 = nn.Conv2d(features + 2 * growth, growth, 3, 1, 1)
        self.conv4 = nn.Conv2d(features + 3 * growth, growth, 3, 1, 1)
        self.conv5 = nn.Conv2d(features + 4 * growth, features, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(self.lrelu(conv(torch.cat(feats, 1))))
        return x + 0.2 * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    """Three residual dense blocks in a row, inside one more residual connection (x 0.2)."""

    def __init__(self, features: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.RDB1 = ResidualDenseBlock(features, growth)
        self.RDB2 = ResidualDenseBlock(features, growth)
        self.RDB3 = ResidualDenseBlock(features, growth)

    def forward(self, x: Tensor) -> Tensor:
        return x + 0.2 * self.RDB3(self.RDB2(self.RDB1(x)))


class CompressionRestorer(nn.Module):
    """The CRM: conv_first -> ``blocks`` RRDBs -> trunk_conv (+ the first features) -> conv_last."""

    def __init__(self, config: RestorerConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or RestorerConfig()
        nf = config.features
        self.conv_first = nn.Conv2d(config.in_channels, nf, 3, 1, 1)
        self.RRDB_trunk = nn.Sequential(*(RRDB(nf, config.growth) for _ in range(config.blocks)))
        self.trunk_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, config.out_channels, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, in_channels, h, w) -> (B, out_channels, h, w)."""
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise InputError(f"expected an image batch (B, {self.config.in_channels}, h, w), got {tuple(x.shape)}")
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.RRDB_trunk(fea))
        return self.conv_last(fea)

    @torch.no_grad()
    def identity_start(self) -> CompressionRestorer:
        """Set the weights so that the module returns its input exactly (for training from a trained IRN).

        The official CRM has no image-level skip, so from a random start its output is far from the
        LR and a trained IRN's reconstruction collapses until it learns the identity. Here
        ``conv_first`` copies the image into its first ``out_channels`` features (centre taps 1; the
        other features keep ESRGAN's scaled Kaiming start, x0.1), ``trunk_conv`` starts at zero (the RRDB
        trunk adds nothing yet; its own weights keep the scaled start) and ``conv_last`` reads those
        features back. Every weight still receives gradients: the trunk joins once ``trunk_conv`` moves.
        Needs ``in_channels >= out_channels`` (the official 3 -> 3).
        """
        cfg = self.config
        if cfg.in_channels < cfg.out_channels or cfg.features < cfg.out_channels:
            raise InputError(
                f"an identity start needs in_channels ({cfg.in_channels}) and features ({cfg.features}) of at "
                f"least out_channels ({cfg.out_channels})"
            )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
                module.weight.mul_(0.1)
                nn.init.zeros_(module.bias)
        copy = torch.arange(cfg.out_channels)
        self.conv_first.weight[copy] = 0.0
        self.conv_first.weight[copy, copy, 1, 1] = 1.0
        nn.init.zeros_(self.trunk_conv.weight)
        self.conv_last.weight.zero_()
        self.conv_last.weight[copy, copy, 1, 1] = 1.0
        return self

    @property
    def receptive_radius(self) -> int:
        """How far (LR pixels, each side) an output pixel sees: one per 3x3 convolution (conv_first,
        15 per RRDB, trunk_conv, conv_last). Tiles with this much context give the untiled result."""
        return 3 + 15 * self.config.blocks

    def restore(self, lr: Tensor) -> Tensor:
        """A decoded JPEG LR (B, 3, h, w) in [0, 1] -> the restored LR, clamped to [0, 1]."""
        return self(lr).clamp(0, 1)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
