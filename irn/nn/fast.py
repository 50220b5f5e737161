"""Fast inference for IRN: the same outputs as the plain path (within 1e-4 in fp32), faster and smaller.

:class:`FastIRN` is an :class:`~irn.nn.network.IRN` that shares the modules (and so the
official state-dict keys) of a trained model and replaces its flow for inference; the image API
(``encode``/``decode``/``downscale``/``upscale``/``roundtrip``) is the plain model's::

    fast = irn.nn.fast.optimize_for_inference(irn.load("x4"))
    lr = fast.downscale(hr)           # same API and values as the plain model

What it changes, all exact in real arithmetic (only the rounding order of fp32 sums moves):

* activations are kept channels-last (NHWC), the layout oneDNN convolves without reordering;
* on CPU in fp32, every 3x3 convolution runs through oneDNN with its weight repacked once
  (``torch.ops.mkldnn._convolution_pointwise_``, its fused in-place "add" variant);
* a dense block never concatenates: convolution k of cat(x, x1, .., x_{k-1}) is the sum of one
  convolution per source, so each feature, once computed, is convolved straight into the
  accumulators of every later layer (no ``torch.cat`` or gather copies at all); the last
  convolution's outputs are padded with zero weights to a multiple of 8 (oneDNN's AVX2 block);
* s = clamp * (2 sigmoid(H) - 1) is computed as clamp * tanh(H / 2), the halving folded into H's
  last weights; ``downscale`` skips the last block's latent half, which it would discard;
* every subnet runs on horizontal stripes of ``stripe_pixels`` output pixels of one sample, each
  widened by a halo of :data:`HALO` rows (a dense block stacks five 3x3 convolutions, so an output
  row depends on input rows at most 5 away), so peak memory no longer grows with the 137-channel
  dense features of the whole image: it is a few copies of the flow tensor (3 H W floats) plus one
  stripe's features, in buffers reused by every stripe and block. The halo rows inside the image
  are recomputed (about 2 * HALO / stripe rows extra work); those outside it are never computed.

The forward pass computes the same per-pixel sums as the plain path; only their order in fp32
differs. Autograd is not supported: with gradients enabled and trainable inputs or parameters,
``forward`` falls back to the plain path. Weights are repacked lazily and again whenever a
parameter changes in place (tracked by its version counter).

GPU path: :func:`accelerated_flow` wraps the plain model's flow with bf16 autocast,
channels-last and optionally ``torch.compile`` (with CUDA graphs via ``mode="reduce-overhead"``);
it runs on CPU too (compile off) so that it is tested without a GPU.
"""

from __future__ import annotations

import ctypes
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from irn.nn.coupling import AffineCoupling
from irn.nn.haar import HaarDownsampling, haar_filters
from irn.nn.linear import ColorTransform, ConvDownsampling
from irn.nn.network import IRN, IRNColor, check_decode_inputs, quantize
from irn.nn.subnets import DenseBlock


def spans(length: int, tile: int, overlap: int) -> Iterator[tuple[int, int, int, int]]:
    """Cut ``range(length)`` into cores of ``tile``: yields (start, stop, context_start, context_stop)."""
    for start in range(0, length, tile):
        stop = min(length, start + tile)
        yield start, stop, max(0, start - overlap), min(length, stop + overlap)


class UnsupportedOperation(TypeError):
    """A module the fast path does not know how to compute: it refuses it rather than assume one.
    :func:`optimize_for_inference` raises it; :func:`fast_or_plain` then keeps the plain model."""


def _reference_block() -> DenseBlock:
    return DenseBlock(1, 1, 1)


def _check_conv(conv: object, where: str) -> torch.nn.Conv2d:
    """``conv`` is a plain zero-padded 3x3 stride-1 convolution (what the stripes assume)."""
    if type(conv) is not torch.nn.Conv2d:
        raise UnsupportedOperation(f"{where}: {type(conv).__name__} is not an nn.Conv2d")
    geometry = (conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups, conv.padding_mode)
    if geometry != ((3, 3), (1, 1), (1, 1), (1, 1), 1, "zeros") or conv.bias is None:
        raise UnsupportedOperation(
            f"{where}: convolution {geometry} with bias={conv.bias is not None}; the fast path computes "
            "3x3, stride 1, zero padding 1, no dilation or groups, with a bias"
        )
    return conv


