"""The light runtime: an exported rescaler (``irn export MODEL --format onnx -o DIR``: IRN, x3, IRN-Color,
SAIN, T-IRN) run with onnxruntime, numpy and Pillow alone; torch is never imported.

    from irn.onnx import load                   # irn.onnx.runtime's names, from the package
    model = load("x2_onnx")                     # DIR with encoder.onnx, decoder.onnx, model.json
    lr = model.downscale(hr)                    # (B, 3, H, W) float32 in [0, 1] -> 8-bit levels
    hr = model.upscale(lr, z="zero")

    irn-onnx down x2_onnx photo.png -o thumb.png
    irn-onnx up x2_onnx thumb.png -o big.png
    irn-onnx roundtrip x2_onnx photo.png -o back.png

Images are handled as ``irn rescale`` handles them: the same checked reader (:mod:`irn.imaging.files`;
EXIF orientation, grey/palette/16-bit conversion, multi-frame and over-the-limit files refused in one
line), sizes that are not multiples of the scale padded at the bottom and right as
:meth:`irn.nn.network.IRN.encode` pads them (reflect, or replicate when the image is too small to
reflect), the LR on 8-bit levels, alpha resized with MATLAB bicubic (:func:`irn.imaging.kernels.imresize_array`,
the taps and weights of the torch resize) and rounded to 8 bits, outputs written atomically. Two
differences: a sampled latent comes from numpy's generator (the same distribution as torch's draws,
not the same numbers: N(0, 1), or SAIN's Gaussian mixture from the parameters ``model.json`` holds), and
there is no tiling (``--max-pixels`` bounds the work). ``z="auto"`` is the model's recommended latent
(T-IRN and IRN-Color: zero). Writing the LR as JPEG or WebP warns unless the model is made for that format
(``model.json``'s ``lr_formats``, written by the exporter from :func:`irn.zoo.purpose.lr_formats`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from irn.errors import InputError, IRNError
from irn.imaging.files import (
    ALPHA_FORMATS,
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    ImageTooLargeError,
    array_to_uint8,
    image_format,
    megapixels,
    pil_from_uint8,
    read_array_checked,
    save_pil,
)
from irn.imaging.kernels import imresize_array

FORMAT = "irn-onnx"  # model.json's "format" (irn.onnx.export.FORMAT)
SUPPORTED_VERSION = 1
ZMode = Literal["auto", "sample", "zero"]
LOSSY = {"JPEG", "WEBP"}
#: the latent distributions this runtime draws from (model.json's "latent"; none given: "normal")
DISTRIBUTIONS = ("normal", "gaussian_mixture")


class OnnxModelError(IRNError):
    """A folder that is not a readable ONNX export of irn."""


def pad_amounts(h: int, w: int, s: int) -> tuple[int, int, str]:
    """(bottom, right, numpy pad mode) that :meth:`irn.nn.network.IRN._pad` applies to an H x W image."""
    ph, pw = (-h) % s, (-w) % s
    return ph, pw, "reflect" if ph < h and pw < w else "edge"


def pad(hr: np.ndarray, s: int) -> np.ndarray:
    """(B, C, H, W) padded at the bottom and right to multiples of ``s``, as the torch network pads."""
    ph, pw, mode = pad_amounts(hr.shape[-2], hr.shape[-1], s)
    if not (ph or pw):
        return hr
    return np.pad(hr, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)  # type: ignore[call-overload]


def quantize(x: np.ndarray) -> np.ndarray:
    """Clamp to [0, 1] and round to 8-bit levels (:func:`irn.nn.network.quantize`)."""
    return (np.round(np.clip(x, 0, 1) * np.float32(255)) / np.float32(255)).astype(np.float32)


class OnnxIRN:
    """An exported model: ``encode``/``decode`` and ``downscale``/``upscale`` as on
    :class:`irn.nn.network.Rescaler`, on numpy float32 arrays."""

    def __init__(self, folder: str | os.PathLike[str], *, threads: int | None = None) -> None:
        self.folder = Path(folder)
        doc = _read_model_json(self.folder)
        self.doc = doc
        self.kind: str = doc["kind"]
        self.scale: int = int(doc["scale"])
        self.in_channels: int = int(doc["in_channels"])
        self.lr_channels: int = int(doc["lr_channels"])
        self.latent_channels: int = int(doc["latent_channels"])
        self.card: dict[str, Any] = dict(doc.get("card") or {})
        self.luma: list[float] | None = doc.get("luma")
        self._recommended: str = doc.get("recommended_z", "sample")
        self.latent: dict[str, Any] = _latent_of(doc, self.folder / "model.json")
        self.lr_formats: tuple[str, ...] = tuple(str(f) for f in doc.get("lr_formats") or ())
        try:
            import onnxruntime as ort
        except ImportError:
            raise IRNError("the ONNX runtime needs onnxruntime: pip install onnxruntime") from None
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        self._sessions = {}
        for part in ("encoder", "decoder"):
            path = self.folder / doc["files"][part]
            try:
                self._sessions[part] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001 - onnxruntime's errors for a missing or damaged graph
                reason = " ".join(str(exc).split())[:200]
                raise OnnxModelError(f"{path}: cannot load the {part} graph ({reason})") from None

    def recommended_z(self) -> str:
        return "zero" if self._recommended == "zero" else "sample"

    # ------------------------------------------------------------------ arrays
    def _check(self, name: str, x: np.ndarray, channels: int) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[1] != channels:
            raise InputError(f"expected {name} (B, {channels}, H, W), got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise InputError(f"{name} must be a float array in [0, 1], got {x.dtype}")
        return np.ascontiguousarray(x, dtype=np.float32)

    def encode(self, hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """hr (B, 3, H, W) in [0, 1] -> (lr on 8-bit levels, z), (B, ·, ceil(H/s), ceil(W/s))."""
        x = pad(self._check("an image batch", hr, self.in_channels), self.scale)
        lr, z = self._sessions["encoder"].run(None, {"hr": x})
        return lr, z

    def downscale(self, hr: np.ndarray) -> np.ndarray:
        return self.encode(hr)[0]

    def sample_latent(
        self, lr: np.ndarray, z: ZMode | np.ndarray = "auto", temperature: float = 1.0, seed: int | None = None
    ) -> np.ndarray:
        shape = (lr.shape[0], self.latent_channels, *lr.shape[-2:])
        if isinstance(z, str) and z == "auto":
            z = self.recommended_z()  # type: ignore[assignment]
        if isinstance(z, np.ndarray):
            if z.shape != shape:
                raise InputError(f"z must have shape {shape}, got {z.shape}", param="z")
            return np.ascontiguousarray(z, dtype=np.float32)
        if z == "zero":
            return np.zeros(shape, np.float32)
        if z == "sample":
            if not (np.isfinite(temperature) and temperature >= 0):
                raise InputError(f"temperature must be a finite number >= 0, got {temperature}", param="temperature")
            rng = np.random.default_rng(seed)
            if self.latent["distribution"] == "gaussian_mixture":  # SAIN: a component per element, then its normal
                cdf = np.cumsum(np.asarray(self.latent["weights"], np.float64))
                k = np.minimum(np.searchsorted(cdf, rng.random(shape), side="right"), len(cdf) - 1)
                eps = rng.standard_normal(shape, dtype=np.float32)
                means = np.asarray(self.latent["means"], np.float32)
                stds = np.asarray(self.latent["stds"], np.float32)
                return ((means[k] + stds[k] * eps) * np.float32(temperature)).astype(np.float32)
            draws = rng.standard_normal(shape, dtype=np.float32)
            return draws * np.float32(temperature)
        raise InputError(f"z must be 'sample', 'zero', 'auto' or an array, got {z!r}", param="z")

    def decode(self, lr: np.ndarray, z: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        lr = self._check("an LR batch", lr, self.lr_channels)
        (hr,) = self._sessions["decoder"].run(None, {"lr": lr, "z": np.ascontiguousarray(z, dtype=np.float32)})
        return hr[..., : size[0], : size[1]] if size is not None else hr

    def upscale(
        self,
        lr: np.ndarray,
        *,
        z: ZMode | np.ndarray = "auto",
        temperature: float = 1.0,
        seed: int | None = None,
        size: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """lr (B, c, h, w) -> hr (B, 3, s h, s w) in [0, 1], cropped to ``size``."""
        lr = self._check("an LR batch", lr, self.lr_channels)
        return self.decode(lr, self.sample_latent(lr, z, temperature, seed), size)


def _read_model_json(folder: Path) -> dict[str, Any]:
    path = folder / "model.json"
    if not folder.is_dir():
        raise OnnxModelError(f"{folder}: no such folder (an ONNX export: irn export MODEL --format onnx -o DIR)")
    if not path.is_file():
        raise OnnxModelError(f"{folder}: no model.json (not an ONNX export of irn, or an unfinished one)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OnnxModelError(f"{path}: damaged ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise OnnxModelError(f"{path}: not the model.json of an irn ONNX export")
    version = doc.get("format_version")
    if not isinstance(version, int) or version > SUPPORTED_VERSION:
        raise OnnxModelError(f"{path}: format version {version!r} is not one this runtime reads ({SUPPORTED_VERSION})")
    missing = [k for k in ("kind", "scale", "in_channels", "lr_channels", "latent_channels", "files") if k not in doc]
    if missing:
        raise OnnxModelError(f"{path}: damaged (missing {', '.join(missing)})")
    return doc


def _latent_of(doc: dict[str, Any], where: Path) -> dict[str, Any]:
    """model.json's ``latent`` (``where``), checked: N(0, 1) when absent (exports before it existed); a
    mixture needs weights, means and standard deviations of one length."""
    latent = doc.get("latent") or {"distribution": "normal"}
    kind = latent.get("distribution") if isinstance(latent, dict) else None
    if kind not in DISTRIBUTIONS:
        raise OnnxModelError(
            f"{where}: latent distribution {kind!r} is not one this runtime draws ({', '.join(DISTRIBUTIONS)}): "
            "upgrade irn"
        )
    if kind == "gaussian_mixture":
        try:
            parts = [np.asarray(latent[k], np.float64) for k in ("weights", "means", "stds")]
        except (KeyError, TypeError, ValueError):
            raise OnnxModelError(f"{where}: damaged latent (a mixture needs weights, means and stds)") from None
        if any(p.ndim != 1 or len(p) != len(parts[0]) or len(p) == 0 or not np.isfinite(p).all() for p in parts):
            raise OnnxModelError(f"{where}: damaged latent (weights, means and stds of one length, finite)")
    return latent


def load(folder: str | os.PathLike[str], *, threads: int | None = None) -> OnnxIRN:
    """The exported model in ``folder`` (``encoder.onnx``, ``decoder.onnx``, ``model.json``)."""
    return OnnxIRN(folder, threads=threads)


# ---------------------------------------------------------------------- files
def resize_alpha(alpha: np.ndarray, factor: float, size: tuple[int, int] | None = None) -> np.ndarray:
    """Alpha (H, W) in [0, 1] resized by ``factor`` with MATLAB bicubic, clamped, cropped to ``size``
    (:func:`irn.pipeline.resize_alpha`)."""
    out = np.clip(imresize_array(alpha, scale=factor), 0, 1)
    return out[: size[0], : size[1]] if size is not None else out


def _to_pil(x: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    """(C, H, W) in [0, 1] (C = 1 or 3) and alpha (H, W) -> an 8-bit PIL image (L, LA, RGB or RGBA)."""
    return pil_from_uint8(array_to_uint8(x), array_to_uint8(alpha[None]) if alpha is not None else None)


def _lr_alpha(alpha: np.ndarray | None, model: OnnxIRN, lr: np.ndarray) -> np.ndarray | None:
    """The LR's alpha: the image's resized to the LR's size, on 8-bit levels (as ``irn rescale down``)."""
    return quantize(resize_alpha(alpha, 1 / model.scale, size=lr.shape[-2:])) if alpha is not None else None


