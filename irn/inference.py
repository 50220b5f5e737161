"""Fast inference for IRN: the same outputs as the plain path (within 1e-4 in fp32), faster and smaller.

:class:`FastIRN` is an :class:`~irn.nn.network.IRN` that shares the modules (and so the
official state-dict keys) of a trained model and replaces only ``forward`` for inference;
``encode``/``decode``/``downscale``/``upscale``/``roundtrip`` are inherited unchanged::

    fast = irn.inference.optimize_for_inference(irn.load("x4"))
    lr = fast.downscale(hr)           # same API and values as the plain model

What it changes, all exact in real arithmetic (only the rounding order of fp32 sums moves):

* activations are kept channels-last (NHWC), the layout oneDNN convolves without reordering;
* on CPU in fp32, every 3x3 convolution runs through oneDNN with its weight repacked once
  (``torch.ops.mkldnn._convolution_pointwise``) and LeakyReLU / sigmoid fused into it;
* the dense blocks write each new feature into one preallocated buffer instead of
  re-concatenating all earlier features for every convolution (``torch.cat`` copies);
* G and H of a coupling block both read y1 (Eq. 2): their first convolutions run as one
  convolution with the two weights stacked;
* every subnet runs on horizontal stripes of ``stripe_pixels`` output pixels, each widened by a
  halo of :data:`HALO` rows (a dense block stacks five 3x3 convolutions, so an output row depends
  on input rows at most 5 away), so peak memory no longer grows with the 137-channel dense
  features of the whole image: it is a few copies of the flow tensor (3 H W floats) plus one
  stripe's features. The halo rows are recomputed (about 2 * HALO / stripe rows extra work).

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
from irn.nn.haar import HaarDownsampling
from irn.nn.network import IRN
from irn.nn.subnets import DenseBlock

#: rows of halo a dense block needs on each side of a stripe: five stacked 3x3 convolutions
HALO = 5
LEAKY_SLOPE = 0.2
Activation = Literal["none", "leaky_relu", "sigmoid"]
#: glibc's mallopt parameter number for the mmap threshold
M_MMAP_THRESHOLD = -3


def mkldnn_available() -> bool:
    """Whether oneDNN's fused convolution ops exist in this torch build."""
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
        and hasattr(torch.ops.mkldnn, "_reorder_convolution_weight")
    )


@dataclass(frozen=True)
class FastOptions:
    """Tuning of :class:`FastIRN`.

    ``stripe_pixels``: output pixels (batch x rows x width) per subnet stripe; the stripe workspace
    (dense features plus a gather buffer) is about ``2 * stripe_pixels * 173 * 4`` bytes, 91 MB at
    the default 2^16 (with 2^17 a whole-process x4 down+up of 2040x1356 peaked at 1.07 GB RSS, with
    2^16 at 0.97 GB). ``mkldnn``: use oneDNN's packed,
    fused convolutions (None: when available and the input is fp32 on CPU).
    """

    stripe_pixels: int = 1 << 16
    mkldnn: bool | None = None

    def __post_init__(self) -> None:
        if self.stripe_pixels < 1:
            raise ValueError(f"stripe_pixels must be positive, got {self.stripe_pixels}")


class PreparedConv:
    """A 3x3 convolution (stride 1) prepared for inference: zero padding 1 on the columns and
    none on the rows (the caller supplies the rows above and below).

    ``__call__(x)``: (B, Cin, r, w) channels-last -> (B, Cout, r - 2, w) channels-last, with the
    activation applied. With ``packed`` the weight is held in oneDNN's blocked layout and
    the activation is fused into the convolution.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None, packed: bool) -> None:
        self.bias = None if bias is None else bias.detach().contiguous()
        self.packed = packed
        if packed:  # oneDNN's blocked layout; the dense copy is not kept
            self.weight = torch.ops.mkldnn._reorder_convolution_weight(weight.detach(), [0, 1], [1, 1], [1, 1], 1)
        else:
            self.weight = weight.detach().contiguous(memory_format=torch.channels_last)

    def __call__(self, x: Tensor, activation: Activation = "none") -> Tensor:
        if self.packed:
            scalars: list[float] = [LEAKY_SLOPE] if activation == "leaky_relu" else []
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.weight, self.bias, [0, 1], [1, 1], [1, 1], 1, activation, scalars, ""
            )
        bias = None if self.bias is None else self.bias.to(x.dtype)
        y = F.conv2d(x, self.weight.to(x.dtype), bias, padding=(0, 1))
        if activation == "leaky_relu":
            return F.leaky_relu(y, LEAKY_SLOPE, inplace=True)
        if activation == "sigmoid":
            return torch.sigmoid_(y)
        return y


def pixels(x: Tensor) -> Tensor:
    """A channels-last (B, C, H, W) tensor viewed as (B, H*W, C) (no copy)."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


