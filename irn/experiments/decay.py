"""Repeated rescaling: what N cycles of downscale -> upscale do to an image.

A *rescaler* maps an HR image (1, 3, H, W) to an LR image (1, 3, H/s, W/s) and back. One
cycle is ``lr_k = Q(down(x_{k-1}))``, ``x_k = Q(up(lr_k))`` with ``Q`` the 8-bit
quantisation of a stored PNG (optionally a JPEG round trip instead, see ``jpeg_quality``).

For an IRN with a fixed latent z the flow is a bijection (paper, Eq. 1-2):
``encode(decode(lr, z)) = (lr, z)``, so ``down(up(lr)) = lr`` before quantisation and the
sequence should stop changing after the first cycle -- unless the 8-bit rounding of the HR
image (and the clamp to [0, 1]) moves the LR across a rounding boundary. :func:`decay_trace`
measures exactly that, next to what bicubic/Lanczos rescaling does over the same cycles.

Method names (:func:`make_rescaler`):

* ``bicubic`` (MATLAB bicubic, :mod:`irn.imaging.resize`), ``bilinear``, ``box``, ``nearest``,
  ``lanczos2``, ``lanczos3`` -- :func:`irn.imaging.resize.imresize` kernels, antialiased downscale;
* ``pil-lanczos``, ``pil-bicubic``, ``pil-bilinear``, ``pil-box``, ``pil-hamming``,
  ``pil-nearest`` -- Pillow ``Image.resize`` on 8-bit images;
* ``irn:MODEL[@zero|@sample|@resample]`` -- an invertible rescaler (``irn.load(MODEL)``: ``x2``, ``x4``,
  ``sain-x2-jpeg``, ``tirn-x2``, ... or a checkpoint path). ``@zero``: z = 0; ``@sample``: z drawn
  from the model's latent distribution (N(0, 1) for IRN and T-IRN, the Gaussian mixture for SAIN) with
  the same seed every cycle (a fixed z); ``@resample``: a new draw each cycle (seed + cycle). Without a
  suffix the run's default z mode is used.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from irn.errors import IRNError
from irn.eval.metrics import psnr, ssim
from irn.experiments.plotting import line_plot
from irn.imaging.io import jpeg_roundtrip, to_pil, to_tensor, to_uint8
from irn.imaging.resize import imresize
from irn.nn.network import Rescaler as RescalingModel
from irn.nn.network import quantize
from irn.pipeline import for_inference
from irn.zoo import architecture_of, load_irn

ZChoice = Literal["zero", "sample", "resample"]
JpegOn = Literal["lr", "hr", "both"]

#: irn.imaging.resize kernels offered as methods: method name -> kernel name.
RESIZE_METHODS: dict[str, str] = {
    "bicubic": "cubic",
    "bilinear": "linear",
    "box": "box",
    "nearest": "nearest",
    "lanczos2": "lanczos2",
    "lanczos3": "lanczos3",
}

#: Pillow filters offered as methods.
PIL_METHODS: dict[str, Image.Resampling] = {
    "pil-lanczos": Image.Resampling.LANCZOS,
    "pil-bicubic": Image.Resampling.BICUBIC,
    "pil-bilinear": Image.Resampling.BILINEAR,
    "pil-box": Image.Resampling.BOX,
    "pil-hamming": Image.Resampling.HAMMING,
    "pil-nearest": Image.Resampling.NEAREST,
}

Z_CHOICES: tuple[str, ...] = ("zero", "sample", "resample")
#: a rescaler's latent distribution (:meth:`irn.nn.network.Rescaler.latent_distribution`), in words
LATENT_NAMES: dict[str, str] = {"normal": "N(0,1)", "gaussian_mixture": "its Gaussian mixture"}


@dataclass
class Rescaler:
    """A named pair of maps. ``down``: (1, 3, H, W) -> (1, 3, H/s, W/s); ``up(lr, cycle)``: back.

    Inputs in [0, 1]; outputs need not be clamped or quantised: the cycle rounds them to 8 bits
    and records the fraction of HR values that the clamp to [0, 1] moved (``hr_clipped_fraction``).
    ``cycle_dependent``: ``up`` depends on the cycle number (no periodicity shortcut).
    """

    name: str
    scale: int
    down: Callable[[Tensor], Tensor]
    up: Callable[[Tensor, int], Tensor]
    description: str
    info: dict[str, Any] = field(default_factory=dict)
    cycle_dependent: bool = False


def kernel_rescaler(kernel: str, scale: int, name: str | None = None) -> Rescaler:
    """MATLAB-style :func:`irn.imaging.resize.imresize` with ``kernel`` both ways (antialiased downscale)."""
    return Rescaler(
        name=name or kernel,
        scale=scale,
        down=lambda hr: imresize(hr, scale=1 / scale, kernel=kernel),
        up=lambda lr, cycle: imresize(lr, scale=scale, kernel=kernel),
        description=f"irn.imaging.resize.imresize kernel={kernel!r} (MATLAB imresize, antialiased downscale)",
    )


def _pil_resize(x: Tensor, size_hw: tuple[int, int], resample: Image.Resampling) -> Tensor:
    return to_tensor(to_pil(x).resize((size_hw[1], size_hw[0]), resample=resample))[None].to(x.device)


def pil_rescaler(name: str, scale: int) -> Rescaler:
    """Pillow ``Image.resize`` with the filter of ``name`` (a key of :data:`PIL_METHODS`), on 8-bit images."""
    resample = PIL_METHODS[name]

    def down(hr: Tensor) -> Tensor:
        h, w = hr.shape[-2:]
        return _pil_resize(hr, (h // scale, w // scale), resample)

    def up(lr: Tensor, cycle: int) -> Tensor:
        h, w = lr.shape[-2:]
        return _pil_resize(lr, (h * scale, w * scale), resample)

    return Rescaler(name, scale, down, up, f"Pillow Image.resize(resample={resample.name})")


def irn_rescaler(model: RescalingModel, z: ZChoice = "sample", seed: int = 0, name: str = "irn") -> Rescaler:
    """An invertible rescaler (IRN, SAIN, T-IRN): ``down`` = the LR half of :meth:`~irn.IRN.encode`,
    ``up`` = :meth:`~irn.IRN.decode` with the latent chosen by ``z`` (both unrounded and unclamped; the
    cycle rounds and clamps)."""
    if z not in Z_CHOICES:
        raise IRNError(f"unknown z mode {z!r}; choose from {', '.join(Z_CHOICES)}")

    # for_inference at each call: the fast path on a CPU, and the model wherever it has been moved since
    @torch.no_grad()
    def down(hr: Tensor) -> Tensor:
        return for_inference(model).encode(hr)[0]

    @torch.no_grad()
    def up(lr: Tensor, cycle: int) -> Tensor:  # not clamped: the cycle's 8-bit rounding clamps (and counts it)
        net = for_inference(model)
        if z == "zero":
            return net.decode(lr, net.sample_latent(lr, "zero"))
        latent = net.sample_latent(lr, "sample", seed=(seed + cycle) % 2**63 if z == "resample" else seed)
        return net.decode(lr, latent)

    meta = dict(getattr(model, "metadata", {}) or {})
    info = {"z": z, "seed": None if z == "zero" else seed, "model_config": model.config.to_dict()}
    info["model_metadata"] = {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool, type(None)))}
    dist = LATENT_NAMES.get(model.latent_distribution()["distribution"], "its latent distribution")
    what = {"zero": "z = 0", "sample": f"z ~ {dist}, fixed seed {seed}", "resample": f"z ~ {dist}, seed {seed}+cycle"}
    kind = architecture_of(model).label
    return Rescaler(name, model.scale, down, up, f"{kind} x{model.scale}, {what[z]}", info, z == "resample")


def make_rescaler(
    spec: str,
    scale: int,
    *,
    default_z: ZChoice = "sample",
    seed: int = 0,
    models: dict[str, RescalingModel] | None = None,
) -> Rescaler:
    """Build the rescaler named by ``spec`` (see the module docstring).

    ``models`` caches loaded IRNs by their MODEL string so that ``irn:x2@zero irn:x2@sample``
    loads the checkpoint once. Raises :class:`IRNError` for an unknown name or a model whose
    scale differs from ``scale``.
    """
    if spec in RESIZE_METHODS:
        return kernel_rescaler(RESIZE_METHODS[spec], scale, name=spec)
    if spec in PIL_METHODS:
        return pil_rescaler(spec, scale)
    if spec.startswith("irn:"):
        body = spec[len("irn:") :]
        z: str = default_z
        if "@" in body and body.rsplit("@", 1)[1] in Z_CHOICES:
            body, z = body.rsplit("@", 1)
        if not body:
            raise IRNError(f"method {spec!r}: give a model after 'irn:' (a name from irn models or a path)")
        cache = models if models is not None else {}
        if body not in cache:
            cache[body] = load_irn(body)
        model = cache[body]
        if model.scale != scale:
            raise IRNError(f"method {spec!r}: the model rescales by x{model.scale}, but the run uses --scale {scale}")
        name = spec if spec.rsplit("@", 1)[-1] in Z_CHOICES else f"{spec}@{z}"
        return irn_rescaler(model, z=z, seed=seed, name=name)  # type: ignore[arg-type]
    known = ", ".join([*RESIZE_METHODS, *PIL_METHODS, "irn:MODEL[@zero|@sample|@resample]"])
    raise IRNError(f"unknown method {spec!r}; choose from {known}")


@dataclass(frozen=True)
class DecayConfig:
    """Options of a decay run (the CLI flags one to one)."""

    cycles: int = 20
    jpeg_quality: int | None = None
    jpeg_on: JpegOn = "both"
    gif_frames: int = 50
    gif_crop: int = 128
    shortcut: bool = True

    def __post_init__(self) -> None:
        if self.cycles < 1:
            raise IRNError(f"--cycles must be at least 1, got {self.cycles}")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise IRNError(f"--jpeg must be a quality between 1 and 100, got {self.jpeg_quality}")
        if self.jpeg_on not in ("lr", "hr", "both"):
            raise IRNError(f"--jpeg-on must be lr, hr or both, got {self.jpeg_on!r}")
        if self.gif_frames < 2:
            raise IRNError(f"--gif-frames must be at least 2, got {self.gif_frames}")
        if self.gif_crop < 8:
            raise IRNError(f"--gif-crop must be at least 8 pixels, got {self.gif_crop}")


@dataclass
class MethodTrace:
    """Per-cycle figures of one method; list index i is cycle i + 1. ``None`` PSNR = identical images.

    ``orbit_start``/``orbit_period``: the HR sequence is eventually periodic (a deterministic map on
    8-bit images); the first repeat found is ``x_{start + period} == x_start`` (period 1 = fixed point).
    Stays ``None`` for ``@resample`` IRNs (a new z each cycle) unless a repeat happens anyway.
    """

    name: str
    description: str
    info: dict[str, Any]
    psnr_vs_original: list[float | None] = field(default_factory=list)
    ssim_vs_original: list[float] = field(default_factory=list)
    psnr_vs_previous: list[float | None] = field(default_factory=list)
    ssim_vs_previous: list[float] = field(default_factory=list)
    lr_changed_fraction: list[float | None] = field(default_factory=list)  # None at cycle 1: no previous LR
    lr_max_change: list[int | None] = field(default_factory=list)
    hr_changed_fraction: list[float] = field(default_factory=list)
    hr_clipped_fraction: list[float] = field(default_factory=list)
    seconds: float = 0.0
    frames: dict[int, Tensor] = field(default_factory=dict)
    final: Tensor | None = None
    orbit_start: int | None = None
    orbit_period: int | None = None
    computed_cycles: int = 0

    @property
    def fixed_point_cycle(self) -> int | None:
        """The first cycle k whose HR image equals cycle k-1's (every later cycle then repeats it)."""
        for i, frac in enumerate(self.hr_changed_fraction):
            if frac == 0.0 and self.lr_changed_fraction[i] in (0.0, None):
                return i + 1
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            **self.info,
            "psnr_vs_original": self.psnr_vs_original,
            "ssim_vs_original": self.ssim_vs_original,
            "psnr_vs_previous": self.psnr_vs_previous,
            "ssim_vs_previous": self.ssim_vs_previous,
            "lr_changed_fraction": self.lr_changed_fraction,
            "lr_max_change": self.lr_max_change,
            "hr_changed_fraction": self.hr_changed_fraction,
            "hr_clipped_fraction": self.hr_clipped_fraction,
            "fixed_point_cycle": self.fixed_point_cycle,
            "orbit_start_cycle": self.orbit_start,
            "orbit_period": self.orbit_period,
            "computed_cycles": self.computed_cycles,
            "final_psnr_vs_original": self.psnr_vs_original[-1],
            "final_ssim_vs_original": self.ssim_vs_original[-1],
            "seconds": round(self.seconds, 3),
        }


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def modcrop(x: Tensor, scale: int) -> Tensor:
    """Crop (..., H, W) at the bottom/right to multiples of ``scale`` (BasicSR's modcrop)."""
    h, w = x.shape[-2:]
    h, w = h - h % scale, w - w % scale
    if h == 0 or w == 0:
        raise IRNError(f"image of {x.shape[-1]}x{x.shape[-2]} pixels is smaller than the scale {scale}")
    return x[..., :h, :w]


