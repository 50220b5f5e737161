"""SAIN, the Self-Asymmetric Invertible Network (Yang et al., *Self-Asymmetric Invertible Network for
Compression-Aware Image Rescaling*, AAAI 2023), parameter for parameter the official ``SAINet``
(repository ``yang-jin-hai/SAIN``, ``codes/models/modules/inv_arch.py``), so that its state dicts load
with ``load_state_dict(strict=True)``.

The network (:class:`SAIN`), for scale s = 2^L:

- ``haar_operations``: L :class:`~irn.nn.haar.HaarDownsampling` levels, 3 -> 3 * 4^L channels;
- ``down_operations``: the E-InvBlocks (:class:`EInvBlock`, "enhanced"): couplings that split after
  3 channels and, on the way, yield the high-quality LR image;
- ``comp_operations``: the V-InvBlocks (:class:`VInvBlock`, "vanilla": IRN's affine coupling), which
  map on to the output whose first 3 channels model the *compressed* LR;
- ``gmm``: a :class:`GaussianMixture`, the learnt distribution of the latent.

The official model (``codes/models/model.py``) downscales with ``LR = net(hr)[1]`` (the LR the last
E-block computed, not the first channels of the output), quantised to 8 bits, and upscales with
``net(cat(lr, gmm.sample(z_shape)), rev=True)[0][:, :3]``. :meth:`SAIN.encode` returns that LR and the
output's channels 3: as z, :meth:`SAIN.decode` is that inverse, and ``z="sample"`` draws from the
mixture. Because the LR of the E-block is not the output's first channels (they differ by what the
V-blocks do), ``decode(*encode(x))`` is close to x only as far as the trained V-blocks make them agree;
``forward(x, rev=True)`` is the exact inverse of ``forward(x)``.

The official blocks keep ``self.s`` and ``self.LR`` on the module between calls and compute the
Jacobian afterwards (summed over the batch, divided by B); here nothing is stored: every block returns
``(y, logdet)`` with logdet per sample (B,), and the E-block's LR comes back from
:meth:`EInvBlock.forward_with_lr`.

State-dict keys (x2: 1 Haar level, 5 E-blocks, 3 V-blocks, 5 components)::

    haar_operations.0.haar_weights                     (12, 1, 2, 2)   [x4: also .1 (48, 1, 2, 2)]
    down_operations.N.{E,F}.conv1..conv5.{weight,bias}  DenseBlock 9 -> 3   [x4: 45 -> 3]
    down_operations.N.{G,H}.conv1..conv5.{weight,bias}  DenseBlock 3 -> 9   [x4: 3 -> 45]
    comp_operations.N.F / .G / .H ...                   as the E-block without E
    gmm.gmm_para                                        (3, K)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from irn.errors import InputError
from irn.nn.coupling import AffineCoupling
from irn.nn.haar import HaarDownsampling
from irn.nn.network import Rescaler
from irn.nn.subnets import DenseBlock

__all__ = ["SAIN", "EInvBlock", "GaussianMixture", "SAINConfig", "VInvBlock"]

#: (E-blocks, V-blocks) of the official models: x2 (JPEG and WebP) and x4 (JPEG)
OFFICIAL_BLOCKS: dict[int, tuple[int, int]] = {2: (5, 3), 4: (10, 6)}
#: the official Gaussian mixture clamps the log-variances to this range before taking exp
LOGVAR_RANGE: tuple[float, float] = (-20.0, 20.0)


def _whole(value: object, name: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{name} must be a whole number of at least {minimum}, got {value!r}", param=name)
    return value


@dataclass(frozen=True)
class SAINConfig:
    """Architecture of a :class:`SAIN`.

    ``scale`` 2, 4 or 8 (1, 2, 3 Haar levels; the official models are x2 and x4). ``e_blocks`` and
    ``v_blocks`` (``None``: the official 5 and 3 for x2, 10 and 6 for x4, 5 and 3 per level beyond),
    ``gmm_components`` (5 in every official model), ``growth`` (the dense blocks' width, 32) and
    ``clamp`` (the couplings' log-scale bound, 1). RGB in, RGB LR out: 3 channels.
    """

    scale: int = 2
    e_blocks: int | None = None
    v_blocks: int | None = None
    gmm_components: int = 5
    growth: int = 32
    clamp: float = 1.0

    kind: ClassVar[str] = "sain"
    in_channels: ClassVar[int] = 3
    lr_channels: ClassVar[int] = 3

    def __post_init__(self) -> None:
        if self.scale not in (2, 4, 8) or isinstance(self.scale, bool):
            raise InputError(f"scale must be 2, 4 or 8, got {self.scale!r}", param="scale")
        e_default, v_default = OFFICIAL_BLOCKS.get(self.scale, (5 * self.levels, 3 * self.levels))
        e = e_default if self.e_blocks is None else _whole(self.e_blocks, "e_blocks", 1)  # the LR comes from one
        v = v_default if self.v_blocks is None else _whole(self.v_blocks, "v_blocks", 0)
        object.__setattr__(self, "e_blocks", e)
        object.__setattr__(self, "v_blocks", v)
        _whole(self.gmm_components, "gmm_components", 1)
        _whole(self.growth, "growth", 1)
        if not (isinstance(self.clamp, (int, float)) and math.isfinite(self.clamp) and self.clamp > 0):
            raise InputError(f"clamp must be a positive number, got {self.clamp!r}", param="clamp")

    @property
    def levels(self) -> int:
        """Haar levels: log2(scale)."""
        return int(math.log2(self.scale))

    @property
    def channels(self) -> int:
        """Channels after the Haar levels, where the couplings work: 3 * 4^levels."""
        return self.in_channels * 4**self.levels

    @property
    def latent_channels(self) -> int:
        return self.in_channels * (self.scale**2 - 1)

    def to_dict(self) -> dict[str, object]:
        """The fields (``e_blocks`` and ``v_blocks`` resolved) and ``kind`` "sain"."""
        return {"kind": self.kind, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> SAINConfig:
        """The inverse of :meth:`to_dict`; ``kind``, if present, must be "sain"."""
        kwargs = dict(d)
        kind = kwargs.pop("kind", cls.kind)
        if kind != cls.kind:
            raise InputError(f"not a SAIN config: kind {kind!r}", param="kind")
        unknown = set(kwargs) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown SAIN config keys: {sorted(unknown)}")
        return cls(**kwargs)  # type: ignore[arg-type]


class EInvBlock(AffineCoupling):
    """SAIN's Enhanced Invertible Block (the official ``EnhancedInvBlock``), (B, C, H, W) -> (B, C, H, W).

    With x split into x1 (the first ``split`` channels) and x2 (the rest), the official forward::

        LR = x1 + E(x2)
        y1 = LR - F(x2)
        s  = clamp * (2 sigmoid(H(y1)) - 1)
        y2 = x2 * exp(s) + G(y1)

    and inverse (LR is again x1 + E(x2) of the forward, up to rounding)::

        s  = clamp * (2 sigmoid(H(y1)) - 1)
        x2 = (y2 - G(y1)) / exp(s)
        LR = y1 + F(x2)
        x1 = LR - E(x2)

    log|det J| = sum(s) per sample (forward), -sum(s) (inverse). The official block stores ``s`` and
    ``LR`` on itself; :meth:`forward_with_lr` returns the LR instead.
    """

    def __init__(self, channels: int, split: int = 3, clamp: float = 1.0, growth: int = 32) -> None:
        # F, G, H and the log-scale are the coupling's (:class:`~irn.nn.coupling.AffineCoupling`); E is
        # the extra subnet of the enhanced block. The attribute names keep the official state-dict keys.
        super().__init__(channels, split, clamp, growth)
        self.E = DenseBlock(channels - split, split, growth)

    def forward_with_lr(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """``(y, lr, logdet)``: the block's output, the LR it computes on the way (B, split, H, W) and
        log|det J| per sample (B,)."""
        x1, x2 = x[:, : self.split], x[:, self.split :]
        if not rev:
            lr = x1 + self.E(x2)
            y1 = lr - self.F(x2)
            s = self.log_scale(y1)
            y2 = x2 * torch.exp(s) + self.G(y1)
            logdet = s.flatten(1).sum(1)
        else:
            s = self.log_scale(x1)
            y2 = (x2 - self.G(x1)) / torch.exp(s)
            lr = x1 + self.F(y2)
            y1 = lr - self.E(y2)
            logdet = -s.flatten(1).sum(1)
        return torch.cat((y1, y2), 1), lr, logdet

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        """Return ``(y, logdet)`` with logdet of shape (B,)."""
        y, _, logdet = self.forward_with_lr(x, rev)
        return y, logdet


class VInvBlock(AffineCoupling):
    """SAIN's Vanilla Invertible Block (the official ``VanillaInvBlock``): IRN's affine coupling
    (``InvBlockExp``) unchanged, subnets F, G, H, split after ``split`` channels::

        y1 = x1 + F(x2);  s = clamp * (2 sigmoid(H(y1)) - 1);  y2 = x2 * exp(s) + G(y1)
    """


class GaussianMixture(nn.Module):
    """SAIN's latent distribution (the official ``GaussianMixture``): every latent element is drawn
    independently from a K-component 1-D Gaussian mixture.

    ``gmm_para`` (3, K), the one parameter (the official name and layout): row 0 the mixture logits
    (weights = softmax), row 1 the means, row 2 the log-variances, clamped to [-20, 20] before use as the
    official code does. Initialised as the official code, N(0, 1e-4^2).
    """

    def __init__(self, components: int = 5) -> None:
        super().__init__()
        self.gmm_para = nn.Parameter(1e-4 * torch.randn(3, components))

    @property
    def components(self) -> int:
        return int(self.gmm_para.shape[1])

    def weights(self) -> Tensor:
        """(K,) the mixture weights: softmax of the logits."""
        return self.gmm_para[0].softmax(dim=0)

    def means(self) -> Tensor:
        """(K,) the components' means."""
        return self.gmm_para[1]

    def log_variances(self) -> Tensor:
        """(K,) the components' log-variances, clamped to [-20, 20] (official)."""
        return self.gmm_para[2].clamp(*LOGVAR_RANGE)

    def stds(self) -> Tensor:
        """(K,) the components' standard deviations, exp(log-variance / 2)."""
        return torch.exp(0.5 * self.log_variances())

    def sample(self, shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None = None) -> Tensor:
        """``shape`` independent draws from the mixture, on ``gmm_para``'s device and dtype.

        Per element, a component k with probability weights[k] (inverse CDF of one uniform draw),
        then mean[k] + std[k] * N(0, 1). The official code draws the same distribution through a
        hard Gumbel-softmax over all K components' samples; here the means and standard deviations get
        gradients (reparameterised), the weights none. ``generator`` (on that device) makes it
        reproducible; without it the global generator is used.
        """
        p = self.gmm_para
        u = torch.rand(tuple(shape), generator=generator, device=p.device, dtype=p.dtype)
        eps = torch.randn(tuple(shape), generator=generator, device=p.device, dtype=p.dtype)
        cdf = self.weights().cumsum(0)
        k = torch.searchsorted(cdf.detach().contiguous(), u.flatten(), right=True).clamp_max(self.components - 1)
        k = k.reshape(u.shape)
        return self.means()[k] + self.stds()[k] * eps

    def extra_repr(self) -> str:
        return f"components={self.components}"


class SAIN(Rescaler):
    """The Self-Asymmetric Invertible Network (official ``SAINet``) with the image API of :class:`IRN`.

    ``forward(x, rev=False)``: (B, 3, H, W) -> ((B, 3 s^2, H/s, W/s), logdet (B,)), the official
    network's whole output (first output of ``SAINet.forward``); ``rev=True`` is its exact inverse.
    :meth:`official_forward` also returns the official second output, the LR of the last E-block.
    :meth:`encode` is (that LR, output channels 3:), :meth:`decode` the official inverse of
    ``cat(lr, z)`` cut to 3 channels, and ``z="sample"`` (the default) draws z from the learnt
    mixture, times ``temperature`` (the official ``gaussian_scale``).
    """

    config: SAINConfig
    default_z: ClassVar[Literal["sample", "zero"]] = "sample"

    def __init__(self, config: SAINConfig | None = None, **kwargs: object) -> None:
        super().__init__()
        if config is None:
            config = SAINConfig(**kwargs)  # type: ignore[arg-type]
        elif kwargs:
            raise InputError("pass either a SAINConfig or keyword arguments, not both")
        self.config = config
        split, channels = config.lr_channels, config.channels
        self.haar_operations = nn.ModuleList(
            HaarDownsampling(config.in_channels * 4**level) for level in range(config.levels)
        )
        self.down_operations = nn.ModuleList(
            EInvBlock(channels, split, config.clamp, config.growth) for _ in range(config.e_blocks or 0)
        )
        self.comp_operations = nn.ModuleList(
            VInvBlock(channels, split, config.clamp, config.growth) for _ in range(config.v_blocks or 0)
        )
        self.gmm = GaussianMixture(config.gmm_components)

    def official_forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """The official ``SAINet.forward``'s two outputs and the logdet: ``(out, lr, logdet)``.

        Forward: Haar levels, E-blocks, V-blocks; ``lr`` (B, 3, H/s, W/s) is the LR the last E-block
        computed. Inverse (``x`` (B, 3 s^2, h, w)): V-blocks, E-blocks, Haar levels, all reversed, ``out``
        (B, 3, s h, s w); ``lr`` is what the last E-block (the first to run) computes as its LR.
        """
        logdet = x.new_zeros(x.shape[0])
        lr: Tensor | None = None
        if not rev:
            for haar in self.haar_operations:
                x, ld = haar(x)
                logdet = logdet + ld
            for block in self.down_operations:
                x, lr, ld = block.forward_with_lr(x)
                logdet = logdet + ld
            for block in self.comp_operations:
                x, ld = block(x)
                logdet = logdet + ld
        else:
            for block in reversed(self.comp_operations):
                x, ld = block(x, rev=True)
                logdet = logdet + ld
            for n, block in enumerate(reversed(self.down_operations)):
                x, block_lr, ld = block.forward_with_lr(x, rev=True)
                lr = block_lr if n == 0 else lr
                logdet = logdet + ld
            for haar in reversed(self.haar_operations):
                x, ld = haar(x, rev=True)
                logdet = logdet + ld
        assert lr is not None  # e_blocks >= 1 (SAINConfig)
        return x, lr, logdet

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        """The raw flow ``(y, logdet)``, logdet (B,); see :meth:`official_forward`."""
        out, _, logdet = self.official_forward(x, rev)
        return out, logdet

    def _encode_padded(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The official downscaling: the last E-block's LR; z: the output's channels 3:."""
        out, lr, _ = self.official_forward(x)
        return lr, out[:, self.lr_channels :]

    def _draw_latent(
        self, shape: tuple[int, ...], temperature: float, generator: torch.Generator | None, like: Tensor
    ) -> Tensor:
        """Draws from the Gaussian mixture, times ``temperature`` (the official ``gaussian_scale``)."""
        return self.gmm.sample(shape, generator).to(like) * temperature

    def latent_distribution(self) -> dict[str, Any]:
        """The Gaussian mixture :meth:`_draw_latent` draws from: per element a component k with
        probability ``weights[k]``, then ``means[k] + stds[k] * N(0, 1)``; float64 decimals."""
        gmm = self.gmm
        parts = {"weights": gmm.weights(), "means": gmm.means(), "stds": gmm.stds()}
        return {"distribution": "gaussian_mixture", **{k: t.detach().double().tolist() for k, t in parts.items()}}

    def extra_repr(self) -> str:
        c = self.config
        return f"scale={c.scale}, e_blocks={c.e_blocks}, v_blocks={c.v_blocks}, gmm_components={c.gmm_components}"