def image(p: Tensor, height: int, width: int) -> Tensor:
    """(B, H*W, C) contiguous viewed as a channels-last (B, C, H, W) tensor (no copy)."""
    return p.view(p.shape[0], height, width, p.shape[2]).permute(0, 3, 1, 2)


class Workspace:
    """The two buffers a stripe of a dense block works in, allocated once per coupling call.

    ``features`` (B, rows*W, Cin + 4*growth): the dense features of the stripe window, pixel-major
    (channels-last memory); ``gather`` receives each convolution's input channels contiguously
    (a channel slice of ``features`` is strided, and convolutions would copy it far more slowly).
    """

    def __init__(self, batch: int, pixels: int, channels: int, like: Tensor) -> None:
        self.features_flat = torch.empty(batch * pixels * channels, dtype=like.dtype, device=like.device)
        self.gather_flat = torch.empty(batch * pixels * channels, dtype=like.dtype, device=like.device)
        self.batch = batch

    def features(self, pixels: int, channels: int) -> Tensor:
        return self.features_flat[: self.batch * pixels * channels].view(self.batch, pixels, channels)

    def gathered(self, source: Tensor) -> Tensor:
        """A contiguous copy of ``source`` (B, n, c) in the gather buffer."""
        b, n, c = source.shape
        out = self.gather_flat[: b * n * c].view(b, n, c)
        out.copy_(source)
        return out


def fill_window(dst: Tensor, src: Tensor, width: int, start: int, stop: int, height: int) -> tuple[int, int]:
    """Copy image rows ``start - HALO .. stop + HALO`` of src (B, H*W, C) into dst (B, R*W, C), zeros
    past the image border; returns the range of window rows that lie in the image."""
    lo, hi = max(0, start - HALO), min(height, stop + HALO)
    inside = (lo - (start - HALO), hi - (start - HALO))
    rows = dst.shape[1] // width
    dst[:, inside[0] * width : inside[1] * width] = src[:, lo * width : hi * width]
    if inside[0] > 0:
        dst[:, : inside[0] * width] = 0
    if inside[1] < rows:
        dst[:, inside[1] * width :] = 0
    return inside


class PreparedDenseBlock:
    """:class:`~irn.nn.subnets.DenseBlock` for inference on one stripe, features in one buffer.

    ``__call__(src, ...)``: src (B, H*W, Cin), the whole input pixel-major; returns the block's
    output on image rows ``start .. stop`` as (B, (stop-start)*W, Cout). The window holds ``HALO``
    rows above and below the stripe (zeros past the image border, as the network's padding).
    Convolution k computes only the rows later layers need (R - 2k of R window rows, zero padding
    on the columns only), so the halo costs 4 extra rows per stripe on average, not 10.
    ``first`` (B, (R-2)*W, growth) is conv1's activated output when computed elsewhere (the fused
    G/H first convolution).
    """

    def __init__(self, block: DenseBlock, packed: bool) -> None:
        self.convs = [
            PreparedConv(c.weight, c.bias, packed) for c in (block.conv1, block.conv2, block.conv3, block.conv4)
        ]
        self.last = PreparedConv(block.conv5.weight, block.conv5.bias, packed)
        self.in_channels = block.conv1.in_channels
        self.growth = block.conv1.out_channels
        self.channels = self.in_channels + 4 * self.growth

    def __call__(
        self,
        src: Tensor,
        size: tuple[int, int],
        start: int,
        stop: int,
        work: Workspace,
        activation: Activation = "none",
        first: Tensor | None = None,
    ) -> Tensor:
        height, w = size
        r = stop - start + 2 * HALO
        c, g = self.in_channels, self.growth
        buf = work.features(r * w, self.channels)
        inside = fill_window(buf[:, :, :c], src, w, start, stop, height)
        for k, conv in enumerate(self.convs, start=1):
            if k == 1 and first is not None:
                feature = first
            else:
                inp = work.gathered(buf[:, (k - 1) * w : (r - k + 1) * w, :c])
                feature = pixels(conv(image(inp, r - 2 * k + 2, w), "leaky_relu"))
            dst = buf[:, k * w : (r - k) * w, c : c + g]
            dst.copy_(feature)
            lo, hi = inside[0] - k, inside[1] - k  # rows of dst inside the image
            if lo > 0:
                dst[:, : lo * w] = 0
            if hi < r - 2 * k:
                dst[:, hi * w :] = 0
            c += g
        # conv5 reads every channel of rows HALO-1 .. R-HALO+1: a contiguous block of the buffer
        return pixels(self.last(image(buf[:, (HALO - 1) * w : (r - HALO + 1) * w], r - 2 * HALO + 2, w), activation))