def dense_block_convs(block: object, where: str = "dense block") -> tuple[torch.nn.Conv2d, ...]:
    """The convolutions of a :class:`~irn.nn.subnets.DenseBlock` in order, after checking that it
    is one (not a subclass with another forward), that each convolution is a zero-padded 3x3 one
    and that convolution k reads the block input and the k - 1 features before it (the dense
    wiring the fast path sums instead of concatenating). Raises :class:`UnsupportedOperation`."""
    if type(block) is not DenseBlock:
        raise UnsupportedOperation(f"{where}: {type(block).__name__} is not an irn DenseBlock")
    names = [name for name, _ in block.named_children() if name.startswith("conv")]
    convs = tuple(_check_conv(getattr(block, name), f"{where}.{name}") for name in names)
    if len(convs) < 2 or type(block.lrelu) is not torch.nn.LeakyReLU:
        raise UnsupportedOperation(f"{where}: not a dense block of convolutions and a LeakyReLU")
    c, g = convs[0].in_channels, convs[0].out_channels
    for k, conv in enumerate(convs):
        expected = (c + k * g, g if k < len(convs) - 1 else conv.out_channels)
        if (conv.in_channels, conv.out_channels) != expected:
            raise UnsupportedOperation(
                f"{where}.{names[k]}: {conv.in_channels} -> {conv.out_channels} channels, the dense wiring "
                f"needs {expected[0]} -> {expected[1]}"
            )
    return convs


def dense_block_halo(block: DenseBlock) -> int:
    """Rows of context one output row of ``block`` depends on, each side: one per stacked 3x3
    convolution (each reads one row above and below)."""
    return sum(conv.kernel_size[0] // 2 for conv in dense_block_convs(block))


#: rows of halo a dense block needs on each side of a stripe (derived from DenseBlock itself)
HALO = dense_block_halo(_reference_block())
#: the negative slope of the dense blocks' LeakyReLU (derived from DenseBlock itself)
LEAKY_SLOPE = float(_reference_block().lrelu.negative_slope)
#: glibc's mallopt parameter number for the mmap threshold
M_MMAP_THRESHOLD = -3


def mkldnn_available() -> bool:
    """Whether oneDNN's fused convolution ops exist in this torch build."""
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_convolution_pointwise_")
        and hasattr(torch.ops.mkldnn, "_reorder_convolution_weight")
    )


@dataclass(frozen=True)
class FastOptions:
    """Tuning of :class:`FastIRN`.

    ``stripe_pixels``: output pixels (rows x width, one sample) per subnet stripe; the stripe
    workspace (four dense features, two subnet outputs, the input window) is about
    ``stripe_pixels * (4 * growth + 2 * 48 + 45) * 4`` bytes, 69 MB at the default 2^16 for x4.
    ``mkldnn``: use oneDNN's packed, fused convolutions (None: when available and the input is
    fp32 on CPU).
    """

    stripe_pixels: int = 1 << 16
    mkldnn: bool | None = None

    def __post_init__(self) -> None:
        if self.stripe_pixels < 1:
            raise ValueError(f"stripe_pixels must be positive, got {self.stripe_pixels}")


def check_dense_block(block: object, where: str) -> tuple[torch.nn.Conv2d, ...]:
    """:func:`dense_block_convs`, and the depth and slope :data:`HALO` and :data:`LEAKY_SLOPE` hold for."""
    convs = dense_block_convs(block, where)
    lrelu = block.lrelu  # type: ignore[attr-defined]
    if len(convs) != HALO or lrelu.negative_slope != LEAKY_SLOPE:
        raise UnsupportedOperation(
            f"{where}: {len(convs)} convolutions, LeakyReLU({lrelu.negative_slope}); the fast path "
            f"was derived for DenseBlock's {HALO} and LeakyReLU({LEAKY_SLOPE})"
        )
    return convs


