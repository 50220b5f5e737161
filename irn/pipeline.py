"""The one place where a model meets an image: device, the fast CPU path, tiling under a memory
budget, alpha, the latent and a JPEG LR's restoration.

:func:`run_model` is what ``irn.api``, ``irn rescale`` and ``irn craft`` call to run a network on
an image tensor; :func:`restore_lr` (:func:`run_restorer`) is how a decoded JPEG LR meets the
compression restoration module a model carries (``irn.api``, ``irn rescale``, ``irn eval``);
:func:`for_inference` is the one rule for which implementation runs it (for the IRN family the
accelerated :class:`irn.nn.fast.FastIRN` on a CPU, the plain :class:`irn.nn.network.IRN` elsewhere; every
other :class:`irn.nn.network.Rescaler`, SAIN and T-IRN, its own plain flow);
:func:`resize_alpha` is how transparency follows the image.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Literal

import torch
from torch import Tensor

from irn.imaging.resize import imresize
from irn.imaging.tiling import plan_restorer_tiling, plan_tiling, tiled_apply, tiled_downscale, tiled_upscale
from irn.nn.fast import FastIRN, fast_or_plain, return_freed_memory_promptly
from irn.nn.network import IRN, Rescaler, ZMode, quantize
from irn.nn.restoration import CompressionRestorer
from irn.zoo import restorer_of

Op = Literal["down", "up"]
#: the note a restored JPEG LR leaves (irn rescale prints it)
RESTORED_NOTE = "JPEG LR restored by the model's compression restoration module before upscaling"


def model_device(model: Rescaler) -> torch.device:
    """The device of the model's weights (the CPU for a weightless model)."""
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return torch.device("cpu") if first is None else first.device


def model_dtype(model: Rescaler) -> torch.dtype:
    """The floating dtype of the model's weights (float32 for a weightless model)."""
    return next((p.dtype for p in model.parameters()), torch.float32)


#: one fast twin per model (it shares the model's weights and rebuilds its prepared constants
#: whenever a parameter changes, so a model trained further after a call stays right)
_FAST: weakref.WeakKeyDictionary[IRN, FastIRN] = weakref.WeakKeyDictionary()


def for_inference(model: Rescaler, *, release_memory: bool = True) -> Rescaler:
    """The implementation that runs ``model`` for inference: for an IRN on a CPU the fast path (the same
    outputs, faster, less memory; glibc told to return freed image buffers at once), else the
    model itself. A :class:`FastIRN` (what :func:`irn.load` returns) is returned as it is, and so is
    a model with an operation the fast path does not know (:func:`irn.nn.fast.fast_or_plain`) and a
    model of another architecture (SAIN, T-IRN: their own, plain, flow).

    ``release_memory=False`` leaves glibc's malloc as it is (:func:`irn.nn.fast.return_freed_memory_promptly`
    is process-wide: in a training process it would give every step's large buffers their own mmap,
    measured 7-9% more CPU time per step, so validation passes False)."""
    if isinstance(model, FastIRN) or not isinstance(model, IRN) or model_device(model).type != "cpu":
        return model
    fast = _FAST.get(model)
    if fast is None or fast.operations is not model.operations:
        candidate = fast_or_plain(model)
        if not isinstance(candidate, FastIRN):  # an operation the fast path does not know
            return model
        if release_memory:
            return_freed_memory_promptly()
        fast = _FAST[model] = candidate
    fast.metadata = dict(getattr(model, "metadata", {}) or {})
    return fast


def resize_alpha(alpha: Tensor, factor: float, size: tuple[int, int] | None = None) -> Tensor:
    """Alpha (..., H, W) in [0, 1] resized by ``factor`` with plain MATLAB bicubic, clamped, cropped to ``size``."""
    out = imresize(alpha, scale=factor).clamp(0, 1)
    if size is not None:
        out = out[..., : size[0], : size[1]]
    return out