def row_stripes(height: int, rows: int, halo: int) -> Iterator[tuple[int, int, int, int]]:
    """Split ``range(height)`` into stripes of ``rows``: yields (start, stop, halo_start, halo_stop)."""
    for start in range(0, height, rows):
        stop = min(height, start + rows)
        yield start, stop, max(0, start - halo), min(height, stop + halo)


class PreparedCoupling:
    """:class:`~irn.nn.coupling.AffineCoupling` (Eq. 1-2) for inference, stripe by stripe."""

    def __init__(self, block: AffineCoupling, packed: bool) -> None:
        self.split = block.split
        self.clamp = block.clamp
        self.f = PreparedDenseBlock(block.F, packed)
        self.g = PreparedDenseBlock(block.G, packed)
        self.h = PreparedDenseBlock(block.H, packed)
        # G and H both read y1: one convolution with their first weights stacked (exact).
        weight = torch.cat((block.G.conv1.weight, block.H.conv1.weight), 0)
        bias = torch.cat((block.G.conv1.bias, block.H.conv1.bias), 0)
        self.gh_first = PreparedConv(weight, bias, packed)

    def _scale_and_shift(
        self, y1: Tensor, size: tuple[int, int], start: int, stop: int, work: Workspace
    ) -> tuple[Tensor, Tensor]:
        """Rows start..stop of (s, G(y1)) with s = clamp * (2 sigmoid(H(y1)) - 1), pixel-major."""
        w = size[1]
        r = stop - start + 2 * HALO
        window = work.gather_flat[: y1.shape[0] * r * w * self.split].view(y1.shape[0], r * w, self.split)
        fill_window(window, y1, w, start, stop, size[0])
        first = pixels(self.gh_first(image(window, r, w), "leaky_relu"))
        growth = self.g.growth
        g = self.g(y1, size, start, stop, work, first=first[:, :, :growth])
        s = self.h(y1, size, start, stop, work, "sigmoid", first=first[:, :, growth:])
        return s.mul_(2).sub_(1).mul_(self.clamp), g

    def __call__(self, x: Tensor, rev: bool, stripe_rows: int) -> tuple[Tensor, Tensor]:
        """x (B, C, H, W) channels-last -> (y (B, C, H, W) channels-last, logdet (B,))."""
        k = self.split
        b, _, height, w = x.shape
        size = (height, w)
        out = torch.empty_like(x, memory_format=torch.channels_last)
        xp, outp = pixels(x), pixels(out)
        x1, x2, y1, y2 = xp[:, :, :k], xp[:, :, k:], outp[:, :, :k], outp[:, :, k:]
        logdet = x.new_zeros(b)
        stripes = [(a, min(height, a + stripe_rows)) for a in range(0, height, stripe_rows)]
        rows = min(height, stripe_rows) + 2 * HALO
        work = Workspace(b, rows * w, max(self.f.channels, self.g.channels, self.h.channels), x)
        if not rev:
            for a, e in stripes:  # y1 = x1 + F(x2)
                torch.add(x1[:, a * w : e * w], self.f(x2, size, a, e, work), out=y1[:, a * w : e * w])
            for a, e in stripes:  # y2 = x2 * exp(s) + G(y1)
                s, g = self._scale_and_shift(y1, size, a, e, work)
                torch.add(x2[:, a * w : e * w] * torch.exp(s), g, out=y2[:, a * w : e * w])
                logdet += s.sum((1, 2))
        else:
            for a, e in stripes:  # y2 = (x2 - G(x1)) / exp(s)
                s, g = self._scale_and_shift(x1, size, a, e, work)
                torch.div(x2[:, a * w : e * w] - g, torch.exp(s), out=y2[:, a * w : e * w])
                logdet -= s.sum((1, 2))
            for a, e in stripes:  # y1 = x1 - F(y2)
                torch.sub(x1[:, a * w : e * w], self.f(y2, size, a, e, work), out=y1[:, a * w : e * w])
        return out, logdet