def check_operation(op: object, where: str = "operation") -> None:
    """Raise :class:`UnsupportedOperation` unless ``op`` is a block whose maths the fast path
    reproduces: an :class:`~irn.nn.coupling.AffineCoupling` with irn's own forward, log-scale and
    :class:`~irn.nn.subnets.DenseBlock` subnets, a :class:`~irn.nn.haar.HaarDownsampling` with
    the official filters (the band formulas of :class:`PreparedHaar`), or one of the learnable linear
    maps (IRN-Color's :class:`~irn.nn.linear.ColorTransform`, the x3 model's
    :class:`~irn.nn.linear.ConvDownsampling`: cheap next to the couplings, run as they are)."""
    if type(op) in LINEAR_OPERATIONS:
        return
    if type(op) is AffineCoupling:
        for name in ("F", "G", "H"):
            check_dense_block(getattr(op, name), f"{where}.{name}")
        if not 0 < op.split < op.F.conv1.in_channels + op.split:
            raise UnsupportedOperation(f"{where}: split {op.split} out of range")
        return
    if type(op) is HaarDownsampling:
        weights = op.haar_weights
        if not torch.equal(weights.detach().cpu().to(torch.float32), haar_filters(op.channels)):
            raise UnsupportedOperation(f"{where}: Haar filters differ from the official ones the fast path computes")
        return
    raise UnsupportedOperation(f"{where}: {type(op).__name__} is not an operation the fast path knows")


class PreparedConv:
    """A 3x3 convolution (stride 1) prepared for inference: zero padding 1 on the columns and
    none on the rows (the caller supplies the rows above and below).

    ``accumulate(acc, x)``: ``acc += conv(x)`` in place, x (1, Cin, r, w) and acc (1, Cout, r - 2, w),
    both channels-last. With ``packed`` the weight is held in oneDNN's blocked layout and the sum is
    fused into the convolution (oneDNN's binary "add" post-op writes straight into ``acc``).
    """

    def __init__(self, weight: Tensor, bias: Tensor | None, packed: bool) -> None:
        self.bias = None if bias is None else bias.detach().contiguous()
        self.packed = packed
        if packed:  # oneDNN's blocked layout; the dense copy is not kept
            self.weight = torch.ops.mkldnn._reorder_convolution_weight(weight.detach(), [0, 1], [1, 1], [1, 1], 1)
        else:
            self.weight = weight.detach().contiguous(memory_format=torch.channels_last)

    def accumulate(self, acc: Tensor, x: Tensor) -> None:
        if self.packed:
            torch.ops.mkldnn._convolution_pointwise_.binary(
                acc, x, self.weight, self.bias, [0, 1], [1, 1], [1, 1], 1, "add", 1.0, None, [], None
            )
            return
        bias = None if self.bias is None else self.bias.to(x.dtype)
        acc.add_(F.conv2d(x, self.weight.to(x.dtype), bias, padding=(0, 1)))


class Workspace:
    """The buffers the subnets work in, allocated once per flow call and grown on demand.

    ``view(name, c, r, w)``: the flat buffer ``name`` as a channels-last (1, c, r, w) tensor. The
    names in use: ``window`` (a subnet's input rows with their halo), ``feature1``..``feature4``
    (the dense features of the stripe) and ``g``/``h`` (subnet outputs: G and H are needed at once;
    F's output is consumed before G runs and shares ``g``). Stripes and coupling blocks reuse
    memory that is already mapped (a fresh image-sized buffer per call costs its page faults).
    """

    def __init__(self, like: Tensor) -> None:
        self.dtype, self.device = like.dtype, like.device
        self.buffers: dict[str, Tensor] = {}

    def _flat(self, name: str, n: int) -> Tensor:
        buf = self.buffers.get(name)
        if buf is None or buf.numel() < n:
            self.buffers.pop(name, None)  # free the old one first
            buf = self.buffers[name] = torch.empty(n, dtype=self.dtype, device=self.device)
        return buf

    def view(self, name: str, channels: int, rows: int, width: int) -> Tensor:
        """The buffer ``name`` as a channels-last (1, channels, rows, width) tensor."""
        flat = self._flat(name, channels * rows * width)
        return flat[: channels * rows * width].view(1, rows, width, channels).permute(0, 3, 1, 2)