def _check_output(path: Path, alpha: np.ndarray | None) -> None:
    try:
        fmt = image_format(path)
    except ValueError:
        raise InputError(f"{path}: unknown image suffix {path.suffix!r} (use .png)") from None
    if alpha is not None and fmt not in ALPHA_FORMATS:
        raise InputError(f"{path}: {fmt} cannot store the image's alpha channel (use .png)")


def _read(path: Path, max_pixels: int | None, what: str, s: int) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        rgb, alpha, _ = read_array_checked(path, max_pixels)
    except ImageTooLargeError as exc:
        if what == "LR":
            raise ImageReadError(
                f"{exc.path}: {exc.width}x{exc.height} LR would upscale to {exc.width * s}x{exc.height * s}, over the "
                f"limit of {megapixels((max_pixels or 0) * s * s)} (raise it with --max-pixels)"
            ) from None
        raise ImageReadError(f"{exc} (raise it with --max-pixels)") from None
    return rgb, alpha


def _as_lr_input(model: OnnxIRN, rgb: np.ndarray) -> np.ndarray:
    """A read LR file as the decoder's input: the grey image's luma for a colour model."""
    if model.lr_channels == 1:
        if model.luma is None:
            raise OnnxModelError(f"{model.folder / 'model.json'}: a colour model without its 'luma' weights")
        weights = np.asarray(model.luma, dtype=np.float32)
        return quantize(np.tensordot(weights, rgb, axes=1)[None])
    return rgb


