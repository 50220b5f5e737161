"""``irn rescale down|up|roundtrip``: rescale image files with an invertible rescaling model (IRN, the
official x3, SAIN, T-IRN: any rescaler of the registry but IRN-Color, which ``irn color`` runs).

* ``down``: HR image -> LR image of ceil(H/s) x ceil(W/s) pixels (the model's downscaling,
  quantised to 8 bits), written as PNG (``--format jpg|webp`` allowed, with a warning unless the model
  is made for that format: :func:`irn.zoo.purpose.lr_formats`).
* ``up``: LR image -> HR image of exactly s x the LR size (the latent z drawn per ``--z``).
* ``roundtrip``: down then up, cropped back to the input size; prints PSNR-Y and PSNR-RGB
  of the reconstruction against the input, per image and their mean.

Inputs are files, folders (``-r`` to recurse) and glob patterns. Outputs go to ``-o OUTDIR``
(a folder's sub-folders are mirrored there); an output path that equals an input is refused
before anything runs. Every file is written atomically. A bad input is reported on one line
and skipped; the exit code is then 1 once the good images are done (2 for a usage error).
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from irn.cli.common import add_device_argument, number_type, seed_type, with_suffixes
from irn.errors import IRNError

if TYPE_CHECKING:
    from torch import Tensor

    from irn.nn.network import Rescaler

HELP = "Rescale images with IRN, SAIN or T-IRN: down (HR -> LR), up (LR -> HR), roundtrip (down, up, PSNR)."

DEFAULT_MAX_PIXELS = 50_000_000  # the same value as irn.imaging.io.DEFAULT_MAX_PIXELS, kept import-free here
LR_FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}
LOSSY_WARNING = (
    "irn: warning: writing the LR image as {fmt}: IRN's LR image does not survive lossy "
    "compression well; upscaling a compressed LR gives much lower quality than a PNG LR"
)
#: what the warning adds for a model made for another lossy format (sain-x2-jpeg with --format webp)
OTHER_FORMAT = " (--model {model} is made for {made_for})"
Action = Literal["down", "up", "roundtrip"]


@dataclass(frozen=True)
class Task:
    """What ``irn rescale`` and ``irn color`` (the same machinery) differ in: the command, the model kind
    it takes, the output names (``{s}`` is the scale), the baseline of ``roundtrip`` and its flag."""

    command: str
    lr_tag: str  # NAME{lr_tag}.png written by down
    up_tag: str  # NAME{up_tag}.png written by up
    rt_tag: str  # NAME{rt_tag}.png written by roundtrip
    baseline_flag: str
    baseline_name: str  # how the printed lines and the JSON name the baseline
    lr_key: str = "lr"  # JSON names of the outputs
    hr_key: str = "hr"

    def tag(self, which: str, scale: int) -> str:
        return getattr(self, f"{which}_tag").format(s=scale)


RESCALE = Task("rescale", "_x{s}_lr", "_x{s}_up", "_x{s}_rt", "--bicubic", "bicubic")
COLOR = Task("color", "_grey", "_color", "_rt", "--baseline", "baseline", lr_key="grey", hr_key="color")


#: ``50000000``, ``50M``, ``0.5G`` or ``2e7`` -> a positive pixel count (M, G are powers of 1000)
_pixel_count = number_type(
    with_suffixes({"M": 1_000_000, "G": 1_000_000_000}),
    "a pixel count such as 50000000 or 50M",
    lambda v: v > 0,
    "must be at least 1 pixel, got {text!r} ({value} whole pixels)",
)
_pixel_side = number_type(int, "a tile side in pixels", lambda v: v >= 16, "must be at least 16 pixels, got {text!r}")
#: ``2G``, ``512M``, ``1.5G`` or ``2000000000`` -> bytes (K, M, G are powers of 1024; a trailing B is allowed)
_binary_size = with_suffixes({"K": 2**10, "M": 2**20, "G": 2**30})
_byte_count = number_type(
    lambda t: _binary_size(t.strip().upper().removesuffix("B")),
    "a size such as 2G or 512M",
    lambda v: v > 0,
    "must be positive, got {text!r}",
)
_non_negative_float = number_type(float, "a number", lambda v: v >= 0, "must not be negative, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser, task: Task = RESCALE) -> None:
    parser.set_defaults(task=task)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    common.add_argument(
        "-o", "--output", default="out", metavar="OUTDIR", help="output folder (default: ./out, created if needed)"
    )
    if task is COLOR:
        common.add_argument(
            "--model",
            default="color",
            metavar="NAME|PATH",
            help="an IRN-Color model: the shipped one (color, the default) or a checkpoint file",
        )
    else:
        common.add_argument(
            "--model",
            default="x2",
            metavar="NAME|PATH",
            help="model name (x2, x4, x2-jpeg, sain-x2-jpeg, tirn-x4, ...: irn models) or checkpoint file: IRN, "
            "the official x3, SAIN, T-IRN (default x2)",
        )
    add_device_argument(common)
    common.add_argument("-r", "--recursive", action="store_true", help="search folders recursively")
    common.add_argument(
        "--max-pixels",
        type=_pixel_count,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help="refuse images with more pixels (HR side: the input of down/roundtrip, the output of up); default 50M",
    )
    common.add_argument("--skip-existing", action="store_true", help="skip inputs whose outputs all exist already")
    common.add_argument("--json", metavar="PATH", help="write a JSON summary of the run to PATH")
    common.add_argument(
        "--tile",
        type=_pixel_side,
        default=None,
        metavar="SIZE",
        help="run the model on overlapping tiles of SIZE x SIZE HR pixels (bounded memory; default: only "
        "when --max-memory requires it)",
    )
    common.add_argument(
        "--max-memory",
        type=_byte_count,
        default=None,
        metavar="BYTES",
        help="tile an image automatically when its estimated working memory exceeds BYTES, e.g. 2G or "
        "512M (default: half the machine's RAM)",
    )

    latent = argparse.ArgumentParser(add_help=False)
    latent.add_argument(
        "--z",
        choices=("auto", "sample", "zero"),
        default="auto",
        help="latent for upscaling: a sample of the model's latent distribution (IRN: Gaussian, as in the paper; "
        "SAIN: its mixture) or zeros; auto (default) uses the model's recommended_z metadata (shipped models "
        "name it in checkpoints/README.md), else the architecture's (IRN, SAIN: sample; T-IRN, IRN-Color: zero)",
    )
    latent.add_argument(
        "--seed", type=seed_type, default=0, help="seed of the latent sample, the same for every image (default 0)"
    )
    latent.add_argument(
        "--temperature",
        type=_non_negative_float,
        default=1.0,
        help="standard deviation of the latent sample (default 1)",
    )

    lr_format = argparse.ArgumentParser(add_help=False)
    lr_format.add_argument(
        "--format",
        choices=tuple(LR_FORMATS),
        default="png",
        help="file format of the LR image (default png; jpg and webp are lossy and hurt upscaling, except with a "
        "model made for them: x2-jpeg (below quality 90), sain-x2-jpeg, sain-x4-jpeg for jpg, sain-x2-webp for webp)",
    )
    lr_format.add_argument("--quality", type=int, default=95, help="quality of a jpg/webp LR, 1-100 (default 95)")

    compare = argparse.ArgumentParser(add_help=False)
    compare.add_argument(task.baseline_flag, action="store_true", help=BASELINE_HELP[task.command])
    parents = {"down": [common, lr_format], "up": [common, latent], "roundtrip": [common, latent, lr_format, compare]}
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    for action, (short, description) in ACTION_HELP[task.command].items():
        sub.add_parser(action, parents=parents[action], help=short, description=description)


#: the roundtrip baseline flag's help, per task
BASELINE_HELP = {
    "rescale": "also score bicubic down-and-up (MATLAB-style, 8-bit LR, stored as --format stores the model's) of "
    "each image: what IRN adds over it",
    "color": "also score the grey image copied to RGB (no colorization): what the model adds over it",
}
#: (help, description) of each action, per task
ACTION_HELP: dict[str, dict[str, tuple[str, str]]] = {
    "rescale": {
        "down": (
            "HR -> LR, ceil(H/s) x ceil(W/s): NAME_xS_lr.png",
            "Downscale with the model: each HR image -> OUTDIR/NAME_xS_lr.png of ceil(H/s) x ceil(W/s).",
        ),
        "up": (
            "LR -> HR, exactly s x the LR size: NAME_xS_up.png",
            "Upscale with the model: each LR image (h x w) -> OUTDIR/NAME_xS_up.png of sh x sw.",
        ),
        "roundtrip": (
            "down then up; prints PSNR-Y and PSNR-RGB: NAME_xS_lr.png, NAME_xS_rt.png",
            "Downscale then upscale each image, cropped back to its size; writes the LR and the "
            "reconstruction and prints PSNR-Y (BT.601) and PSNR-RGB against the input.",
        ),
    },
    "color": {
        "down": (
            "colour -> grey (1-channel, same size): NAME_grey.png",
            "Decolorize with the model: each colour image -> OUTDIR/NAME_grey.png, a 1-channel image "
            "of the same size whose latent the model can restore colours from.",
        ),
        "up": (
            "grey -> colour: NAME_color.png",
            "Colorize with the model: each grey image -> OUTDIR/NAME_color.png (a colour file is "
            "read as its BT.601 luma).",
        ),
        "roundtrip": (
            "down then up; prints PSNR-Y and PSNR-RGB: NAME_grey.png, NAME_rt.png",
            "Decolorize then colorize each image; writes the grey image and the restored colour "
            "image and prints PSNR-Y (BT.601) and PSNR-RGB against the input.",
        ),
    },
}


# ----------------------------------------------------------------------------- inputs, outputs
@dataclass
class Job:
    """One input file and the files it produces (``"lr"`` and/or ``"hr"``)."""

    source: Path
    outputs: dict[str, Path]


@dataclass
class Record:
    """The outcome of one input, as it appears in the JSON summary."""

    input: str
    status: str = "ok"  # ok | skipped | failed
    outputs: dict[str, str] = field(default_factory=dict)
    size: list[int] | None = None  # [H, W] of the input
    lr_size: list[int] | None = None  # [h, w] of the LR (read for up, written for down/roundtrip)
    hr_size: list[int] | None = None  # [H, W] of the HR written by up/roundtrip
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    psnr_y: float | None = None
    psnr_rgb: float | None = None
    bicubic_psnr_y: float | None = None  # roundtrip --bicubic: bicubic down-and-up of the same image
    bicubic_psnr_rgb: float | None = None


def _has_magic(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def collect_inputs(
    patterns: list[str], recursive: bool, outdir: Path
) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """Expand files, folders and globs into ``(file, sub-folder to mirror)`` pairs, in a stable order.

    Folders contribute files with image suffixes (recursively with ``recursive``), skipping
    anything under ``outdir`` when ``outdir`` lies inside the folder. Explicit files and glob
    matches are taken whatever their suffix. Returns the inputs and ``(pattern, problem)`` pairs
    for arguments that match nothing.
    """
    from irn.imaging.io import IMAGE_SUFFIXES

    out_resolved = outdir.resolve()
    found: list[tuple[Path, Path]] = []
    missing: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(path: Path, rel: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append((path, rel))

    def add_folder(folder: Path) -> int:
        folder_resolved = folder.resolve()
        skip_outdir = out_resolved != folder_resolved and _is_within(out_resolved, folder_resolved)
        files = folder.rglob("*") if recursive else folder.iterdir()
        count = 0
        for f in sorted(files):
            if not f.is_file() or f.suffix.lower() not in IMAGE_SUFFIXES or f.name.startswith("."):
                continue
            if skip_outdir and _is_within(f.resolve(), out_resolved):
                continue
            add(f, f.parent.relative_to(folder))
            count += 1
        return count

    for pattern in patterns:
        if _has_magic(pattern) and not Path(pattern).exists():
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                missing.append((pattern, "no file matches this pattern"))
            for m in matches:
                p = Path(m)
                if p.is_dir():
                    add_folder(p)
                else:
                    add(p, Path())
            continue
        path = Path(pattern)
        if path.is_dir():
            if add_folder(path) == 0:
                missing.append((pattern, "folder holds no image files" + ("" if recursive else " (try -r)")))
        elif path.exists():
            add(path, Path())
        else:
            missing.append((pattern, "no such file or folder"))
    return found, missing


def _stem_for_up(stem: str, scale: int, task: Task = RESCALE) -> str:
    """``photo_x2_lr`` (what ``down`` wrote) -> ``photo`` so that ``up`` writes ``photo_x2_up.png``."""
    tag = task.tag("lr", scale)
    return stem[: -len(tag)] if stem.endswith(tag) and len(stem) > len(tag) else stem


def plan_outputs(
    action: Action, inputs: list[tuple[Path, Path]], outdir: Path, scale: int, lr_suffix: str, task: Task = RESCALE
) -> list[Job]:
    """Output paths for every input; refuses (IRNError) collisions and outputs that equal an input."""
    jobs: list[Job] = []
    for source, rel in inputs:
        folder = outdir / rel
        stem = source.stem
        outputs: dict[str, Path] = {}
        if action in ("down", "roundtrip"):
            outputs["lr"] = folder / f"{stem}{task.tag('lr', scale)}{lr_suffix}"
        if action == "up":
            outputs["hr"] = folder / f"{_stem_for_up(stem, scale, task)}{task.tag('up', scale)}.png"
        if action == "roundtrip":
            outputs["hr"] = folder / f"{stem}{task.tag('rt', scale)}.png"
        jobs.append(Job(source, outputs))

    inputs_by_path = {job.source.resolve(): job.source for job in jobs}
    inputs_by_inode = {key: job.source for job in jobs if (key := _inode(job.source)) is not None}
    owner: dict[Path, Path] = {}
    for job in jobs:
        for out in job.outputs.values():
            key = out.resolve()
            clash = inputs_by_path.get(key)
            if clash is None and (inode := _inode(out)) is not None:
                clash = inputs_by_inode.get(inode)  # the same file under another name (hard link)
            if clash is not None:
                raise IRNError(f"output {out} would overwrite the input {clash}; choose another -o")
            if key in owner:
                raise IRNError(
                    f"{owner[key]} and {job.source} would both be written to {out}; rename one or process them apart"
                )
            owner[key] = job.source
    return jobs


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


# ----------------------------------------------------------------------------- model and images
def _psnr_pair(reference: Tensor, test: Tensor) -> tuple[float, float]:
    """(PSNR-Y, PSNR-RGB) in dB of ``test`` against ``reference``, both (3, H, W) in [0, 1], no border crop.

    :func:`irn.eval.metrics.psnr` in float64: Y is MATLAB's BT.601 luma on the 0-255 range.
    """
    from irn.eval.metrics import psnr

    ref, out = reference.double(), test.double()
    return float(psnr(out, ref, crop_border=0, y_channel=True)[0]), float(psnr(out, ref, y_channel=False)[0])


# ----------------------------------------------------------------------------- the run
@dataclass
class Options:
    action: Action
    device: str
    max_pixels: int
    lr_suffix: str
    quality: int
    z: Literal["sample", "zero"] = "sample"
    seed: int | None = 0
    temperature: float = 1.0
    tile: int | None = None
    max_memory: int | None = None
    bicubic: bool = False  # roundtrip --bicubic (irn color: --baseline)
    scale: int = 1
    color: bool = False  # the decolorization task: the "LR" is the 1-channel grey image
    restorer: Any = None  # the model's compression restoration module (an IRN trained for JPEG LR)


def _save(x: Tensor, path: Path, alpha: Tensor | None, opts: Options, notes: list[str]) -> None:
    from irn.imaging.io import ALPHA_FORMATS, image_format, write_image

    kwargs: dict[str, Any] = {}
    fmt = image_format(path)
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = opts.quality
    if alpha is not None and fmt not in ALPHA_FORMATS:
        notes.append(f"alpha channel dropped: {fmt} cannot store it")
        alpha = None
    write_image(x, path, alpha=alpha, **kwargs)


def _process(model: Rescaler, job: Job, opts: Options, rec: Record) -> None:
    """Read, rescale and write one image, filling ``rec``; raises ImageReadError/OSError on failure."""
    from irn.imaging.files import is_jpeg_file
    from irn.imaging.io import ImageReadError, ImageTooLargeError, megapixels, read_image, read_image_checked
    from irn.pipeline import resize_alpha, run_model

    s = model.scale
    limit = opts.max_pixels if opts.action != "up" else max(1, opts.max_pixels // (s * s))
    try:
        rgb, alpha, notes = read_image_checked(job.source, max_pixels=limit)
    except ImageTooLargeError as exc:
        if opts.action == "up":
            raise ImageReadError(
                f"{exc.path}: {exc.width}x{exc.height} LR would upscale to {exc.width * s}x{exc.height * s} = "
                f"{megapixels(exc.width * exc.height * s * s)}, over the limit of {megapixels(opts.max_pixels)} "
                "(raise it with --max-pixels)"
            ) from None
        raise ImageReadError(f"{exc} (raise it with --max-pixels)") from None
    if opts.color and opts.action == "up":  # a grey file is what colour up takes: no note that it was grey
        from irn.imaging.files import GREY_NOTES

        notes = [n for n in notes if n not in GREY_NOTES]
    rec.notes += notes
    h, w = rgb.shape[-2:]
    rec.size = [h, w]
    x = rgb[None]
    if opts.color and opts.action == "up":  # the grey input: its luma (R = G = B in a grey file)
        from irn.nn.linear import rgb_to_luma
        from irn.nn.network import quantize

        x = quantize(rgb_to_luma(x))
    up_kwargs: dict[str, Any] = {"z": opts.z, "temperature": opts.temperature, "seed": opts.seed}
    tiling_kwargs: dict[str, Any] = {"tile": opts.tile, "max_memory": opts.max_memory, "notes": rec.notes}

    if opts.action == "up":
        if opts.restorer is not None and is_jpeg_file(job.source):
            x = _restore(x, opts, rec.notes)
        hr = run_model(model, x, "up", **up_kwargs, **tiling_kwargs)[0]
        hr_alpha = resize_alpha(alpha, s) if alpha is not None else None
        _save(hr, job.outputs["hr"], hr_alpha, opts, rec.notes)
        rec.lr_size, rec.hr_size = [h, w], list(hr.shape[-2:])
        rec.outputs["hr"] = str(job.outputs["hr"])
        return

    lr = run_model(model, x, "down", **tiling_kwargs)[0]
    lr_alpha = None
    if alpha is not None:
        from irn.nn.network import quantize

        lr_alpha = quantize(resize_alpha(alpha, 1 / s, size=(lr.shape[-2], lr.shape[-1])))
    _save(lr, job.outputs["lr"], lr_alpha, opts, rec.notes)
    rec.outputs["lr"] = str(job.outputs["lr"])
    rec.lr_size = list(lr.shape[-2:])
    if opts.action == "down":
        return

    if opts.lr_suffix != ".png":
        lr = read_image(job.outputs["lr"])  # upscale what the lossy file actually holds
        lr = lr[:1] if opts.color else lr
        if opts.restorer is not None and opts.lr_suffix == ".jpg":
            lr = _restore(lr[None], opts, rec.notes)[0]
    hr = run_model(model, lr[None], "up", size=(h, w), **up_kwargs, **tiling_kwargs)[0]
    hr_alpha = resize_alpha(lr_alpha, s, size=(h, w)) if lr_alpha is not None else None
    _save(hr, job.outputs["hr"], hr_alpha, opts, rec.notes)
    rec.outputs["hr"] = str(job.outputs["hr"])
    rec.hr_size = list(hr.shape[-2:])
    from irn.nn.network import quantize

    rec.psnr_y, rec.psnr_rgb = _psnr_pair(rgb, quantize(hr))  # against what the PNG holds
    if opts.bicubic:
        baseline = baseline_roundtrip(rgb, opts, lr.shape[-2:])
        rec.bicubic_psnr_y, rec.bicubic_psnr_rgb = _psnr_pair(rgb, baseline)


def _restore(lr: Tensor, opts: Options, notes: list[str]) -> Tensor:
    """A decoded JPEG LR (1, 3, h, w) restored by the model's compression restoration module, 8-bit,
    within ``--tile`` / ``--max-memory`` (irn.pipeline.run_restorer)."""
    from irn.pipeline import RESTORED_NOTE, run_restorer

    notes.append(RESTORED_NOTE)
    tile = max(1, opts.tile // opts.scale) if opts.tile is not None else None
    return run_restorer(opts.restorer, lr, tile=tile, max_memory=opts.max_memory, notes=notes)


def baseline_roundtrip(rgb: Tensor, opts: Options, lr_size: Sequence[int]) -> Tensor:
    """The roundtrip's baseline: bicubic down and up, its LR stored as the model's is (``--format``,
    ``--quality``), or for decolorization the 8-bit luma copied to RGB."""
    if opts.color:
        from irn.nn.linear import rgb_to_luma
        from irn.nn.network import quantize

        return quantize(rgb_to_luma(rgb[None]))[0].expand(3, -1, -1)
    from irn.imaging.io import image_format

    lossy = (image_format(f"lr{opts.lr_suffix}"), opts.quality) if opts.lr_suffix != ".png" else None
    return bicubic_roundtrip(rgb, opts.scale, lr_size, lossy)


def bicubic_roundtrip(rgb: Tensor, scale: int, lr_size: Sequence[int], lossy: tuple[str, int] | None = None) -> Tensor:
    """The baseline IRN is measured against: MATLAB-style bicubic down to ``lr_size`` (the model's LR
    size), rounded to 8 bits (``lossy`` = (Pillow format, quality): stored in it, as the model's LR
    is), bicubic up to the input size, rounded to 8 bits."""
    from irn.imaging.io import lossy_roundtrip
    from irn.imaging.resize import imresize
    from irn.nn.network import quantize

    lr = quantize(imresize(rgb[None], size=tuple(lr_size)))
    if lossy is not None:
        lr = lossy_roundtrip(lr, *lossy)
    return quantize(imresize(lr, size=tuple(rgb.shape[-2:])))[0]


def _psnr_of_existing(job: Job, rec: Record, opts: Options) -> None:
    """For a skipped roundtrip: PSNR of the reconstruction already on disk (left unset if unreadable)."""
    from irn.imaging.io import ImageReadError, read_image, read_image_checked

    try:
        rgb = read_image_checked(job.source, max_pixels=opts.max_pixels).rgb
        hr = read_image(job.outputs["hr"])
    except ImageReadError:
        return
    if hr.shape == rgb.shape:
        rec.size = list(rgb.shape[-2:])
        rec.psnr_y, rec.psnr_rgb = _psnr_pair(rgb, hr)
        if opts.bicubic:
            lr_size = [-(-n // opts.scale) for n in rgb.shape[-2:]]
            rec.bicubic_psnr_y, rec.bicubic_psnr_rgb = _psnr_pair(rgb, baseline_roundtrip(rgb, opts, lr_size))


def _fmt_db(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "inf" if value == float("inf") else f"{value:.2f} dB"


def _json_number(value: float | None) -> float | None:
    """A figure for the JSON summary, rounded to 4 decimals (non-finite ones become null when written)."""
    return None if value is None or value != value or abs(value) == float("inf") else round(value, 4)


def lr_format_advice(model: Rescaler, name: str, lr_suffix: str, action: Action, quality: int = 95) -> str | None:
    """The line ``irn rescale`` prints about the LR format, or None: a warning for a lossy LR the model
    is not made for, a note for a PNG LR of a model made for a lossy one (the rule:
    :func:`irn.zoo.purpose.lr_formats`); at a ``quality`` where another catalogue model was measured to
    do better (:func:`irn.zoo.purpose.better_model`: x2-jpeg below quality 90, x2 from 90 up), it says so."""
    from irn.imaging.io import image_format
    from irn.zoo.purpose import SUFFIXES, better_model, describe_formats, lr_formats

    made_for = lr_formats(model)
    if lr_suffix != ".png":
        fmt = image_format(f"lr{lr_suffix}")
        better = better_model(name, fmt, quality)
        if fmt in made_for:
            if better is None:
                return None
            other, threshold = better
            return (
                f"irn: note: at --quality {quality}, --model {other} reconstructs better than {name} "
                f"({name} leads below quality {threshold} only)"
            )
        other = OTHER_FORMAT.format(model=name, made_for=describe_formats(made_for)) if made_for else ""
        if better is not None:
            other += f"; below quality {better[1]}, --model {better[0]} is made for this LR"
        return LOSSY_WARNING.format(fmt=lr_suffix[1:].upper()) + other
    if action == "up" or not made_for:
        return None
    intended = str(model.metadata.get("intended_lr") or describe_formats(made_for))
    flags = " or ".join(f"--format {SUFFIXES[f]}" for f in made_for)
    handover = better_model(name, made_for[0], 100) if len(made_for) == 1 else None
    if handover is not None:  # x2-jpeg: made for JPEG, but only below the quality where x2 takes over
        other, threshold = handover
        return (
            f"irn: note: --model {name} is trained for {intended}; add {flags} with --quality below {threshold} "
            f"(from {threshold} up, --model {other} reconstructs better)"
        )
    return f"irn: note: --model {name} is trained for {intended}; add {flags}"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from irn.imaging.io import ImageReadError, check_output_path, refuse_overwriting
    from irn.pipeline import for_inference
    from irn.progress import progress_bar
    from irn.zoo import load_irn, resolve, resolve_device, restorer_of

    action: Action = args.action
    task: Task = getattr(args, "task", RESCALE)
    quality = getattr(args, "quality", 95)
    if not 1 <= quality <= 100:
        raise IRNError(f"--quality {quality}: must be between 1 and 100")
    outdir = check_output_path(args.output, "-o", folder=True)
    if args.json is not None:
        check_output_path(args.json, "--json")
    inputs, missing = collect_inputs(list(args.inputs), args.recursive, outdir)
    if not inputs and missing:
        raise IRNError("; ".join(f"{p}: {why}" for p, why in missing))
    device = resolve_device(args.device)
    checkpoint = resolve(args.model)
    model = load_irn(args.model, device=device)  # by name: its catalogue purpose comes with it
    color = model.config.kind == "color"
    if color and task is RESCALE:
        raise IRNError(f"--model {args.model}: an IRN-Color model (decolorization, scale 1): use irn color")
    if not color and task is COLOR:
        raise IRNError(
            f"--model {args.model}: an x{model.scale} rescaling model, not an IRN-Color one: use irn rescale"
        )
    requested = getattr(args, "z", "auto")
    latent = model.recommended_z() if requested == "auto" else requested
    restorer = restorer_of(model)
    lr_suffix = LR_FORMATS[getattr(args, "format", "png")]
    advice = lr_format_advice(model, args.model, lr_suffix, action, quality)  # of the model as loaded (its CRM, card)
    model = for_inference(model)  # on a CPU the fast path: the same outputs, faster (irn.pipeline)
    scale = model.scale

    jobs = plan_outputs(action, inputs, outdir, scale, lr_suffix, task)
    if args.json:
        taken = {f"the input {job.source}": job.source for job in jobs}
        taken.update({f"the image output {out}": out for job in jobs for out in job.outputs.values()})
        refuse_overwriting({"--json": args.json}, taken)
    if advice is not None:
        print(advice, file=sys.stderr)
    opts = Options(
        action=action,
        device=device,
        max_pixels=args.max_pixels,
        lr_suffix=lr_suffix,
        quality=quality,
        z=latent,
        seed=getattr(args, "seed", 0),
        temperature=getattr(args, "temperature", 1.0),
        tile=args.tile,
        max_memory=args.max_memory,
        bicubic=getattr(args, "bicubic", False) or getattr(args, "baseline", False),
        scale=model.scale,
        color=color,
        restorer=restorer,
    )

    records: list[Record] = [Record(input=p, status="failed", error=f"{p}: {why}") for p, why in missing]
    for rec in records:
        print(f"irn: failed: {rec.error}", file=sys.stderr)

    desc = f"color {action}" if color else f"rescale {action} x{scale}"
    bar = progress_bar(jobs, desc=desc, unit="img")
    for job in bar:
        rec = Record(input=str(job.source))
        records.append(rec)
        if args.skip_existing and all(p.exists() for p in job.outputs.values()):
            rec.status = "skipped"
            rec.outputs = {k: str(v) for k, v in job.outputs.items()}
            if action == "roundtrip":
                _psnr_of_existing(job, rec, opts)
            tqdm.write(f"{job.source}: outputs exist, skipped", file=sys.stderr)
            continue
        try:
            _process(model, job, opts, rec)
        except ImageReadError as exc:
            rec.status, rec.error = "failed", str(exc)
        except OSError as exc:
            rec.status, rec.error = "failed", f"{job.source}: cannot write the output ({exc})"
        except RuntimeError as exc:
            if "out of memory" not in str(exc).lower() and "can't allocate memory" not in str(exc).lower():
                raise
            size = f" at {rec.size[1]}x{rec.size[0]}" if rec.size else ""
            rec.status, rec.error = "failed", f"{job.source}: out of memory on {device}{size}; try a smaller image"
        if rec.status == "failed":
            tqdm.write(f"irn: failed: {rec.error}", file=sys.stderr)
            continue
        for note in rec.notes:
            tqdm.write(f"{job.source}: note: {note}", file=sys.stderr)
        line = f"{job.source} -> " + ", ".join(rec.outputs.values())
        if action == "roundtrip":
            line += f"  PSNR-Y {_fmt_db(rec.psnr_y)}  PSNR-RGB {_fmt_db(rec.psnr_rgb)}"
            if opts.bicubic:
                line += (
                    f"  ({task.baseline_name}: PSNR-Y {_fmt_db(rec.bicubic_psnr_y)}"
                    f"  PSNR-RGB {_fmt_db(rec.bicubic_psnr_rgb)})"
                )
        tqdm.write(line, file=sys.stdout)
    bar.close()

    ok = [r for r in records if r.status == "ok"]
    skipped = [r for r in records if r.status == "skipped"]
    failed = [r for r in records if r.status == "failed"]
    mean_y = mean_rgb = bic_y = bic_rgb = None
    identical = 0
    if action == "roundtrip":
        scored = [r for r in ok + skipped if r.psnr_y is not None and r.psnr_rgb is not None]
        # an exactly reconstructed image (PSNR inf, e.g. 1x1) would make the mean inf: left out, counted
        finite = [r for r in scored if r.psnr_y != float("inf") and r.psnr_rgb != float("inf")]
        identical = len(scored) - len(finite)
        if finite:
            mean_y = sum(r.psnr_y for r in finite) / len(finite)  # type: ignore[misc]
            mean_rgb = sum(r.psnr_rgb for r in finite) / len(finite)  # type: ignore[misc]
            left_out = f" ({identical} reconstructed exactly, PSNR inf, left out)" if identical else ""
            baseline = ""
            if opts.bicubic:
                scored_bic = [r for r in finite if r.bicubic_psnr_y is not None and r.bicubic_psnr_rgb is not None]
                if scored_bic and all(r.bicubic_psnr_y != float("inf") for r in scored_bic):
                    bic_y = sum(r.bicubic_psnr_y for r in scored_bic) / len(scored_bic)  # type: ignore[misc]
                    bic_rgb = sum(r.bicubic_psnr_rgb for r in scored_bic) / len(scored_bic)  # type: ignore[misc]
                    baseline = f"  ({task.baseline_name}: PSNR-Y {_fmt_db(bic_y)}  PSNR-RGB {_fmt_db(bic_rgb)})"
            print(
                f"mean over {len(finite)} image(s){left_out}{'' if color else f', x{scale}'}: "
                f"PSNR-Y {_fmt_db(mean_y)}  PSNR-RGB {_fmt_db(mean_rgb)}{baseline}"
            )
        elif scored:
            print(f"all {len(scored)} image(s) reconstructed exactly: PSNR inf")
    summary = f"{len(ok)} written, {len(skipped)} skipped (outputs exist), {len(failed)} failed; outputs in {outdir}"
    print(summary, file=sys.stderr)

    if args.json:
        payload: dict[str, Any] = {
            "command": f"{task.command} {action}",
            "model": args.model,
            "checkpoint": str(checkpoint),
            "scale": scale,
            "device": device,
            "output_dir": str(outdir),
            ("grey_format" if color else "lr_format"): lr_suffix[1:],
            "max_pixels": args.max_pixels,
            "counts": {"ok": len(ok), "skipped": len(skipped), "failed": len(failed)},
            "images": [],
        }
        if action != "down":
            payload.update(z=opts.z, seed=opts.seed, temperature=opts.temperature)
        if action == "roundtrip":
            payload.update(
                mean_psnr_y=_json_number(mean_y), mean_psnr_rgb=_json_number(mean_rgb), exact_images=identical
            )
            if opts.bicubic:
                base = task.baseline_name
                payload[f"mean_{base}_psnr_y"] = _json_number(bic_y)
                payload[f"mean_{base}_psnr_rgb"] = _json_number(bic_rgb)
        for r in records:
            item = {
                k: v
                for k, v in vars(r).items()
                if (action == "roundtrip" or "psnr" not in k) and (opts.bicubic or not k.startswith("bicubic"))
            }
            for key in ("psnr_y", "psnr_rgb", "bicubic_psnr_y", "bicubic_psnr_rgb"):
                if key in item:
                    item[key] = _json_number(item[key])
            if task is COLOR:  # the names of this task: grey/color outputs, the grey baseline
                item = {k.replace("bicubic_", "baseline_"): v for k, v in item.items()}
                item["outputs"] = {task.lr_key if k == "lr" else task.hr_key: v for k, v in item["outputs"].items()}
                item["grey_size"] = item.pop("lr_size")
                item["color_size"] = item.pop("hr_size")
            payload["images"].append(item)
        try:
            from irn.imaging.io import write_json

            write_json(Path(args.json), payload)
        except OSError as exc:
            raise IRNError(f"--json {args.json}: cannot write the summary ({exc.strerror or exc})") from None
    return 1 if failed else 0
