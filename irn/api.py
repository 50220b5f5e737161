"""Image-level convenience on top of any rescaler :func:`irn.load` returns (:class:`irn.IRN`, SAIN, T-IRN):
PIL images, numpy arrays and tensors in, the same kind out.

>>> model = irn.load("x2")
>>> lr = irn.downscale_image(model, Image.open("photo.png"))      # PIL in, PIL out
>>> hr = irn.upscale_image(model, lr, seed=0)                      # s x the LR size
>>> rec = irn.roundtrip_image(model, np.asarray(Image.open("photo.png")))  # uint8 array in and out

Kinds: a PIL image comes back as an RGB (or RGBA) PIL image; a numpy array (H, W[, C]) comes
back as an (H', W', 3) array (4 channels when it had alpha) of the same dtype (uint8, uint16,
or float in [0, 1]); a tensor (3, H, W) or (B, 3, H, W) in [0, 1] comes back as a tensor of
the same rank. Greyscale becomes RGB. Alpha (PIL modes with transparency, 2- or 4-channel
arrays) is resized with plain MATLAB bicubic (:mod:`irn.imaging.resize`) and re-attached.

Sizes that are not multiples of the scale s are reflect-padded at the bottom and right:
the LR has ceil(H/s) x ceil(W/s) pixels; :func:`upscale_image` returns s x the LR size unless
``size=(H, W)`` crops it; :func:`roundtrip_image` crops back to the input size.

The same functions run the other networks ``irn.load`` returns: the official x3 (scale 3),
IRN-Color models (scale 1), whose "LR" is the grey image: ``downscale_image`` gives a mode-L PIL image
or an (H, W) array (LA / (H, W, 2) with alpha), and ``upscale_image`` reads a colour input as its
BT.601 luma; and the newer rescalers, SAIN (``irn.load("sain-x2-jpeg")``: ``z="auto"`` draws from its
Gaussian mixture; ``roundtrip_image(..., jpeg=Q)`` or ``webp=Q`` stores the LR as its paper does) and
T-IRN (``z="auto"`` is z = 0), which run their own plain flow (the fast CPU path is IRN's).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from irn.errors import InputError
from irn.imaging.io import lossy_roundtrip, to_pil, to_tensor_rgba
from irn.nn.linear import rgb_to_luma
from irn.nn.network import ZMode, quantize
from irn.pipeline import for_inference, model_device, resize_alpha, restore_lr, run_model
from irn.zoo import restorer_of

if TYPE_CHECKING:
    from irn.nn.network import Rescaler

ImageLike = TypeVar("ImageLike", Image.Image, np.ndarray, Tensor)


def _split(image: Image.Image | np.ndarray) -> tuple[Tensor, Tensor | None]:
    if not isinstance(image, (Image.Image, np.ndarray)):
        hint = (
            " (a path? read it with irn.imaging.io.read_image or PIL.Image.open)"
            if isinstance(image, (str, Path))
            else ""
        )
        raise InputError(f"expected a PIL image or a numpy array (H, W[, C]), got {type(image).__name__}{hint}")
    try:
        rgb, alpha = to_tensor_rgba(image)
    except (TypeError, ValueError) as exc:  # unsupported dtype, not (H, W[, C])
        raise InputError(str(exc)) from None
    if rgb.shape[-1] == 0 or rgb.shape[-2] == 0:
        raise InputError(f"empty image ({rgb.shape[-1]}x{rgb.shape[-2]} pixels)")
    return rgb[None], alpha


def _join(like: Image.Image | np.ndarray, rgb: Tensor, alpha: Tensor | None) -> Image.Image | np.ndarray:
    """(1, 3, H, W) [+ (1, H, W) alpha] -> the kind of ``like``."""
    if isinstance(like, Image.Image):
        return to_pil(rgb[0], alpha)
    arr = rgb[0].permute(1, 2, 0)
    if arr.shape[-1] == 1 and alpha is None:  # an IRN-Color grey image: (H, W), as PIL's mode L reads
        arr = arr[..., 0]
    if alpha is not None:
        arr = torch.cat([arr, alpha.reshape(*alpha.shape[-2:], 1)], dim=2)
    arr_np = arr.detach().float().clamp(0, 1).cpu().numpy()
    dtype = np.asarray(like).dtype
    if dtype == np.uint8:
        return (arr_np * 255).round().astype(np.uint8)
    if dtype == np.uint16:
        return (arr_np * 65535).round().astype(np.uint16)
    return arr_np.astype(dtype if np.issubdtype(dtype, np.floating) else np.float32)


def _apply(
    model: Rescaler,
    image: ImageLike,
    op: Literal["down", "up", "roundtrip"],
    z: ZMode | Tensor,
    temperature: float,
    seed: int | None,
    size: tuple[int, int] | None,
    max_memory: int | None,
    restore: bool | None = None,
    lossy: tuple[str, int] | None = None,
) -> ImageLike:
    if restore and restorer_of(model) is None:
        raise InputError(
            "restore=True: the model carries no compression restoration module (train one with "
            "model.restorer, or load an IRN-Compression model)"
        )
    if restore is None:  # an LR decoded from a JPEG file
        restore = isinstance(image, Image.Image) and image.format == "JPEG"
    device = model_device(model)
    s = model.scale
    if isinstance(image, Tensor):
        if not image.is_floating_point():
            raise InputError(
                f"a tensor image must be floating point in [0, 1], got {image.dtype} (8-bit pixels: divide by 255, "
                "or pass a numpy array or PIL image)"
            )
        x = image if image.dim() == 4 else image[None]
        alpha = None
    else:
        x, alpha = _split(image)
    x = x.to(device=device, dtype=torch.float32)
    if op == "up" and model.lr_channels == 1 and x.shape[1] == 3:  # IRN-Color: the grey image's luma
        x = quantize(rgb_to_luma(x))
    h, w = x.shape[-2:]
    net = for_inference(model)
    if isinstance(z, str) and z == "auto":
        z = net.recommended_z()
    up = {"z": z, "temperature": temperature, "seed": seed, "max_memory": max_memory}
    if op == "down":
        out = run_model(net, x, "down", max_memory=max_memory)
        if alpha is not None:
            alpha = quantize(resize_alpha(alpha, 1 / s, size=tuple(out.shape[-2:])))
    elif op == "up":
        if restore:
            x = restore_lr(model, x, max_memory=max_memory)
        out = run_model(net, x, "up", size=size, **up)
        if alpha is not None:
            alpha = resize_alpha(alpha, s, size=tuple(out.shape[-2:]))
    else:
        lr = run_model(net, x, "down", max_memory=max_memory)
        if lossy is not None:  # what a JPEG/WebP of the LR holds; a JPEG restored as irn rescale --format jpg does
            lr = lossy_roundtrip(lr, *lossy)
            if lossy[0] == "JPEG":
                lr = restore_lr(model, lr, max_memory=max_memory)
        out = run_model(net, lr, "up", size=(h, w), **up)
        if alpha is not None:
            small = quantize(resize_alpha(alpha, 1 / s))
            alpha = resize_alpha(small, s, size=(h, w))
    if isinstance(image, Tensor):
        return out if image.dim() == 4 else out[0]  # type: ignore[return-value]
    return _join(image, out, alpha)  # type: ignore[return-value]


def downscale_image(model: Rescaler, image: ImageLike, *, max_memory: int | None = None) -> ImageLike:
    """HR image -> LR image of ceil(H/s) x ceil(W/s), on 8-bit levels (``model.downscale``).

    On a CPU the fast path runs it (:func:`irn.pipeline.for_inference`); an image whose working
    memory would exceed ``max_memory`` bytes (default: half the machine's RAM) runs in tiles."""
    return _apply(model, image, "down", "sample", 1.0, None, None, max_memory)


def upscale_image(
    model: Rescaler,
    image: ImageLike,
    *,
    z: ZMode | Tensor = "auto",
    temperature: float = 1.0,
    seed: int | None = None,
    size: tuple[int, int] | None = None,
    max_memory: int | None = None,
    restore: bool | None = None,
) -> ImageLike:
    """LR image (h x w) -> HR image of s h x s w (cropped to ``size`` = (H, W) if given).

    ``z="sample"`` draws the latent from the model's distribution, times ``temperature`` (N(0, 1) for IRN,
    the Gaussian mixture for SAIN; reproducible with ``seed``), ``z="zero"`` uses zeros, a tensor
    (B, 3(s^2-1), h, w) is used as given; ``"auto"`` (default) follows ``model.recommended_z()`` ("zero"
    for T-IRN).

    ``restore``: an LR stored as a JPEG is first restored by the compression restoration module the
    model carries (IRN-Compression, ``irn.load("x2-jpeg")``-style models trained with
    ``model.restorer``). None (default): when ``image`` is a PIL image read from a JPEG file and the
    model carries one; True with a model that carries none is an error.
    """
    return _apply(model, image, "up", z, temperature, seed, size, max_memory, restore=restore)


def roundtrip_image(
    model: Rescaler,
    image: ImageLike,
    *,
    z: ZMode | Tensor = "auto",
    temperature: float = 1.0,
    seed: int | None = None,
    max_memory: int | None = None,
    jpeg: int | None = None,
    webp: int | None = None,
) -> ImageLike:
    """Downscale then upscale; the reconstruction has the input's size.

    ``jpeg`` (a quality 1-100): the LR is stored as a JPEG of that quality in between (what a JPEG
    thumbnail holds) and restored by the model's compression restoration module when it carries one.
    ``webp`` (a quality 1-100): the same with a WebP (Pillow's lossy WebP, as SAIN's WebP model is
    scored); not with ``jpeg``.
    """
    lossy = None
    for name, fmt, title, quality in (("jpeg", "JPEG", "JPEG", jpeg), ("webp", "WEBP", "WebP", webp)):
        if quality is None:
            continue
        if not (isinstance(quality, int) and not isinstance(quality, bool) and 1 <= quality <= 100):
            raise InputError(f"{name} must be a {title} quality from 1 to 100, got {quality!r}", param=name)
        if lossy is not None:
            raise InputError("give jpeg or webp, not both: the LR is stored in one format", param=name)
        lossy = (fmt, quality)
    return _apply(model, image, "roundtrip", z, temperature, seed, None, max_memory, lossy=lossy)