def fill_window(window: Tensor, src: Tensor, start: int, stop: int) -> tuple[int, int]:
    """Copy image rows ``start - HALO .. stop + HALO`` of src (1, C, H, W) into window (1, C, R, W),
    zeros past the image border; returns the range of window rows that lie in the image."""
    height, rows = src.shape[2], window.shape[2]
    lo, hi = max(0, start - HALO), min(height, stop + HALO)
    inside = (lo - (start - HALO), hi - (start - HALO))
    window[:, :, inside[0] : inside[1]] = src[:, :, lo:hi]
    if inside[0] > 0:
        window[:, :, : inside[0]] = 0
    if inside[1] < rows:
        window[:, :, inside[1] :] = 0
    return inside


class PreparedDenseBlock:
    """:class:`~irn.nn.subnets.DenseBlock` for inference on one stripe, with no concatenation.

    The dense block's convolution k reads cat(x, x1, .., x_{k-1}); split by input channels that is
    a sum of convolutions, one per source. Each source, once computed, is convolved straight into
    the accumulators of every later layer (oneDNN fuses the sum), so no feature is ever copied.
    Convolution k computes only the rows later layers need (R - 2k of the R window rows, zero padding
    on the columns only), so the halo costs 4 extra rows per stripe on average, not 10. With
    ``packed`` the last convolution's outputs are padded with zero weights to a multiple of 8 (oneDNN's
    AVX2 block): a 32 -> 8 convolution runs faster than a 32 -> 3 one. ``output_scale`` multiplies
    the last convolution's weights and bias (0.5 for H: s = clamp * tanh(H / 2)).
    """

    def __init__(self, block: DenseBlock, packed: bool, output_scale: float = 1.0, where: str = "dense block") -> None:
        convs = check_dense_block(block, where)
        c, g = convs[0].in_channels, convs[0].out_channels
        self.growth = g
        self.out_channels = convs[-1].out_channels
        self.padded_out_channels = -(-self.out_channels // 8) * 8 if packed else self.out_channels
        bounds = [0, c, c + g, c + 2 * g, c + 3 * g, c + 4 * g]
        #: pieces[k - 1][j]: convolution k on source j (0: the block input, j >= 1: feature j)
        self.pieces: list[list[PreparedConv]] = []
        for k, conv in enumerate(convs, start=1):
            weight, bias = conv.weight.detach(), conv.bias.detach()
            if k == 5 and output_scale != 1.0:
                weight, bias = weight * output_scale, bias * output_scale
            if k == 5 and self.padded_out_channels > self.out_channels:
                extra = self.padded_out_channels - self.out_channels
                weight = torch.cat((weight, weight.new_zeros(extra, *weight.shape[1:])))
                bias = torch.cat((bias, bias.new_zeros(extra)))
            self.pieces.append(
                [PreparedConv(weight[:, bounds[j] : bounds[j + 1]], bias if j == 0 else None, packed) for j in range(k)]
            )

    def __call__(self, window: Tensor, inside: tuple[int, int], work: Workspace, out: str) -> Tensor:
        """window (1, Cin, R, W): the stripe's input with HALO rows each side, zero outside the image
        rows ``inside``; returns the block's output on the stripe's R - 2 * HALO rows,
        (1, Cout, R - 2 * HALO, W), a view of the workspace buffer ``out``."""
        r, w = window.shape[2], window.shape[3]
        targets = [work.view(f"feature{k}", self.growth, r - 2 * k, w) for k in range(1, 5)]
        targets.append(work.view(out, self.padded_out_channels, r - 2 * HALO, w))
        # Target k holds window rows k .. r - k. Outside the image every feature is zero (the
        # network's zero padding), so only its rows inside the image are computed.
        rows = [(max(k, inside[0]), min(r - k, inside[1])) for k in range(1, 6)]
        for k, (target, (lo, hi)) in enumerate(zip(targets, rows, strict=True), start=1):
            target.zero_()
            if lo < hi:  # convolution k reads window rows lo - 1 .. hi + 1
                self.pieces[k - 1][0].accumulate(target[:, :, lo - k : hi - k], window[:, :, lo - 1 : hi + 1])
        for j in range(1, 5):
            feature = F.leaky_relu_(targets[j - 1], LEAKY_SLOPE)  # complete: every source < j added
            for k in range(j + 1, 6):
                lo, hi = rows[k - 1]
                if lo < hi:
                    self.pieces[k - 1][j].accumulate(
                        targets[k - 1][:, :, lo - k : hi - k], feature[:, :, lo - 1 - j : hi + 1 - j]
                    )
        return targets[4][:, : self.out_channels]


class PreparedCoupling:
    """:class:`~irn.nn.coupling.AffineCoupling` (Eq. 1-2) for inference, sample by sample and
    stripe by stripe."""

    def __init__(self, block: AffineCoupling, packed: bool, where: str = "coupling") -> None:
        check_operation(block, where)
        self.split = block.split
        self.clamp = block.clamp
        self.f = PreparedDenseBlock(block.F, packed, where=f"{where}.F")
        self.g = PreparedDenseBlock(block.G, packed, where=f"{where}.G")
        # s = clamp * (2 sigmoid(h) - 1) = clamp * tanh(h / 2): H's last convolution is prepared
        # with its weights and bias halved (exact in binary floating point), then one tanh.
        self.h = PreparedDenseBlock(block.H, packed, output_scale=0.5, where=f"{where}.H")

    def _scale_and_shift(self, y1: Tensor, start: int, stop: int, work: Workspace) -> tuple[Tensor, Tensor]:
        """Rows start..stop of (s, G(y1)) with s = clamp * (2 sigmoid(H(y1)) - 1)."""
        window = work.view("window", y1.shape[1], stop - start + 2 * HALO, y1.shape[3])
        inside = fill_window(window, y1, start, stop)
        g = self.g(window, inside, work, out="g")
        s = torch.tanh_(self.h(window, inside, work, out="h"))
        return (s if self.clamp == 1 else s.mul_(self.clamp)), g

    def _f(self, x2: Tensor, start: int, stop: int, work: Workspace) -> Tensor:
        window = work.view("window", x2.shape[1], stop - start + 2 * HALO, x2.shape[3])
        return self.f(window, fill_window(window, x2, start, stop), work, out="g")  # consumed before G runs

    def __call__(
        self, x: Tensor, rev: bool, stripe_rows: int, work: Workspace, first_only: bool = False
    ) -> tuple[Tensor, Tensor]:
        """x (B, C, H, W) channels-last -> (y (B, C, H, W) channels-last, logdet (B,)).

        ``first_only`` (forward only): compute y1 alone and return (y1 (B, split, H, W), zeros), for
        a caller that needs only the low-resolution channels of the last block (``downscale``).
        """
        k = self.split
        b, _, height, _ = x.shape
        out = torch.empty_like(x, memory_format=torch.channels_last)
        logdet = x.new_zeros(b)
        stripes = [(a, stop) for a, stop, _, _ in spans(height, stripe_rows, HALO)]  # fill_window adds the halo
        for i in range(b):
            x1, x2 = x[i : i + 1, :k], x[i : i + 1, k:]
            y1, y2 = out[i : i + 1, :k], out[i : i + 1, k:]
            if not rev:
                for a, e in stripes:  # y1 = x1 + F(x2)
                    torch.add(x1[:, :, a:e], self._f(x2, a, e, work), out=y1[:, :, a:e])
                if first_only:
                    continue
                for a, e in stripes:  # y2 = x2 * exp(s) + G(y1)
                    s, g = self._scale_and_shift(y1, a, e, work)
                    logdet[i] += s.sum()
                    torch.addcmul(g, x2[:, :, a:e], s.exp_(), out=y2[:, :, a:e])
            else:
                for a, e in stripes:  # y2 = (x2 - G(x1)) / exp(s)
                    s, g = self._scale_and_shift(x1, a, e, work)
                    logdet[i] -= s.sum()
                    torch.sub(x2[:, :, a:e], g, out=y2[:, :, a:e]).div_(s.exp_())
                for a, e in stripes:  # y1 = x1 - F(y2)
                    torch.sub(x1[:, :, a:e], self._f(y2, a, e, work), out=y1[:, :, a:e])
        return (out[:, :k], logdet) if first_only and not rev else (out, logdet)


class PreparedHaar:
    """:class:`~irn.nn.haar.HaarDownsampling` computed band by band into a channels-last output.

    Forward, per 2x2 block [[a, b], [c, d]] of every channel (the official filters, Sec. 3.2):
    bands (a+b+c+d)/4, (a-b+c-d)/4, (a+b-c-d)/4, (a-b-c+d)/4, band k of channel c at output
    channel k*C + c. Inverse: a = y0+y1+y2+y3, b = y0-y1+y2-y3, c = y0+y1-y2-y3, d = y0-y1-y2+y3.
    Only the output and one band-sized temporary are allocated (the plain module's grouped
    convolution and channel shuffle make several full-size copies).
    """

    def __init__(self, haar: HaarDownsampling, where: str = "haar") -> None:
        check_operation(haar, where)
        self.haar = haar  # for its checks and its log-determinant
        self.channels = haar.channels

    def __call__(self, x: Tensor, rev: bool) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        if not rev:
            if c != self.channels or h % 2 or w % 2:
                return self._checked(x, rev)
            tl, tr, bl, br = x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]
            out = torch.empty((b, 4 * c, h // 2, w // 2), dtype=x.dtype, device=x.device)
            out = out.contiguous(memory_format=torch.channels_last)
            top_sum, top_diff = tl + tr, tl - tr
            bottom_sum, bottom_diff = bl + br, bl - br
            torch.add(top_sum, bottom_sum, out=out[:, :c]).mul_(0.25)
            torch.add(top_diff, bottom_diff, out=out[:, c : 2 * c]).mul_(0.25)
            torch.sub(top_sum, bottom_sum, out=out[:, 2 * c : 3 * c]).mul_(0.25)
            torch.sub(top_diff, bottom_diff, out=out[:, 3 * c :]).mul_(0.25)
            logdet = c * h * w / 4 * math.log(1 / 16)
        else:
            if c != 4 * self.channels:
                return self._checked(x, rev)
            k = c // 4
            y0, y1, y2, y3 = x[:, :k], x[:, k : 2 * k], x[:, 2 * k : 3 * k], x[:, 3 * k :]
            out = torch.empty((b, k, 2 * h, 2 * w), dtype=x.dtype, device=x.device)
            out = out.contiguous(memory_format=torch.channels_last)
            low_sum, low_diff = y0 + y2, y0 - y2
            high_sum, high_diff = y1 + y3, y1 - y3
            torch.add(low_sum, high_sum, out=out[:, :, 0::2, 0::2])
            torch.sub(low_sum, high_sum, out=out[:, :, 0::2, 1::2])
            torch.add(low_diff, high_diff, out=out[:, :, 1::2, 0::2])
            torch.sub(low_diff, high_diff, out=out[:, :, 1::2, 1::2])
            logdet = k * h * w * math.log(16)
        return out, x.new_full((b,), logdet)

    def _checked(self, x: Tensor, rev: bool) -> tuple[Tensor, Tensor]:
        """Shapes the band formulas do not take: the module raises its own error."""
        y, logdet = self.haar(x, rev=rev)
        return y.contiguous(memory_format=torch.channels_last), logdet


class PreparedLinear:
    """A learnable linear map of the flow (:data:`LINEAR_OPERATIONS`), run by its own module (one small
    matrix per pixel or per s x s block: a fraction of a coupling's work), its output channels-last for
    the couplings that follow."""

    def __init__(self, op: ColorTransform | ConvDownsampling) -> None:
        self.op = op

    def __call__(self, x: Tensor, rev: bool) -> tuple[Tensor, Tensor]:
        y, logdet = self.op(x.contiguous(), rev=rev)
        return y.contiguous(memory_format=torch.channels_last), logdet


#: the learnable linear maps the fast path runs as they are (:class:`PreparedLinear`)
LINEAR_OPERATIONS: tuple[type, ...] = (ColorTransform, ConvDownsampling)

Prepared = PreparedCoupling | PreparedHaar | PreparedLinear


def prepare_operation(op: object, packed: bool, where: str) -> Prepared:
    """The fast version of one operation of the flow; :class:`UnsupportedOperation` for any other."""
    check_operation(op, where)
    if isinstance(op, AffineCoupling):
        return PreparedCoupling(op, packed, where)
    if type(op) in LINEAR_OPERATIONS:
        return PreparedLinear(op)  # type: ignore[arg-type]
    return PreparedHaar(op, where)  # type: ignore[arg-type]


class FastIRN(IRN):
    """An :class:`IRN` with a fast inference ``forward``, sharing ``model``'s modules and weights.

    The state dict (official keys) and the image API are those of ``model``; ``forward(x, rev)``
    returns the plain path's values within fp32 rounding. See the module docstring.
    """

    def __init__(self, model: IRN, options: FastOptions | None = None) -> None:
        torch.nn.Module.__init__(self)
        self.config = model.config
        self.operations = model.operations
        self.metadata = dict(getattr(model, "metadata", {}) or {})  # what irn.load attached
        self.options = options or FastOptions()
        self._prepared: list[Prepared] | None = None
        self._prepared_key: tuple[object, ...] | None = None
        for n, op in enumerate(self.operations):  # refuse what it cannot compute, now
            check_operation(op, f"operations.{n}")

    def __getstate__(self) -> dict[str, object]:
        """Pickling and deep copies leave the prepared (repacked) weights behind: they are rebuilt."""
        state = dict(self.__dict__)
        state["_prepared"] = state["_prepared_key"] = None
        return state

    def _plain(self, *inputs: Tensor) -> bool:
        """The plain path runs: gradients are wanted, or the input is not on a CPU (the stripes and
        oneDNN kernels are CPU work; a GPU runs the plain flow faster)."""
        return any(t.device.type != "cpu" for t in inputs) or self._needs_autograd(*inputs)

    def _use_mkldnn(self, x: Tensor) -> bool:
        usable = x.device.type == "cpu" and x.dtype == torch.float32 and mkldnn_available()
        if self.options.mkldnn is None:
            return usable
        if self.options.mkldnn and not usable:
            raise RuntimeError("FastOptions(mkldnn=True) needs an fp32 CPU input and a torch build with oneDNN")
        return self.options.mkldnn

    def prepared(self, packed: bool) -> list[Prepared]:
        """The prepared operations, rebuilt when a parameter changed or the backend differs."""
        params = list(self.parameters())
        key = (packed, tuple((p.data_ptr(), p._version, p.device, p.dtype) for p in params))
        if self._prepared is None or self._prepared_key != key:
            with torch.no_grad():
                self._prepared = [
                    prepare_operation(op, packed, f"operations.{n}") for n, op in enumerate(self.operations)
                ]
            self._prepared_key = key
        return self._prepared

    def _needs_autograd(self, *inputs: Tensor) -> bool:
        """Gradients are on and something would receive one: the plain path must run."""
        if not torch.is_grad_enabled():
            return False
        return any(t.requires_grad for t in inputs) or any(p.requires_grad for p in self.parameters())

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        if self._plain(x):
            return super().forward(x, rev)
        return self._flow(x, rev)

    def _flow(self, x: Tensor, rev: bool, lr_only: bool = False) -> tuple[Tensor, Tensor]:
        """The flow without autograd. ``lr_only`` (forward): the last coupling block computes only its
        first ``split`` channels (the LR; what follows the split is not returned), logdet is partial."""
        with torch.no_grad():
            ops = self.prepared(self._use_mkldnn(x))
            ops = ops[::-1] if rev else ops
            logdet = x.new_zeros(x.shape[0])
            work = Workspace(x)
            for n, op in enumerate(ops):
                if isinstance(op, PreparedCoupling):
                    rows = max(1, self.options.stripe_pixels // x.shape[3])
                    first_only = lr_only and not rev and n == len(ops) - 1
                    x = x.contiguous(memory_format=torch.channels_last)
                    x, ld = op(x, rev, rows, work, first_only=first_only)
                else:
                    x, ld = op(x, rev)
                logdet = logdet + ld
            return x.contiguous(), logdet

    def downscale(self, hr: Tensor) -> Tensor:
        """:meth:`IRN.downscale`; the last coupling block skips the latent half it would discard."""
        if self._plain(hr):
            return super().downscale(hr)
        lr, _ = self._flow(self._pad(hr), rev=False, lr_only=True)
        return quantize(lr[:, : self.lr_channels])

    def decode(self, lr: Tensor, z: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """:meth:`IRN.decode`, with the flow input assembled channels-last in one copy."""
        if self._plain(lr, z):
            return super().decode(lr, z, size)
        check_decode_inputs(lr, z, size, self.scale, self.latent_channels)
        self._check_dtype("lr", lr)
        self._check_dtype("z", z)
        c = self.lr_channels
        flow_in = torch.empty((lr.shape[0], c + z.shape[1], *lr.shape[-2:]), dtype=lr.dtype, device=lr.device)
        flow_in = flow_in.contiguous(memory_format=torch.channels_last)
        flow_in[:, :c] = lr
        flow_in[:, c:] = z
        hr, _ = self(flow_in, rev=True)
        hr = hr[:, : self.config.in_channels]
        if size is not None:
            hr = hr[..., : size[0], : size[1]]
        return hr


class FastIRNColor(FastIRN, IRNColor):
    """:class:`FastIRN` of an IRN-Color model: its ``decolorize`` / ``colorize`` run the fast flow."""


def optimize_for_inference(model: IRN, options: FastOptions | None = None) -> FastIRN:
    """``model`` wrapped as a :class:`FastIRN` (:class:`FastIRNColor` for an IRN-Color model; returned
    as is if it already is one with these options). Raises :class:`UnsupportedOperation` for a model
    with an operation the fast path does not know."""
    if isinstance(model, FastIRN) and (options is None or options == model.options):
        return model
    if isinstance(model, IRNColor):
        return FastIRNColor(model, options)
    return FastIRN(model, options)


def fast_or_plain(model: IRN) -> IRN:
    """``model`` as a :class:`FastIRN` when the fast path knows all its operations, else ``model``
    itself (a network with other blocks, or another architecture, runs its own, plain, forward)."""
    if not isinstance(model, IRN):  # SAIN, T-IRN, ...: the fast path computes IRN's operations only
        return model
    try:
        return optimize_for_inference(model)
    except UnsupportedOperation:
        return model


def return_freed_memory_promptly(threshold_bytes: int = 1 << 20) -> bool:
    """Make glibc's malloc serve blocks of ``threshold_bytes`` or more with their own mmap.

    By default glibc raises that threshold as large blocks are freed, after which freed image-sized
    buffers stay in the heap, fragmented, and the process's resident memory grows well past what
    is live (about 150 MB more for a 2040x1356 x4 image). With a fixed threshold they go back to
    the system on free. Process-wide; a no-op returning False where glibc is not the allocator.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, int(threshold_bytes)))
    except (OSError, AttributeError):
        return False


# ----------------------------------------------------------------------------------------- GPU
Precision = Literal["fp32", "bf16-mixed", "fp16-mixed"]
Flow = Callable[[Tensor, bool], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class AcceleratorOptions:
    """The GPU recipe for :func:`accelerated_flow`.

    ``precision``: ``bf16-mixed`` (autocast to bfloat16; the flow's output and logdet are
    returned in fp32), ``fp16-mixed`` or ``fp32``. ``channels_last``: NHWC activations and weights.
    ``compile``: ``torch.compile`` the flow. ``cuda_graphs``: compile with
    ``mode="reduce-overhead"``, which replays CUDA graphs (CUDA only; implies compile).
    """

    precision: Precision = "bf16-mixed"
    channels_last: bool = True
    compile: bool = True
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16-mixed", "fp16-mixed"):
            raise ValueError(f"precision must be fp32, bf16-mixed or fp16-mixed, got {self.precision!r}")


def accelerated_flow(model: IRN, options: AcceleratorOptions | None = None) -> Flow:
    """``model``'s raw flow ``(x, rev) -> (y, logdet)`` with the GPU recipe applied.

    Works for training (autograd flows through it) and inference. On CPU it runs too, with
    bf16 autocast on CPU; use ``compile=False`` there in tests. ``cuda_graphs`` needs a CUDA model.
    """
    opts = options or AcceleratorOptions()
    if opts.channels_last:
        model.to(memory_format=torch.channels_last)
    dtype = {"fp32": None, "bf16-mixed": torch.bfloat16, "fp16-mixed": torch.float16}[opts.precision]

    def flow(x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        if opts.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            y, logdet = model(x, rev)
        return y.float(), logdet.float()

    if opts.cuda_graphs:
        device = next(iter(model.buffers())).device
        if device.type != "cuda":
            raise ValueError("cuda_graphs needs the model on a CUDA device")
        return torch.compile(flow, mode="reduce-overhead")  # type: ignore[return-value]
    if opts.compile:
        return torch.compile(flow)  # type: ignore[return-value]
    return flow
