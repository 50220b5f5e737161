"""T-IRN: IRN with Tri-Branch Invertible Blocks (Bao et al., *Plug-and-Play Tri-Branch Invertible Block
for Image Rescaling*, AAAI 2025), parameter for parameter the official ``TIRN_2`` and ``TIRN_4``
(repository ``Jingwei-Bao/T-InvBlocks``, ``codes/models/modules/inv_arch.py``), so that their state
dicts load with ``load_state_dict(strict=True)``.

A *stage* is one Haar level, then the colour conversion of its low-pass band to YCbCr, then the
tri-branch blocks (:class:`TriBranchInvBlock`), which work on the channel layout
``[Cb, Cr, high-pass bands..., Y]``: branch 1 the chroma (2 channels), branch 2 the high-pass bands
(the latent), branch 3 the luma (1 channel). x2 (``TIRN_2``, official ``down_num=1``) is one stage
(``haar_operations``, ``down_operations``: 3 blocks); x4 (``TIRN_4``) is two (``haar_operations``,
``down_operations``: 3 blocks on 12 channels, then ``haar_operations_2``, ``down_operations_2``: 4 blocks
on 48 channels). Between stages the layout goes back to ``[R, G, B, rest...]``.

The official model (``codes/models/model.py``, class ``TIRN``) downscales with ``net(hr)[1]`` (the LR in
RGB), quantised, and upscales with ``net(cat(lr, 0), rev=True)[1]``: z = 0, the only latent it was
trained with (so :meth:`TIRN.recommended_z` is "zero").

Quirks of the official code, reproduced because the weights were trained through them:

- the colour conversions are the JPEG (full-range BT.601) YCbCr matrices with offsets 0.5 for Cb and
  Cr, and the two directions are only approximately each other's inverse (their product differs from
  the identity by up to 6e-7);
- every conversion back to RGB clamps to [0, 1]: the LR of the forward pass, the RGB handed from stage 1
  to stage 2 in the x4 forward pass, and each RGB band before an inverse Haar level in the inverse pass.
  The flow is invertible only where these clamps do nothing (HR images in [0, 1] and an LR not pushed
  out of range);
- ``forward`` returns its first output in the blocks' layout ``[Cb, Cr, z..., Y]`` (unclamped), but the
  inverse takes ``[R, G, B, z...]``: the latent is the official output's channels 2:-1;
- the official ``jacobian`` counts only the blocks' ``s`` term (not ``t``) and ignores the colour
  conversions; it is never used to train. Here logdet is the true log|det J| per sample where no clamp
  acts: Haar levels, sum(s + t) of the blocks and the conversions' constant log|det| per pixel.

Nothing is stored on the modules (the official blocks keep ``s`` and ``t``).

State-dict keys::

    haar_operations.0.haar_weights                                  (12, 1, 2, 2)
    down_operations.N.{E,I,J}.conv1..conv5.{weight,bias}             DenseBlock 1 -> 2 / 9 / 9
    down_operations.N.{F,L}                                          DenseBlock 9 -> 2 / 1
    down_operations.N.{G,H}                                          DenseBlock 2 -> 9
    down_operations.N.K                                              DenseBlock 2 -> 1
    x4 only: haar_operations_2.0.haar_weights (48, 1, 2, 2) and down_operations_2.N.* on 48 channels
             (the 9 above become 45)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from irn.errors import InputError
from irn.nn.haar import HaarDownsampling
from irn.nn.network import Rescaler
from irn.nn.subnets import DenseBlock

__all__ = ["TIRN", "TIRNConfig", "TriBranchInvBlock", "rgb_to_ycbcr", "ycbcr_to_rgb"]

#: blocks per stage of the official models: x2 (``e_blocks`` 3), x4 (``e_blocks`` 3, ``v_blocks`` 4)
OFFICIAL_BLOCKS: dict[int, tuple[int, ...]] = {2: (3,), 4: (3, 4)}
#: the official names of each stage's Haar level and blocks
STAGE_NAMES: tuple[tuple[str, str], ...] = (
    ("haar_operations", "down_operations"),
    ("haar_operations_2", "down_operations_2"),
)

#: the official conversion matrices (rows: Y, Cb, Cr from R, G, B; R, G, B from Y, Cb - 0.5, Cr - 0.5)
RGB_TO_YCBCR: tuple[tuple[float, ...], ...] = (
    (0.299, 0.587, 0.114),
    (-0.168736, -0.331264, 0.5),
    (0.5, -0.418688, -0.081312),
)
YCBCR_TO_RGB: tuple[tuple[float, ...], ...] = ((1.0, 0.0, 1.402), (1.0, -0.344136, -0.714136), (1.0, 1.772, 0.0))


def _det3(m: tuple[tuple[float, ...], ...]) -> float:
    (a, b, c), (d, e, f), (g, h, i) = m
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


#: log|det| per pixel of the two conversions (their sum is 4e-8, not 0: they are not exact inverses)
LOGDET_TO_YCBCR: float = math.log(abs(_det3(RGB_TO_YCBCR)))
LOGDET_TO_RGB: float = math.log(abs(_det3(YCBCR_TO_RGB)))


def rgb_to_ycbcr(rgb: Tensor) -> Tensor:
    """(B, 3, H, W) RGB -> YCbCr, the official ``rgb_to_ycbcr`` (JPEG matrix, Cb and Cr offset by 0.5),
    computed in the same order so the values match to the last bit. No clamp."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 0.5
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 0.5
    return torch.stack((y, cb, cr), dim=1)


