"""Rescale images of any size in bounded memory: the network runs on overlapping tiles.

Tiles are laid out on the LR grid: a tile's core is ``tile x tile`` LR pixels (``s * tile`` HR
pixels, so every cut lies on a multiple of the scale and the Haar grids of tile and image agree),
and the network sees the core widened by ``overlap`` LR pixels of real image on every side that
has a neighbour (crop-centre: each output pixel is taken from the one tile whose core holds it,
at least ``overlap`` LR pixels from that tile's cut edges; no blending). Where the widened tile
reaches the image border, the network's own zero padding applies, exactly as for the whole
image. An output pixel depends on a neighbourhood of the input that in principle spans the
whole receptive field (8 coupling blocks x 10 stacked 3x3 convolutions per Haar level), but a
trained model's dependence decays fast; :data:`DEFAULT_OVERLAP` is what the measurement in
``benchmarks/run.py --only tiling`` showed to keep tiled results within PSNR >= 60 dB of untiled ones.

The image is reflect-padded to a multiple of the scale first, exactly as :meth:`IRN.encode` does.

Every invertible rescaler runs tiled the same way (:class:`irn.nn.network.Rescaler`: IRN and its fast
path, SAIN, T-IRN): the functions call only the model's ``_pad``, ``encode``, ``decode`` and
``sample_latent``. SAIN's and T-IRN's blocks are convolutional like IRN's, with per-pixel colour
conversions and clamps (T-IRN), so the same overlap applies; tiny random models of both agree with
their untiled results to 1e-5 with 10 LR pixels of context (tests/cli/test_newer_rescalers.py).

Latent z for ``upscale(z="sample")``: it is drawn for the whole LR at once with the same call as
:meth:`IRN.sample_latent` (for IRN one ``torch.randn`` of shape (B, 3(s^2-1), h, w) from a generator
seeded with ``seed``; for SAIN the draws of its Gaussian mixture, from the same generator) and every
tile decodes its slice, so the tiled result does not depend on the tile size, is reproducible with
``seed`` and agrees with the untiled one. The cost: z is held in memory once, about the size
of the HR output in fp32 ((s^2 - 1)/s^2 of it). Memory of a tiled run is therefore the input,
the output and z (a few bytes per HR pixel) plus one tile's working set, which ``tile`` bounds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from torch import Tensor

from irn.nn.fast import FastIRN, spans
from irn.nn.network import Rescaler, ZMode, check_decode_inputs, quantize

#: context on each side of a tile, in LR pixels (see the module docstring)
DEFAULT_OVERLAP = 32
#: default core side of a tile, in LR pixels
DEFAULT_TILE = 256


@dataclass(frozen=True)
class Tiling:
    """``tile``: core side in LR pixels; ``overlap``: context added on each side, in LR pixels."""

    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP

    def __post_init__(self) -> None:
        if self.tile < 1:
            raise ValueError(f"tile must be at least 1 LR pixel, got {self.tile}")
        if self.overlap < 0:
            raise ValueError(f"overlap must not be negative, got {self.overlap}")


def tiles(height: int, width: int, tiling: Tiling) -> Iterator[tuple[slice, slice, slice, slice]]:
    """LR-grid tiles of an (height x width) LR image: (core rows, core cols, context rows, context cols)."""
    for a, b, ca, cb in spans(height, tiling.tile, tiling.overlap):
        for c, d, cc, cd in spans(width, tiling.tile, tiling.overlap):
            yield slice(a, b), slice(c, d), slice(ca, cb), slice(cc, cd)


def _inner(core: slice, context: slice, factor: int = 1) -> slice:
    """Where ``core`` lies inside ``context``, both scaled by ``factor``."""
    return slice(factor * (core.start - context.start), factor * (core.stop - context.start))


def tiled_encode(model: Rescaler, hr: Tensor, tiling: Tiling, keep_latent: bool = True) -> tuple[Tensor, Tensor | None]:
    """:meth:`IRN.encode` tile by tile: hr (B, 3, H, W) -> (lr (B, c, h, w), z (B, latent, h, w) or None).

    With ``keep_latent=False`` z is discarded tile by tile and None is returned (what
    downscaling needs), so only the LR is held.
    """
    s = model.scale
    padded = model._pad(hr)
    b, _, height, width = padded.shape
    h, w = height // s, width // s
    lr = hr.new_empty((b, model.lr_channels, h, w))
    z = hr.new_empty((b, model.latent_channels, h, w)) if keep_latent else None
    for rows, cols, crow, ccol in tiles(h, w, tiling):
        hr_tile = padded[:, :, s * crow.start : s * crow.stop, s * ccol.start : s * ccol.stop]
        lr_tile, z_tile = model.encode(hr_tile)
        inner = (slice(None), slice(None), _inner(rows, crow), _inner(cols, ccol))
        lr[:, :, rows, cols] = lr_tile[inner]
        if z is not None:
            z[:, :, rows, cols] = z_tile[inner]
    return lr, z


def tiled_downscale(model: Rescaler, hr: Tensor, tiling: Tiling) -> Tensor:
    """:meth:`IRN.downscale` tile by tile: hr (B, 3, H, W) in [0, 1] -> quantised lr (B, 3, ceil(H/s), ceil(W/s))."""
    lr, _ = tiled_encode(model, hr, tiling, keep_latent=False)
    return quantize(lr)


def tiled_decode(model: Rescaler, lr: Tensor, z: Tensor, tiling: Tiling, size: tuple[int, int] | None = None) -> Tensor:
    """:meth:`IRN.decode` tile by tile: (lr (B, c, h, w), z) -> hr (B, 3, s h, s w), cropped to ``size``."""
    check_decode_inputs(lr, z, size, model.scale, model.latent_channels)
    s = model.scale
    b, _, h, w = lr.shape
    out_h, out_w = (s * h, s * w) if size is None else size
    hr = lr.new_empty((b, model.config.in_channels, out_h, out_w))
    for rows, cols, crow, ccol in tiles(h, w, tiling):
        if s * rows.start >= out_h or s * cols.start >= out_w:
            continue
        hr_tile = model.decode(lr[:, :, crow, ccol], z[:, :, crow, ccol])
        rr, cc = slice(s * rows.start, min(out_h, s * rows.stop)), slice(s * cols.start, min(out_w, s * cols.stop))
        ir, ic = _inner(rows, crow, s), _inner(cols, ccol, s)
        hr[:, :, rr, cc] = hr_tile[:, :, ir, ic][..., : rr.stop - rr.start, : cc.stop - cc.start]
    return hr


def tiled_upscale(
    model: Rescaler,
    lr: Tensor,
    tiling: Tiling,
    *,
    z: ZMode | Tensor = "auto",
    temperature: float = 1.0,
    seed: int | None = None,
    size: tuple[int, int] | None = None,
) -> Tensor:
    """:meth:`IRN.upscale` tile by tile (same arguments): lr (B, c, h, w) -> hr (B, 3, s h, s w) in [0, 1].

    The latent is :meth:`IRN.sample_latent` of the whole LR (the same draw as untiled: N(0, T^2) for IRN,
    the Gaussian mixture for SAIN), sliced per tile.
    """
    if lr.dim() != 4 or lr.shape[1] != model.lr_channels:
        raise ValueError(f"expected an LR batch (B, {model.lr_channels}, h, w), got shape {tuple(lr.shape)}")
    if isinstance(z, str) and z == "zero":
        latent = lr.new_zeros(1).expand(lr.shape[0], model.latent_channels, *lr.shape[-2:])
    else:
        latent = model.sample_latent(lr, z, temperature, seed)
    return tiled_decode(model, lr, latent, tiling, size).clamp_(0, 1)


# ------------------------------------------------------------------------------ memory estimate
#: bytes per HR pixel held by the fast path (irn.nn.fast.FastIRN) beyond its stripe buffers: the
#: flow tensor (3 floats per HR pixel) in a few live copies (input, output, their halves, the
#: padded image). Peak-RSS growth of whole-image passes (1024^2 to 3072x2048, shipped models,
#: after the input was allocated): 24-36 B/px for down, 57-60 B/px for up (its HR output included).
FAST_BYTES_PER_HR_PIXEL = 64
#: the same for the plain path, whose dense blocks hold 137-169 channels at the working resolution;
#: also the figure of the architectures without a fast path (SAIN, T-IRN: the same dense blocks at the
#: same resolution). Peak-RSS growth of one pass over 1024^2, official sizes, beside the plain IRN's in
#: the same run: SAIN x2 0.99-1.02 times it, x4 0.4-0.5 times, T-IRN x2 1.0, x4 1.0-1.15 times
PLAIN_BYTES_PER_HR_PIXEL = 320
#: the fast path's stripe working set (features of one stripe, oneDNN scratch), bytes; the same
#: runs' intercepts were 49-79 MiB
FAST_STRIPE_BYTES = 100 * 2**20


def estimate_memory(model: Rescaler, hr_height: int, hr_width: int) -> int:
    """Estimated peak bytes of one down or up pass over an HR-sized image, untiled, beyond the process baseline.

    Uses the fast-path figures when ``model`` is an :class:`irn.nn.fast.FastIRN`, else the
    plain path's (every other model: a plain IRN, SAIN, T-IRN). Rough (within about 30 %, see the
    README performance section), meant for choosing tiles.
    """

    s = model.scale
    pixels = math.ceil(hr_height / s) * s * math.ceil(hr_width / s) * s
    if isinstance(model, FastIRN):
        return FAST_BYTES_PER_HR_PIXEL * pixels + FAST_STRIPE_BYTES
    return PLAIN_BYTES_PER_HR_PIXEL * pixels


def image_buffer_bytes(model: Rescaler, hr_height: int, hr_width: int, op: Literal["down", "up"]) -> int:
    """Bytes of the whole-image fp32 tensors a tiled run keeps: ``down`` the HR input and the LR,
    ``up`` the LR, the latent z and the HR output."""
    s = model.scale
    lr_pixels = math.ceil(hr_height / s) * math.ceil(hr_width / s)
    plane = 4 * model.config.in_channels  # bytes per pixel of one fp32 image
    if op == "down":
        return plane * (hr_height * hr_width + lr_pixels)
    return plane * (lr_pixels + hr_height * hr_width) + 4 * model.latent_channels * lr_pixels


def tiling_for_budget(
    model: Rescaler, hr_height: int, hr_width: int, budget_bytes: int, overlap: int, op: Literal["down", "up"] = "up"
) -> Tiling | None:
    """None when the untiled ``op`` fits ``budget_bytes``, else the square tiling with the fewest
    tiles along the image's longer side that fits: tile = ceil(longer LR side / k) for the
    smallest k, so the tiles along that side are equal (no thin last tile).

    A tiling's cost is one tile's :func:`estimate_memory` plus :func:`image_buffer_bytes`.
    Raises ValueError when even a small tile does not fit.
    """
    if estimate_memory(model, hr_height, hr_width) <= budget_bytes:
        return None
    s = model.scale
    whole = image_buffer_bytes(model, hr_height, hr_width, op)
    longest = max(math.ceil(hr_height / s), math.ceil(hr_width / s))
    minimum = max(16, overlap)
    for count in range(1, longest // minimum + 1):
        tile = math.ceil(longest / count)
        side = s * (tile + 2 * overlap)
        if whole + estimate_memory(model, side, side) <= budget_bytes:
            return Tiling(tile=tile, overlap=overlap)
    raise ValueError(
        f"a {hr_width}x{hr_height} image does not fit in {budget_bytes / 2**20:.0f} MiB even in "
        f"{s * minimum}-pixel tiles (the whole-image buffers alone take {whole / 2**20:.0f} MiB)"
    )


def default_memory_budget() -> int:
    """Half of the machine's physical memory, in bytes (4 GiB where it cannot be read)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def plan_tiling(
    model: Rescaler,
    hr_height: int,
    hr_width: int,
    op: Literal["down", "up"],
    tile_pixels: int | None = None,
    max_memory: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    notes: list[str] | None = None,
) -> Tiling | None:
    """The tiling for one image of HR size (hr_height, hr_width), or None for the whole image.

    ``tile_pixels`` forces tiles of that HR side (rounded down to a multiple of the scale).
    Otherwise tiles are used only when :func:`estimate_memory` exceeds ``max_memory`` (default
    :func:`default_memory_budget`). When no tiling fits (the whole-image buffers alone exceed the
    budget), tiles of :data:`DEFAULT_TILE` are used: smaller ones would save little memory (a
    tile's working set is then small beside the buffers) at a large cost in time (the overlap is
    recomputed for every tile); a line saying so goes to ``notes``.
    """
    s = model.scale
    if tile_pixels is not None:
        return Tiling(tile=max(1, tile_pixels // s), overlap=overlap)
    budget = default_memory_budget() if max_memory is None else max_memory
    try:
        return tiling_for_budget(model, hr_height, hr_width, budget, overlap, op)
    except ValueError as exc:
        tiling = Tiling(tile=max(DEFAULT_TILE, overlap), overlap=overlap)
        if notes is not None:
            notes.append(f"{op}: {exc}; running in tiles of {s * tiling.tile} px, beyond the budget")
        return tiling


#: peak working memory of the compression restoration module (the official RRDB: 192-channel
#: concatenations, oneDNN scratch) per LR pixel, fp32 on a CPU: 4.3-4.9 KB measured at 128^2 and
#: 256^2 (peak-RSS growth of one inference pass)
RESTORER_BYTES_PER_LR_PIXEL = 4608


def tiled_apply(fn: Callable[[Tensor], Tensor], x: Tensor, tiling: Tiling) -> Tensor:
    """A same-size image operation ``fn`` ((B, C, h, w) -> (B, C', h, w)) tile by tile on the
    tiles' own grid (scale 1): each output pixel from the one tile whose core holds it. With
    ``tiling.overlap`` at least ``fn``'s receptive radius the result is the untiled one."""
    height, width = x.shape[-2:]
    out: Tensor | None = None
    for rows, cols, context_rows, context_cols in tiles(height, width, tiling):
        y = fn(x[..., context_rows, context_cols])
        if out is None:
            out = y.new_empty((*y.shape[:-2], height, width))
        out[..., rows, cols] = y[..., _inner(rows, context_rows), _inner(cols, context_cols)]
    assert out is not None  # an image has at least one tile
    return out


def plan_restorer_tiling(
    height: int,
    width: int,
    overlap: int,
    tile: int | None = None,
    max_memory: int | None = None,
    notes: list[str] | None = None,
) -> Tiling | None:
    """The tiling of a compression restoration module's pass over an (height x width) LR, or None
    for the whole image: ``tile`` (LR pixels) forces it; otherwise tiles only when
    :data:`RESTORER_BYTES_PER_LR_PIXEL` times the pixels exceeds ``max_memory`` (default
    :func:`default_memory_budget`), the largest equal tiles that fit (at least 64 LR pixels, with a
    line in ``notes`` when even those do not fit)."""
    if tile is not None:
        return Tiling(tile=max(1, tile), overlap=overlap)
    budget = default_memory_budget() if max_memory is None else max_memory
    if RESTORER_BYTES_PER_LR_PIXEL * height * width <= budget:
        return None
    longest = max(height, width)
    whole = 3 * 4 * 2 * height * width  # the decoded LR and the restored one, fp32
    for count in range(1, max(1, longest // 64) + 1):
        side = math.ceil(longest / count)
        if whole + RESTORER_BYTES_PER_LR_PIXEL * (side + 2 * overlap) ** 2 <= budget:
            return Tiling(tile=side, overlap=overlap)
    if notes is not None:
        notes.append(f"restore: {budget / 2**20:.0f} MiB is not enough even for 64-pixel tiles; running in them")
    return Tiling(tile=64, overlap=overlap)