def gif_cycles(cycles: int, frames: int) -> list[int]:
    """The cycles shown in the GIF: 0 (the original) to ``cycles``, at most ``frames`` of them, evenly spread."""
    if cycles + 1 <= frames:
        return list(range(cycles + 1))
    return sorted({round(i * cycles / (frames - 1)) for i in range(frames)})


def _digest(x: Tensor) -> bytes:
    """A hash of the 8-bit image, to detect when the sequence starts repeating."""
    return hashlib.blake2b(to_uint8(x).tobytes(), digest_size=16).digest()


def _centre_crop(x: Tensor, size: int) -> Tensor:
    h, w = x.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top : top + ch, left : left + cw]


#: The most recent cycles kept in memory for the periodicity shortcut (a longer period is computed out).
SHORTCUT_WINDOW = 64


@torch.no_grad()
def decay_trace(
    image: Tensor,
    rescaler: Rescaler,
    config: DecayConfig,
    *,
    progress: Callable[[int], None] | None = None,
) -> MethodTrace:
    """Run ``config.cycles`` cycles of ``rescaler`` on ``image`` (3, H, W) or (1, 3, H, W) in [0, 1].

    The image is modcropped to a multiple of the scale and quantised to 8 bits first (cycle 0).
    PSNR/SSIM are on the Y channel (BT.601) with ``scale`` pixels cropped at each border.

    Shortcut (``config.shortcut``): a cycle is a deterministic map on 8-bit images unless the
    rescaler changes with the cycle (``@resample``), so once x_k repeats an earlier x_j the rest
    of the sequence repeats with period k - j; the remaining cycles' figures are then copied
    from the repeating window instead of being recomputed (``computed_cycles`` says how many
    were run). Periods longer than :data:`SHORTCUT_WINDOW` are computed out.
    """
    x0 = quantize(modcrop(image if image.dim() == 4 else image[None], rescaler.scale).float())
    border = rescaler.scale
    trace = MethodTrace(rescaler.name, rescaler.description, dict(rescaler.info))
    keep = set(gif_cycles(config.cycles, config.gif_frames))
    trace.frames[0] = _centre_crop(x0[0], config.gif_crop).clone()
    jpeg_lr = config.jpeg_quality is not None and config.jpeg_on in ("lr", "both")
    jpeg_hr = config.jpeg_quality is not None and config.jpeg_on in ("hr", "both")
    prev_hr, prev_lr = x0, None
    seen: dict[bytes, int] = {_digest(x0): 0}
    window: dict[int, tuple[Tensor, Tensor]] = {}  # cycle -> (lr, hr) for the last SHORTCUT_WINDOW cycles
    start = time.perf_counter()
    cycle = 0
    for cycle in range(1, config.cycles + 1):
        lr = quantize(rescaler.down(prev_hr))
        if jpeg_lr:
            lr = jpeg_roundtrip(lr, config.jpeg_quality)  # type: ignore[arg-type]
        raw = rescaler.up(lr, cycle)[..., : x0.shape[-2], : x0.shape[-1]]
        trace.hr_clipped_fraction.append(float(((raw < -0.5 / 255) | (raw > 1 + 0.5 / 255)).float().mean()))
        hr = quantize(raw)
        if jpeg_hr:
            hr = jpeg_roundtrip(hr, config.jpeg_quality)  # type: ignore[arg-type]
        trace.psnr_vs_original.append(_finite_or_none(psnr(hr, x0, border, True).item()))
        trace.ssim_vs_original.append(float(ssim(hr, x0, border, True).item()))
        trace.psnr_vs_previous.append(_finite_or_none(psnr(hr, prev_hr, border, True).item()))
        trace.ssim_vs_previous.append(float(ssim(hr, prev_hr, border, True).item()))
        _record_lr_change(trace, lr, prev_lr)
        trace.hr_changed_fraction.append(float(((hr - prev_hr).abs() * 255).round().gt(0).float().mean()))
        if cycle in keep:
            trace.frames[cycle] = _centre_crop(hr[0], config.gif_crop).clone()
        prev_hr, prev_lr = hr, lr
        window[cycle] = (lr, hr)
        window.pop(cycle - SHORTCUT_WINDOW, None)
        if progress is not None:
            progress(cycle)
        key = _digest(hr)
        if key in seen and trace.orbit_start is None:
            trace.orbit_start, trace.orbit_period = seen[key], cycle - seen[key]
            if config.shortcut and not rescaler.cycle_dependent and trace.orbit_period <= SHORTCUT_WINDOW:
                prev_hr = _repeat_orbit(trace, window, cycle, config, keep, progress)
                break
        seen.setdefault(key, cycle)
    trace.computed_cycles = cycle
    trace.seconds = time.perf_counter() - start
    trace.final = prev_hr.cpu()
    return trace