def ycbcr_to_rgb(ycbcr: Tensor) -> Tensor:
    """(B, 3, H, W) YCbCr -> RGB, the official ``ycbcr_to_rgb``, *clamped to [0, 1]* as the official
    function does (a quirk the weights were trained with)."""
    y, cb, cr = ycbcr[:, 0], ycbcr[:, 1] - 0.5, ycbcr[:, 2] - 0.5
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return torch.clamp(torch.stack((r, g, b), dim=1), 0.0, 1.0)


def to_block_layout(x: Tensor) -> Tensor:
    """``[R, G, B, rest...]`` -> ``[Cb, Cr, rest..., Y]``, the layout the tri-branch blocks work on."""
    ycbcr = rgb_to_ycbcr(x[:, :3])
    return torch.cat((ycbcr[:, 1:], x[:, 3:], ycbcr[:, :1]), 1)


def from_block_layout(x: Tensor) -> Tensor:
    """``[Cb, Cr, rest..., Y]`` -> ``[R, G, B, rest...]``, the RGB clamped to [0, 1] (official)."""
    x = torch.cat((x[:, -1:], x[:, :-1]), 1)
    return torch.cat((ycbcr_to_rgb(x[:, :3]), x[:, 3:]), 1)


def _colour_logdet(x: Tensor, per_pixel: float) -> Tensor:
    """(B,) log|det| of a per-pixel 3x3 colour conversion over ``x``'s H x W pixels."""
    return x.new_full((x.shape[0],), per_pixel * x.shape[-2] * x.shape[-1])


