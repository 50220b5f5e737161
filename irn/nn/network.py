"""The Invertible Rescaling Network (IRN paper, Fig. 2) and the API every tool uses.

``IRN`` stacks, per Haar level, one :class:`HaarDownsampling` and ``blocks_per_level``
:class:`AffineCoupling` blocks, in one ``operations`` list whose state-dict keys are those
of the official code. Two more members of the official family share the class and its API
(``IRNConfig.kind``): ``"conv"``, the x3 model's one learnable :class:`ConvDownsampling` in place of
the Haar levels, and ``"color"``, IRN-Color's invertible decolorization (:class:`IRNColor`: a
learnable :class:`ColorTransform`, then couplings that split 1 / 2; "LR" is the grey image, scale 1).
The forward map of the Haar IRN sends an HR image (B, 3, H, W) to
(B, 3 * s^2, H/s, W/s): channels 0-2 are the LR image, the rest the latent z
(official channel order).

Sizes that are not multiples of the scale are reflect-padded at the bottom and right
to the next multiple before the forward pass, so the LR has ceil(H/s) x ceil(W/s)
pixels; :meth:`IRN.upscale` and :meth:`IRN.decode` crop back when given ``size``.

The image API (``encode``, ``decode``, ``downscale``, ``sample_latent``, ``upscale``, ``roundtrip``,
the padding and the checks) lives in :class:`Rescaler`, the base class of every invertible rescaler
of the package: :class:`IRN` here, :class:`irn.nn.sain.SAIN` and :class:`irn.nn.tirn.TIRN`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from irn.errors import InputError
from irn.nn.coupling import AffineCoupling
from irn.nn.haar import HaarDownsampling
from irn.nn.linear import ColorTransform, ConvDownsampling

ZMode = Literal["sample", "zero", "auto"]
Kind = Literal["haar", "conv", "color"]
KINDS: tuple[str, ...] = ("haar", "conv", "color")


@dataclass(frozen=True)
class IRNConfig:
    """Architecture of an IRN.

    ``kind="haar"`` (the paper's IRN): ``scale`` 2, 4 or 8 (1, 2, 3 Haar levels). ``kind="conv"``
    (the official x3): one learnable downsampling by any integer ``scale`` >= 2, one entry in
    ``blocks_per_level``. ``kind="color"`` (IRN-Color): ``scale`` 1, a learnable colour transform
    and one stage of couplings; the "LR" is the 1-channel grey image.
    """

    scale: int = 4
    blocks_per_level: tuple[int, ...] = field(default=())
    in_channels: int = 3
    growth: int = 32
    clamp: float = 1.0
    kind: Kind = "haar"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}", param="kind")
        if self.kind == "haar" and self.scale not in (2, 4, 8):
            raise InputError(f"scale must be 2, 4 or 8, got {self.scale}", param="scale")
        if self.kind == "conv" and not (isinstance(self.scale, int) and self.scale >= 2):
            raise InputError(f"scale must be an integer >= 2 for kind 'conv', got {self.scale}", param="scale")
        if self.kind == "color" and (self.scale != 1 or self.in_channels != 3):
            raise InputError(
                f"kind 'color' maps RGB to grey: scale 1 and in_channels 3, got {self.scale} and {self.in_channels}",
                param="scale",
            )
        blocks = tuple(int(b) for b in self.blocks_per_level) or (8,) * self.levels
        if len(blocks) != self.levels:
            raise InputError(
                f"blocks_per_level needs {self.levels} entries for scale {self.scale}, got {len(blocks)}",
                param="blocks_per_level",
            )
        if any(b < 0 for b in blocks):
            raise InputError(f"blocks_per_level must be non-negative, got {blocks}", param="blocks_per_level")
        if not isinstance(self.growth, int) or isinstance(self.growth, bool) or self.growth < 1:
            raise InputError(f"growth must be a whole number of at least 1, got {self.growth!r}", param="growth")
        if not (isinstance(self.clamp, (int, float)) and math.isfinite(self.clamp) and self.clamp > 0):
            raise InputError(f"clamp must be a positive number, got {self.clamp!r}", param="clamp")
        object.__setattr__(self, "blocks_per_level", blocks)

    @property
    def levels(self) -> int:
        """Stages of couplings: one per Haar level, one for the other kinds."""
        return int(math.log2(self.scale)) if self.kind == "haar" else 1

    @property
    def lr_channels(self) -> int:
        """Channels of the LR output (the grey image of a colour model: 1)."""
        return 1 if self.kind == "color" else self.in_channels

    @property
    def latent_channels(self) -> int:
        if self.kind == "color":
            return self.in_channels - 1
        return self.in_channels * (self.scale**2 - 1)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["blocks_per_level"] = list(self.blocks_per_level)
        if self.kind == "haar":  # the files written before other kinds existed, unchanged
            del d["kind"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> IRNConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown IRN config keys: {sorted(unknown)}")
        kwargs = dict(d)
        if "blocks_per_level" in kwargs:
            kwargs["blocks_per_level"] = tuple(kwargs["blocks_per_level"])  # type: ignore[arg-type]
        return cls(**kwargs)  # type: ignore[arg-type]


def quantize(x: Tensor) -> Tensor:
    """Clamp to [0, 1] and round to 8-bit levels (what a PNG stores). No gradient trick."""
    return torch.round(x.clamp(0, 1) * 255) / 255


def check_decode_inputs(lr: Tensor, z: Tensor, size: tuple[int, int] | None, scale: int, latent_channels: int) -> None:
    """Raises :class:`InputError` unless z (B, latent_channels, h, w) fits lr (B, C, h, w) and ``size``
    crops the (s h, s w) output (never enlarges or empties it)."""
    if lr.shape[0] != z.shape[0] or lr.shape[-2:] != z.shape[-2:] or z.shape[1] != latent_channels:
        raise InputError(
            f"lr {tuple(lr.shape)} and z {tuple(z.shape)} do not fit: z needs "
            f"{latent_channels} channels and the same batch and size as lr"
        )
    full = (lr.shape[-2] * scale, lr.shape[-1] * scale)
    if size is not None and not (0 < size[0] <= full[0] and 0 < size[1] <= full[1]):
        raise InputError(
            f"size {tuple(size)}: the output can be cropped to at most {full} (the LR {tuple(lr.shape[-2:])} "
            f"times {scale}), not enlarged or emptied"
        )


class Rescaler(nn.Module):
    """The image API every invertible rescaler shares (:class:`IRN`, SAIN, T-IRN).

    A subclass sets ``config`` in its constructor (an object with ``scale``, ``kind``, ``in_channels``,
    ``lr_channels`` and ``latent_channels``) and implements ``forward(x, rev=False) -> (y, logdet)``,
    its raw flow: the HR image (B, in_channels, H, W) with H, W multiples of the scale to
    (B, lr_channels + latent_channels, H/s, W/s), logdet of shape (B,); ``rev=True`` takes the
    concatenation of an LR and a latent and returns the HR image in its first ``in_channels``
    channels. Three hooks say where a network differs from IRN:

    - :meth:`_encode_padded`: the (lr, z) of a padded image; by default the forward output split after
      ``lr_channels`` channels (SAIN takes its LR from inside the flow instead);
    - :meth:`_draw_latent`: a random latent; by default N(0, temperature^2) (SAIN draws from its
      Gaussian mixture), and :meth:`latent_distribution`, which says so in numbers;
    - ``default_z``: what :meth:`recommended_z` answers when the loaded file says nothing ("sample";
      T-IRN, trained with z = 0 only: "zero").

    Values are in [0, 1]. Sizes that are not multiples of the scale are padded at the bottom and
    right (:meth:`_pad`) and cropped back by ``size``.
    """

    config: Any
    default_z: ClassVar[Literal["sample", "zero"]] = "sample"

    @property
    def scale(self) -> int:
        return self.config.scale  # type: ignore[no-any-return]

    @property
    def kind(self) -> str:
        return self.config.kind  # type: ignore[no-any-return]

    @property
    def lr_channels(self) -> int:
        return self.config.lr_channels  # type: ignore[no-any-return]

    @property
    def latent_channels(self) -> int:
        return self.config.latent_channels  # type: ignore[no-any-return]

    # ---------------------------------------------------------------- hooks
    def _encode_padded(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(lr, z) of ``x`` (B, in_channels, H, W), H and W multiples of the scale: the forward output
        split after ``lr_channels`` channels."""
        out, _ = self(x)
        c = self.lr_channels
        return out[:, :c], out[:, c:]

    def _draw_latent(
        self, shape: tuple[int, ...], temperature: float, generator: torch.Generator | None, like: Tensor
    ) -> Tensor:
        """A random latent of ``shape`` on ``like``'s device and dtype: N(0, temperature^2) draws."""
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype) * temperature

    def latent_distribution(self) -> dict[str, Any]:
        """What :meth:`_draw_latent` draws from, before the temperature, as plain numbers (the ONNX
        export's ``model.json`` and ``irn decay`` read it): ``{"distribution": "normal"}``, N(0, 1) per
        element; a network that draws otherwise overrides both (SAIN: its Gaussian mixture)."""
        return {"distribution": "normal"}

    # ---------------------------------------------------------------- image API
    def _check_dtype(self, name: str, x: Tensor) -> None:
        """Pixels are floats of the model's dtype: 8-bit integers would be read as values far above 1."""
        dtype = next(self.parameters()).dtype
        if not x.is_floating_point():
            raise InputError(f"{name} must be a {dtype} tensor in [0, 1], got {x.dtype} (8-bit pixels: divide by 255)")
        if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):  # autocast mixes dtypes on purpose
            raise InputError(f"{name} is {x.dtype} but the model is {dtype}: convert it with .to({dtype})")

    def _pad(self, hr: Tensor) -> Tensor:
        if hr.dim() != 4 or hr.shape[1] != self.config.in_channels:
            raise InputError(
                f"expected an image batch (B, {self.config.in_channels}, H, W), got shape {tuple(hr.shape)}"
            )
        self._check_dtype("the image", hr)
        s = self.scale
        h, w = hr.shape[-2:]
        ph, pw = (-h) % s, (-w) % s
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            hr = F.pad(hr, (0, pw, 0, ph), mode=mode)
        return hr

    def encode(self, hr: Tensor) -> tuple[Tensor, Tensor]:
        """Forward pass without quantisation.

        hr (B, 3, H, W) in [0, 1] -> lr (B, 3, ceil(H/s), ceil(W/s)) and
        z (B, 3(s^2-1), ceil(H/s), ceil(W/s)).
        """
        return self._encode_padded(self._pad(hr))

    def decode(self, lr: Tensor, z: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """Inverse of :meth:`encode` (exact for IRN): (lr, z) -> hr (B, 3, s h, s w), cropped to ``size``."""
        check_decode_inputs(lr, z, size, self.scale, self.latent_channels)
        self._check_dtype("lr", lr)
        self._check_dtype("z", z)
        hr, _ = self(torch.cat((lr, z), 1), rev=True)
        hr = hr[:, : self.config.in_channels]
        if size is not None:
            hr = hr[..., : size[0], : size[1]]
        return hr

    def downscale(self, hr: Tensor) -> Tensor:
        """hr (B, 3, H, W) in [0, 1] -> quantised lr (B, 3, ceil(H/s), ceil(W/s)) on 8-bit levels."""
        lr, _ = self.encode(hr)
        return quantize(lr)

    def sample_latent(
        self,
        lr: Tensor,
        z: ZMode | Tensor = "auto",
        temperature: float = 1.0,
        seed: int | None = None,
    ) -> Tensor:
        """The latent used by :meth:`upscale`: random draws (N(0, temperature^2) unless the network
        says otherwise, see :meth:`_draw_latent`), zeros, or ``z`` itself; ``"auto"`` is
        :meth:`recommended_z`."""
        if isinstance(z, str) and z == "auto":
            z = self.recommended_z()
        shape = (lr.shape[0], self.latent_channels, *lr.shape[-2:])
        if isinstance(z, Tensor):
            if tuple(z.shape) != shape:
                raise InputError(f"z must have shape {shape}, got {tuple(z.shape)}", param="z")
            return z.to(lr)
        if z == "zero":
            return lr.new_zeros(shape)
        if z == "sample":
            if not (math.isfinite(temperature) and temperature >= 0):
                raise InputError(f"temperature must be a finite number >= 0, got {temperature}", param="temperature")
            if seed is not None and not (isinstance(seed, int) and 0 <= seed < 2**63):
                raise InputError(f"seed must be an integer in [0, 2^63), got {seed!r}", param="seed")
            gen = None
            if seed is not None:
                gen = torch.Generator(device=lr.device).manual_seed(seed)
            return self._draw_latent(shape, temperature, gen, lr)
        raise InputError(f"z must be 'sample', 'zero', 'auto' or a tensor, got {z!r}", param="z")

    def recommended_z(self) -> Literal["sample", "zero"]:
        """The latent this model decodes best with: ``metadata["recommended_z"]`` of a loaded file
        (``irn export`` writes "zero" for a model trained with z = 0 only), else ``default_z``
        ("sample" for IRN, the paper's choice)."""
        value = (getattr(self, "metadata", None) or {}).get("recommended_z")
        if value in ("sample", "zero"):
            return value  # type: ignore[no-any-return]
        return self.default_z

    def upscale(
        self,
        lr: Tensor,
        *,
        z: ZMode | Tensor = "auto",
        temperature: float = 1.0,
        seed: int | None = None,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """lr (B, 3, h, w) in [0, 1] -> hr (B, 3, s h, s w) clamped to [0, 1], cropped to ``size``.

        ``z="sample"`` draws the latent (N(0, temperature^2) for IRN; reproducible with ``seed``),
        ``z="zero"`` uses zeros, a tensor is used as given; ``"auto"`` (default) is
        :meth:`recommended_z`: the model's default unless the loaded file recommends otherwise.
        """
        if lr.dim() != 4 or lr.shape[1] != self.lr_channels:
            raise InputError(f"expected an LR batch (B, {self.lr_channels}, h, w), got shape {tuple(lr.shape)}")
        self._check_dtype("lr", lr)
        latent = self.sample_latent(lr, z, temperature, seed)
        return self.decode(lr, latent, size).clamp(0, 1)

    def roundtrip(self, hr: Tensor, **upscale_kwargs: object) -> Tensor:
        """downscale then upscale, cropped back to the input size."""
        lr = self.downscale(hr)
        return self.upscale(lr, size=tuple(hr.shape[-2:]), **upscale_kwargs)  # type: ignore[arg-type]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class IRN(Rescaler):
    """Invertible Rescaling Network.

    ``forward(x, rev=False)`` is the raw flow: (B, 3, H, W) -> ((B, 3 s^2, H/s, W/s), logdet (B,))
    with H, W multiples of the scale; ``rev=True`` inverts it. The image-level API (values in
    [0, 1]) is :class:`Rescaler`'s: ``encode`` splits the forward output into the LR (channels 0-2)
    and z, ``decode`` is its exact inverse, ``upscale`` draws z from N(0, T^2) by default.
    """

    config: IRNConfig

    def __init__(self, config: IRNConfig | None = None, **kwargs: object) -> None:
        super().__init__()
        if config is None:
            config = IRNConfig(**kwargs)  # type: ignore[arg-type]
        elif kwargs:
            raise InputError("pass either an IRNConfig or keyword arguments, not both")
        self.config = config
        ops: list[nn.Module] = []
        channels = config.in_channels
        split = config.lr_channels
        for n_blocks in config.blocks_per_level:
            if config.kind == "haar":
                ops.append(HaarDownsampling(channels))
                channels *= 4
            elif config.kind == "conv":
                ops.append(ConvDownsampling(config.scale, channels))
                channels *= config.scale**2
            else:
                ops.append(ColorTransform(channels))
            for _ in range(n_blocks):
                ops.append(AffineCoupling(channels, split, config.clamp, config.growth))
        self.operations = nn.ModuleList(ops)

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        logdet = x.new_zeros(x.shape[0])
        ops = reversed(self.operations) if rev else iter(self.operations)
        for op in ops:
            x, ld = op(x, rev=rev)
            logdet = logdet + ld
        return x, logdet

    def extra_repr(self) -> str:
        kind = "" if self.kind == "haar" else f"kind={self.kind}, "
        return f"{kind}scale={self.scale}, blocks_per_level={list(self.config.blocks_per_level)}"


class IRNColor(IRN):
    """IRN-Color (the official ``InvGreyNet``): invertible decolorization.

    The IRN API with the grey image as the "LR" (scale 1): ``encode(rgb) -> (grey, z)`` with grey
    (B, 1, H, W) and z (B, 2, H, W), ``decode(grey, z) -> rgb``; :meth:`decolorize` and
    :meth:`colorize` are :meth:`downscale` and :meth:`upscale` under the names of this task.
    """

    # the official IRN-Color trains and tests with z = 0 (gaussian_scale 0 in its IRN_color_model.py)
    default_z: ClassVar[Literal["sample", "zero"]] = "zero"

    def __init__(self, config: IRNConfig | None = None, **kwargs: object) -> None:
        if config is None:
            kwargs.setdefault("kind", "color")
            kwargs.setdefault("scale", 1)
            config = IRNConfig(**kwargs)  # type: ignore[arg-type]
        elif kwargs:
            raise InputError("pass either an IRNConfig or keyword arguments, not both")
        if config.kind != "color":
            raise InputError(f"IRNColor needs kind 'color', got {config.kind!r}", param="kind")
        super().__init__(config)

    def decolorize(self, rgb: Tensor) -> Tensor:
        """rgb (B, 3, H, W) in [0, 1] -> the grey image (B, 1, H, W) on 8-bit levels."""
        return self.downscale(rgb)

    def colorize(
        self,
        grey: Tensor,
        *,
        z: ZMode | Tensor = "auto",
        temperature: float = 1.0,
        seed: int | None = None,
    ) -> Tensor:
        """grey (B, 1, H, W) in [0, 1] -> rgb (B, 3, H, W) clamped to [0, 1]; ``z`` as :meth:`IRN.upscale`."""
        return self.upscale(grey, z=z, temperature=temperature, seed=seed)


def build_network(config: IRNConfig) -> IRN:
    """The network class of ``config.kind``: :class:`IRNColor` for colour models, else :class:`IRN`."""
    return IRNColor(config) if config.kind == "color" else IRN(config)