def _record_lr_change(trace: MethodTrace, lr: Tensor, prev_lr: Tensor | None) -> None:
    """Cycle 1's LR has no previous LR to compare with: null."""
    if prev_lr is None:
        trace.lr_changed_fraction.append(None)
        trace.lr_max_change.append(None)
        return
    diff = ((lr - prev_lr).abs() * 255).round()
    trace.lr_changed_fraction.append(float((diff > 0).float().mean()))
    trace.lr_max_change.append(int(diff.max()))


def _repeat_orbit(
    trace: MethodTrace,
    window: dict[int, tuple[Tensor, Tensor]],
    last: int,
    config: DecayConfig,
    keep: set[int],
    progress: Callable[[int], None] | None,
) -> Tensor:
    """Fill cycles last+1..N from the periodic window x_{j+1..last} (x_c = x_{c'}, c' = c mod period)."""
    j, p = trace.orbit_start, trace.orbit_period
    assert j is not None and p is not None

    def source(c: int) -> int:  # the computed cycle in (j, last] whose image equals cycle c's
        return j + 1 + (c - j - 1) % p

    hr = window[last][1]
    for c in range(last + 1, config.cycles + 1):
        src = source(c)
        i = src - 1
        trace.psnr_vs_original.append(trace.psnr_vs_original[i])
        trace.ssim_vs_original.append(trace.ssim_vs_original[i])
        trace.psnr_vs_previous.append(trace.psnr_vs_previous[i])
        trace.ssim_vs_previous.append(trace.ssim_vs_previous[i])
        trace.hr_changed_fraction.append(trace.hr_changed_fraction[i])
        trace.hr_clipped_fraction.append(trace.hr_clipped_fraction[i])
        # lr_c = Q(down(x_{c-1})) = lr_src; lr_{c-1} = lr_{source(c-1)} (x_{c-2} is periodic too)
        _record_lr_change(trace, window[src][0], window[source(c - 1)][0])
        hr = window[src][1]
        if c in keep:
            trace.frames[c] = _centre_crop(hr[0], config.gif_crop).clone()
        if progress is not None:
            progress(c)
    return hr