@dataclass(frozen=True)
class TIRNConfig:
    """Architecture of a :class:`TIRN`.

    ``scale`` 2 (the official ``TIRN_2``, one stage) or 4 (``TIRN_4``, two stages);
    ``blocks_per_stage`` one entry per stage (default: the official (3,) for x2, (3, 4) for x4);
    ``growth`` the dense blocks' width (32), ``clamp`` the log-scale bound (1). RGB only.
    """

    scale: int = 2
    blocks_per_stage: tuple[int, ...] = field(default=())
    growth: int = 32
    clamp: float = 1.0

    kind: ClassVar[str] = "tirn"
    in_channels: ClassVar[int] = 3
    lr_channels: ClassVar[int] = 3

    def __post_init__(self) -> None:
        if self.scale not in OFFICIAL_BLOCKS or isinstance(self.scale, bool):
            raise InputError(f"scale must be 2 or 4, got {self.scale!r}", param="scale")
        blocks = tuple(self.blocks_per_stage) or OFFICIAL_BLOCKS[self.scale]
        if len(blocks) != self.stages:
            raise InputError(
                f"blocks_per_stage needs {self.stages} entries for scale {self.scale}, got {len(blocks)}",
                param="blocks_per_stage",
            )
        if any(not isinstance(b, int) or isinstance(b, bool) or b < 0 for b in blocks):
            raise InputError(f"blocks_per_stage must be whole numbers >= 0, got {blocks}", param="blocks_per_stage")
        object.__setattr__(self, "blocks_per_stage", blocks)
        if not isinstance(self.growth, int) or isinstance(self.growth, bool) or self.growth < 1:
            raise InputError(f"growth must be a whole number of at least 1, got {self.growth!r}", param="growth")
        if not (isinstance(self.clamp, (int, float)) and math.isfinite(self.clamp) and self.clamp > 0):
            raise InputError(f"clamp must be a positive number, got {self.clamp!r}", param="clamp")

    @property
    def stages(self) -> int:
        """Stages (a Haar level and its blocks each): log2(scale)."""
        return int(math.log2(self.scale))

    @property
    def latent_channels(self) -> int:
        return self.in_channels * (self.scale**2 - 1)

    def to_dict(self) -> dict[str, object]:
        """The fields (``blocks_per_stage`` resolved, as a list) and ``kind`` "tirn"."""
        return {
            "kind": self.kind,
            "scale": self.scale,
            "blocks_per_stage": list(self.blocks_per_stage),
            "growth": self.growth,
            "clamp": self.clamp,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> TIRNConfig:
        """The inverse of :meth:`to_dict`; ``kind``, if present, must be "tirn"."""
        kwargs = dict(d)
        kind = kwargs.pop("kind", cls.kind)
        if kind != cls.kind:
            raise InputError(f"not a T-IRN config: kind {kind!r}", param="kind")
        unknown = set(kwargs) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown T-IRN config keys: {sorted(unknown)}")
        if "blocks_per_stage" in kwargs:
            kwargs["blocks_per_stage"] = tuple(kwargs["blocks_per_stage"])  # type: ignore[call-overload]
        return cls(**kwargs)  # type: ignore[arg-type]


class TriBranchInvBlock(nn.Module):
    """The tri-branch invertible block (the official ``threeCInvBlock``), (B, C, H, W) -> (B, C, H, W).

    x is split into x1 (the first ``split`` channels: Cb, Cr), x2 (the middle C - split - 1: the
    high-pass bands) and x3 (the last channel: Y). Forward, in the official order::

        y1 = x1 + E(x3) + F(x2)
        s  = clamp * (2 sigmoid(H(y1)) - 1)
        y3 = x3 + K(y1) + L(x2)
        t  = clamp * (2 sigmoid(J(y3)) - 1)
        y2 = x2 * exp(s + t) + G(y1) + I(y3)

    The inverse undoes it from y2 back to y1. log|det J| = sum(s + t) per sample (the official
    ``jacobian`` returns sum(s) only, summed over the batch and divided by B).
    """

    def __init__(self, channels: int, split: int = 2, clamp: float = 1.0, growth: int = 32) -> None:
        super().__init__()
        if not 0 < split < channels - 1:
            raise ValueError(f"split must be in (0, {channels - 1}), got {split}")
        self.split = split
        self.clamp = clamp
        n1, n2 = split, channels - split - 1
        # Attribute names E ... L (in this order) keep the official state-dict keys.
        self.E = DenseBlock(1, n1, growth)
        self.F = DenseBlock(n2, n1, growth)
        self.G = DenseBlock(n1, n2, growth)
        self.H = DenseBlock(n1, n2, growth)
        self.I = DenseBlock(1, n2, growth)
        self.J = DenseBlock(1, n2, growth)
        self.K = DenseBlock(n1, 1, growth)
        self.L = DenseBlock(n2, 1, growth)

    def _bounded(self, v: Tensor) -> Tensor:
        return self.clamp * (torch.sigmoid(v) * 2 - 1)

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        """Return ``(y, logdet)`` with logdet of shape (B,)."""
        x1, x2, x3 = x[:, : self.split], x[:, self.split : -1], x[:, -1:]
        if not rev:
            y1 = x1 + self.E(x3) + self.F(x2)
            s = self._bounded(self.H(y1))
            y3 = x3 + self.K(y1) + self.L(x2)
            t = self._bounded(self.J(y3))
            y2 = x2 * torch.exp(s + t) + self.G(y1) + self.I(y3)
            logdet = (s + t).flatten(1).sum(1)
        else:
            s = self._bounded(self.H(x1))
            t = self._bounded(self.J(x3))
            y2 = (x2 - self.G(x1) - self.I(x3)) / torch.exp(s + t)
            y3 = x3 - self.K(x1) - self.L(y2)
            y1 = x1 - self.F(y2) - self.E(y3)
            logdet = -(s + t).flatten(1).sum(1)
        return torch.cat((y1, y2, y3), 1), logdet


class TIRN(Rescaler):
    """T-IRN (the official ``TIRN_2`` for x2, ``TIRN_4`` for x4) with the image API of :class:`IRN`.

    ``forward(x, rev=False)``: (B, 3, H, W) -> ((B, 3 s^2, H/s, W/s), logdet (B,)) laid out as IRN's:
    the RGB LR (clamped to [0, 1], the official second output) in channels 0-2, the latent after it
    (the official first output's channels 2:-1). ``rev=True`` is the official inverse, which takes that
    layout and returns the HR image: an inverse wherever the official clamps do nothing (module
    docstring). :meth:`official_forward` returns the official outputs as they are. ``upscale`` uses
    z = 0 by default (the official decoding).
    """

    config: TIRNConfig
    default_z: ClassVar[Literal["sample", "zero"]] = "zero"

    def __init__(self, config: TIRNConfig | None = None, **kwargs: object) -> None:
        super().__init__()
        if config is None:
            config = TIRNConfig(**kwargs)  # type: ignore[arg-type]
        elif kwargs:
            raise InputError("pass either a TIRNConfig or keyword arguments, not both")
        self.config = config
        channels = config.in_channels
        split = config.lr_channels - 1  # Cb, Cr (official ``channel_out - 1``)
        names = STAGE_NAMES[: config.stages]
        for (haar_name, blocks_name), n_blocks in zip(names, config.blocks_per_stage, strict=True):
            setattr(self, haar_name, nn.ModuleList([HaarDownsampling(channels)]))
            channels *= 4
            blocks = (TriBranchInvBlock(channels, split, config.clamp, config.growth) for _ in range(n_blocks))
            setattr(self, blocks_name, nn.ModuleList(blocks))

    def stages(self) -> list[tuple[nn.ModuleList, nn.ModuleList]]:
        """(Haar levels, blocks) of each stage, first to last."""
        return [(getattr(self, h), getattr(self, b)) for h, b in STAGE_NAMES[: self.config.stages]]

    def official_forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """The official ``TIRN_2`` / ``TIRN_4`` ``forward``'s two outputs and the logdet.

        Forward: ``(out, lr, logdet)``: ``out`` (B, 3 s^2, H/s, W/s) in the blocks' layout
        ``[Cb, Cr, z..., Y]``, ``lr`` (B, 3, H/s, W/s) the RGB LR made from it (clamped to [0, 1]),
        logdet that of x -> out. Each stage: Haar level, to YCbCr layout, blocks; between stages back to
        RGB (clamped). Inverse (``x`` = ``[R, G, B, z...]``): ``(hr, hr[:, :3], logdet)``: to the blocks'
        layout, then per stage from the last: blocks reversed, back to RGB (clamped), Haar inverse, and
        to the blocks' layout again before the previous stage.
        """
        logdet = x.new_zeros(x.shape[0])
        stages = self.stages()
        if not rev:
            for n, (haars, blocks) in enumerate(stages):
                if n > 0:
                    logdet = logdet + _colour_logdet(x, LOGDET_TO_RGB)
                    x = from_block_layout(x)
                for haar in haars:
                    x, ld = haar(x)
                    logdet = logdet + ld
                logdet = logdet + _colour_logdet(x, LOGDET_TO_YCBCR)
                x = to_block_layout(x)
                for block in blocks:
                    x, ld = block(x)
                    logdet = logdet + ld
            return x, from_block_layout(x)[:, :3], logdet
        logdet = logdet + _colour_logdet(x, LOGDET_TO_YCBCR)
        x = to_block_layout(x)
        for n, (haars, blocks) in enumerate(reversed(stages)):
            if n > 0:
                logdet = logdet + _colour_logdet(x, LOGDET_TO_YCBCR)
                x = to_block_layout(x)
            for block in reversed(blocks):
                x, ld = block(x, rev=True)
                logdet = logdet + ld
            logdet = logdet + _colour_logdet(x, LOGDET_TO_RGB)
            x = from_block_layout(x)
            for haar in reversed(haars):
                x, ld = haar(x, rev=True)
                logdet = logdet + ld
        return x, x[:, :3], logdet

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        """The raw flow ``(y, logdet)`` in IRN's layout (class docstring), logdet (B,)."""
        if rev:
            hr, _, logdet = self.official_forward(x, rev=True)
            return hr, logdet
        out, lr, logdet = self.official_forward(x)
        logdet = logdet + _colour_logdet(out, LOGDET_TO_RGB)  # the LR's conversion back to RGB
        return torch.cat((lr, out[:, 2:-1]), 1), logdet

    def extra_repr(self) -> str:
        return f"scale={self.scale}, blocks_per_stage={list(self.config.blocks_per_stage)}"