def downscale_file(
    model: OnnxIRN,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> dict[str, Any]:
    """``irn rescale down`` with the exported model: the LR image of ``src`` written to ``dst``."""
    src, dst = Path(src), Path(dst)
    rgb, alpha = _read(src, max_pixels, "HR", model.scale)
    _check_output(dst, alpha)
    lr = model.downscale(rgb[None])[0]
    lr_alpha = _lr_alpha(alpha, model, lr)
    notes = []
    if image_format(dst) in LOSSY and image_format(dst) not in model.lr_formats:
        notes.append(f"the LR image written as {image_format(dst)}: IRN's LR image does not survive lossy compression")
    save_pil(_to_pil(lr, lr_alpha), dst)
    return {
        "input": str(src),
        "lr": str(dst),
        "size": list(rgb.shape[-2:]),
        "lr_size": list(lr.shape[-2:]),
        "notes": notes,
    }


def upscale_file(
    model: OnnxIRN,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    z: ZMode = "auto",
    temperature: float = 1.0,
    seed: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> dict[str, Any]:
    """``irn rescale up`` with the exported model: ``src`` (an LR image) upscaled s times into ``dst``."""
    src, dst = Path(src), Path(dst)
    s = model.scale
    limit = max(1, max_pixels // (s * s)) if max_pixels is not None else None
    rgb, alpha = _read(src, limit, "LR", s)
    _check_output(dst, alpha)
    hr = model.upscale(_as_lr_input(model, rgb)[None], z=z, temperature=temperature, seed=seed)[0]
    hr_alpha = resize_alpha(alpha, s) if alpha is not None else None
    save_pil(_to_pil(hr, hr_alpha), dst)
    return {"input": str(src), "hr": str(dst), "lr_size": list(rgb.shape[-2:]), "hr_size": list(hr.shape[-2:])}


def roundtrip_file(
    model: OnnxIRN,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    z: ZMode = "auto",
    temperature: float = 1.0,
    seed: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> dict[str, Any]:
    """``irn rescale roundtrip``: down, the 8-bit LR, up, cropped back to the input's size; with its PSNR-RGB."""
    src, dst = Path(src), Path(dst)
    rgb, alpha = _read(src, max_pixels, "HR", model.scale)
    _check_output(dst, alpha)
    h, w = rgb.shape[-2:]
    lr = model.downscale(rgb[None])
    hr = model.upscale(lr, z=z, temperature=temperature, seed=seed, size=(h, w))[0]
    lr_alpha = _lr_alpha(alpha, model, lr)
    hr_alpha = resize_alpha(lr_alpha, model.scale, size=(h, w)) if lr_alpha is not None else None
    save_pil(_to_pil(hr, hr_alpha), dst)
    err = float(np.mean((quantize(hr) - rgb) ** 2))
    psnr = 10 * np.log10(1 / err) if err > 0 else float("inf")
    return {"input": str(src), "hr": str(dst), "size": [h, w], "psnr_rgb": round(psnr, 4)}


# ---------------------------------------------------------------------- command
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="irn-onnx",
        description="Rescale images with an ONNX export of an IRN (onnxruntime, numpy and Pillow; no torch).",
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="{down,up,roundtrip}")
    for action, text in (
        ("down", "HR image -> its LR image (8-bit, 1/s the size)"),
        ("up", "LR image -> HR image, s times the size"),
        ("roundtrip", "down then up, cropped back to the input's size; prints PSNR-RGB"),
    ):
        a = sub.add_parser(action, help=text, description=text)
        a.add_argument("model", help="the folder that irn export --format onnx wrote")
        a.add_argument("input", help="image file")
        a.add_argument("-o", "--output", required=True, help="image file to write (PNG keeps the LR intact)")
        if action != "down":
            a.add_argument("--z", choices=["auto", "sample", "zero"], default="auto", help="latent (auto: the model's)")
            a.add_argument("--temperature", type=float, default=1.0, help="std of sampled z (1.0)")
            a.add_argument("--seed", type=int, default=None, help="seed of sampled z")
        a.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="pixel limit of the HR image")
        a.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: its own)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        model = load(args.model, threads=args.threads)
        src, dst = Path(args.input), Path(args.output)
        if dst.resolve() == src.resolve():
            raise InputError(f"-o {dst} is the input: writing it would overwrite it")
        if args.action == "down":
            info = downscale_file(model, src, dst, max_pixels=args.max_pixels)
        else:
            fn = upscale_file if args.action == "up" else roundtrip_file
            info = fn(
                model, src, dst, z=args.z, temperature=args.temperature, seed=args.seed, max_pixels=args.max_pixels
            )
    except IRNError as exc:
        print(f"irn-onnx: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, MemoryError) as exc:
        print(f"irn-onnx: error: {getattr(exc, 'filename', None) or ''} {exc}".strip(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("irn-onnx: interrupted", file=sys.stderr)
        return 130
    for note in info.pop("notes", []):
        print(f"irn-onnx: warning: {note}", file=sys.stderr)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