def run_model(
    model: Rescaler,
    x: Tensor,
    op: Op,
    *,
    z: ZMode | Tensor = "sample",
    temperature: float = 1.0,
    seed: int | None = None,
    size: tuple[int, int] | None = None,
    tile: int | None = None,
    max_memory: int | None = None,
    notes: list[str] | None = None,
) -> Tensor:
    """Run ``model`` on an image batch.

    ``op="down"``: x (B, 3, H, W) in [0, 1] -> LR (B, c, ceil(H/s), ceil(W/s)) on 8-bit levels.
    ``op="up"``: x (B, c, h, w) -> HR (B, 3, s h, s w) in [0, 1], cropped to ``size`` if given; the latent
    per ``z`` (a sampled one is the model's own distribution: N(0, T^2) for IRN, SAIN's mixture).
    The work happens on the model's device and in its dtype (a bf16 model gets bf16 pixels) under
    inference mode; the result is float32 on the input's device. With ``tile`` (HR pixels), or when
    the estimated working memory exceeds ``max_memory`` bytes (default: half the machine's RAM), the
    model runs on overlapping tiles (:mod:`irn.imaging.tiling`); a line saying so goes to ``notes``.
    """
    s = model.scale
    hr_h, hr_w = x.shape[-2:] if op == "down" else (size or (s * x.shape[-2], s * x.shape[-1]))
    tiling = plan_tiling(model, hr_h, hr_w, op, tile_pixels=tile, max_memory=max_memory, notes=notes)
    if tiling is not None and notes is not None:
        notes.append(f"{op}: tiles of {s * tiling.tile} px with {s * tiling.overlap} px overlap")
    with torch.inference_mode():
        xin = x.to(model_device(model), model_dtype(model))
        if op == "down":
            y = model.downscale(xin) if tiling is None else tiled_downscale(model, xin, tiling)
        elif tiling is None:
            y = model.upscale(xin, z=z, temperature=temperature, seed=seed, size=size)
        else:
            y = tiled_upscale(model, xin, tiling, z=z, temperature=temperature, seed=seed, size=size)
        return y.float().to(x.device)


def run_restorer(
    restorer: CompressionRestorer,
    lr: Tensor,
    *,
    tile: int | None = None,
    max_memory: int | None = None,
    notes: list[str] | None = None,
) -> Tensor:
    """A decoded JPEG LR (B, 3, h, w) in [0, 1] -> restored by ``restorer``, on 8-bit levels, float32
    on the input's device.

    Runs on the restorer's device and dtype under inference mode; on overlapping tiles (``tile`` LR
    pixels, or when its working memory would exceed ``max_memory`` bytes, default half the RAM) with
    the module's full receptive radius as context, so tiles give the untiled result exactly (up to
    float rounding); a line saying so goes to ``notes``."""
    param = next(restorer.parameters())
    height, width = lr.shape[-2:]
    tiling = plan_restorer_tiling(
        height, width, restorer.receptive_radius, tile=tile, max_memory=max_memory, notes=notes
    )
    if tiling is not None and notes is not None:
        notes.append(f"restore: tiles of {tiling.tile} LR px with {tiling.overlap} px context")

    def restore(x: Tensor) -> Tensor:
        return restorer(x.to(param.device, param.dtype)).clamp(0, 1).float()

    with torch.inference_mode():
        out = restore(lr) if tiling is None else tiled_apply(restore, lr, tiling)
    return quantize(out).to(lr.device)


def restore_lr(
    model: Rescaler,
    lr: Tensor,
    *,
    tile: int | None = None,
    max_memory: int | None = None,
    notes: list[str] | None = None,
) -> Tensor:
    """A decoded JPEG LR restored by the compression restoration module ``model`` carries
    (:func:`run_restorer`; ``tile`` in LR pixels); ``lr`` itself when it carries none."""
    restorer = restorer_of(model)
    if restorer is None:
        return lr
    if notes is not None:
        notes.append(RESTORED_NOTE)
    return run_restorer(restorer, lr, tile=tile, max_memory=max_memory, notes=notes)