class PreparedHaar:
    """:class:`~irn.nn.haar.HaarDownsampling` computed band by band into a channels-last output.

    Forward, per 2x2 block [[a, b], [c, d]] of every channel (the official filters, Sec. 3.2):
    bands (a+b+c+d)/4, (a-b+c-d)/4, (a+b-c-d)/4, (a-b-c+d)/4, band k of channel c at output
    channel k*C + c. Inverse: a = y0+y1+y2+y3, b = y0-y1+y2-y3, c = y0+y1-y2-y3, d = y0-y1-y2+y3.
    Only the output and one band-sized temporary are allocated (the plain module's grouped
    convolution and channel shuffle make several full-size copies).
    """

    def __init__(self, haar: HaarDownsampling) -> None:
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
        self._prepared: list[PreparedCoupling | PreparedHaar] | None = None
        self._prepared_key: tuple[object, ...] | None = None

    def _use_mkldnn(self, x: Tensor) -> bool:
        usable = x.device.type == "cpu" and x.dtype == torch.float32 and mkldnn_available()
        if self.options.mkldnn is None:
            return usable
        if self.options.mkldnn and not usable:
            raise RuntimeError("FastOptions(mkldnn=True) needs an fp32 CPU input and a torch build with oneDNN")
        return self.options.mkldnn

    def prepared(self, packed: bool) -> list[PreparedCoupling | PreparedHaar]:
        """The prepared operations, rebuilt when a parameter changed or the backend differs."""
        params = list(self.parameters())
        key = (packed, tuple((p.data_ptr(), p._version, p.device, p.dtype) for p in params))
        if self._prepared is None or self._prepared_key != key:
            with torch.no_grad():
                self._prepared = [
                    PreparedCoupling(op, packed) if isinstance(op, AffineCoupling) else PreparedHaar(op)
                    for op in self.operations
                ]
            self._prepared_key = key
        return self._prepared

    def _needs_autograd(self, *inputs: Tensor) -> bool:
        """Gradients are on and something would receive one: the plain path must run."""
        if not torch.is_grad_enabled():
            return False
        return any(t.requires_grad for t in inputs) or any(p.requires_grad for p in self.parameters())

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        if self._needs_autograd(x):
            return super().forward(x, rev)
        with torch.no_grad():
            ops = self.prepared(self._use_mkldnn(x))
            logdet = x.new_zeros(x.shape[0])
            for op in reversed(ops) if rev else ops:
                if isinstance(op, PreparedCoupling):
                    rows = max(1, self.options.stripe_pixels // (x.shape[0] * x.shape[3]))
                    x, ld = op(x.contiguous(memory_format=torch.channels_last), rev, rows)
                else:
                    x, ld = op(x, rev)
                logdet = logdet + ld
            return x.contiguous(), logdet

    def decode(self, lr: Tensor, z: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """:meth:`IRN.decode`, with the flow input assembled channels-last in one copy."""
        if self._needs_autograd(lr, z):
            return super().decode(lr, z, size)
        if lr.shape[0] != z.shape[0] or lr.shape[-2:] != z.shape[-2:] or z.shape[1] != self.latent_channels:
            return super().decode(lr, z, size)  # raises the shape error
        c = self.config.in_channels
        flow_in = torch.empty((lr.shape[0], c + z.shape[1], *lr.shape[-2:]), dtype=lr.dtype, device=lr.device)
        flow_in = flow_in.contiguous(memory_format=torch.channels_last)
        flow_in[:, :c] = lr
        flow_in[:, c:] = z
        hr, _ = self(flow_in, rev=True)
        hr = hr[:, :c]
        if size is not None:
            hr = hr[..., : size[0], : size[1]]
        return hr


def optimize_for_inference(model: IRN, options: FastOptions | None = None) -> FastIRN:
    """``model`` wrapped as a :class:`FastIRN` (returned as is if it already is one with these options)."""
    if isinstance(model, FastIRN) and (options is None or options == model.options):
        return model
    return FastIRN(model, options)


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