def summarise(
    traces: Sequence[MethodTrace], *, image: str, size: tuple[int, int], scale: int, config: DecayConfig
) -> dict[str, Any]:
    """The JSON document of a run: settings, and per method the per-cycle lists (index i = cycle i + 1)."""
    return {
        "image": image,
        "size_hw": list(size),
        "scale": scale,
        "cycles": config.cycles,
        "jpeg": None if config.jpeg_quality is None else {"quality": config.jpeg_quality, "on": config.jpeg_on},
        "metrics": (
            f"PSNR/SSIM on Y (BT.601), {scale} border pixels cropped; psnr null = identical images; "
            "lr_* compare the LR of a cycle with the previous cycle's (8-bit levels)"
        ),
        "cycle": list(range(1, config.cycles + 1)),
        "methods": {t.name: t.to_dict() for t in traces},
    }


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


def write_gif(traces: Sequence[MethodTrace], path: str, *, frame_ms: int = 120) -> None:
    """An animated GIF: per recorded cycle, the centre crops of all methods side by side, labelled."""
    cycles = sorted(set.intersection(*(set(t.frames) for t in traces)))
    if not cycles:
        raise ValueError("no frames recorded")
    crop_h, crop_w = traces[0].frames[cycles[0]].shape[-2:]
    gap, label_h = 6, 22
    font = _font(13)
    width = len(traces) * crop_w + (len(traces) + 1) * gap
    height = crop_h + 2 * label_h + 2 * gap
    frames: list[Image.Image] = []
    for cycle in cycles:
        canvas = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(canvas)
        draw.text((gap, gap + label_h / 2), f"cycle {cycle}", fill="black", font=font, anchor="lm")
        for i, t in enumerate(traces):
            x = gap + i * (crop_w + gap)
            canvas.paste(to_pil(t.frames[cycle]), (x, gap + label_h))
            label = t.name if draw.textlength(t.name, font=font) <= crop_w else t.name[: max(4, crop_w // 8)] + "…"
            draw.text(
                (x + crop_w / 2, gap + label_h + crop_h + label_h / 2), label, fill="black", font=font, anchor="mm"
            )
        frames.append(canvas.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
    durations = [frame_ms] * len(frames)
    durations[0] = durations[-1] = frame_ms * 8  # linger on the original and the last cycle
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)


def write_plot(traces: Sequence[MethodTrace], path: str, *, title: str) -> None:
    """PSNR-Y against the original, one line per method (cycle 0 omitted: its PSNR is infinite)."""
    series = {t.name: (list(range(1, len(t.psnr_vs_original) + 1)), t.psnr_vs_original) for t in traces}
    line_plot(series, path, title=title, xlabel="cycle (downscale + upscale)", ylabel="PSNR-Y vs original (dB)")
