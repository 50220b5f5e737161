"""``irn craft``: an image whose thumbnail shows something else, its reverse, and a detector
(see :mod:`irn.experiments.craft`)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from irn.cli.common import add_device_argument, parse_wxh
from irn.errors import IRNError

HELP = "craft an image whose downscale by a named resizer shows another image (or --reverse, or --check one)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cover", nargs="?", help="COVER: what the image looks like at full size")
    parser.add_argument("target", nargs="?", help="TARGET: what its downscale shows (fitted to --size with Lanczos)")
    parser.add_argument("-o", "--output", help="the crafted image, OUT.png (PNG: lossless)")
    parser.add_argument(
        "--resizer",
        default="pil-bicubic",
        help="pil-nearest, pil-bilinear, pil-bicubic (default), pil-lanczos, cv2-nearest, cv2-linear, cv2-area, "
        "torch-bilinear, torch-bilinear-aa, torch-bicubic, torch-bicubic-aa, matlab-bicubic, "
        "irn:MODEL (a model name such as x2 or tirn-x2, see irn models, or a checkpoint path)",
    )
    parser.add_argument("--size", help="thumbnail size WIDTHxHEIGHT (default: TARGET's size; irn: COVER / scale)")
    parser.add_argument("--json", dest="json_path", metavar="PATH", help="also write the figures to PATH as JSON")
    parser.add_argument(
        "--reverse",
        action="store_true",
        help="instead: an LR image that looks like COVER whose IRN upscale (z = 0) looks like TARGET "
        "(needs --resizer irn:MODEL)",
    )
    parser.add_argument(
        "--check", metavar="IMAGE", help="instead: flag IMAGE if its downscales by different resizers disagree"
    )
    parser.add_argument("--threshold", type=float, default=None, help="--check: verdict threshold in dB (14)")
    irn_group = parser.add_argument_group("irn:MODEL and --reverse")
    irn_group.add_argument(
        "--weight",
        type=float,
        default=None,
        help="weight of the TARGET term in mse(x, COVER) + weight * mse(., TARGET); inf: hit TARGET "
        "(default: 100 for the downscale, 10 for --reverse)",
    )
    irn_group.add_argument("--rounds", type=int, default=1, help="irn: box rounds (forward passes only) (1)")
    irn_group.add_argument(
        "--gauss-newton", type=int, default=3, help="irn: Gauss-Newton steps with the model's Jacobian (3)"
    )
    irn_group.add_argument("--cg-steps", type=int, default=5, help="irn: conjugate-gradient steps per Gauss-Newton (5)")
    irn_group.add_argument(
        "--steps", type=int, default=None, help="Adam steps through the model (irn: 0, --reverse: 100)"
    )
    irn_group.add_argument(
        "--curve", metavar="W1,W2,...", help="irn: also craft at these weights and report the trade-off curve"
    )
    irn_group.add_argument("--upscaled", metavar="PATH", help="--reverse: also write the IRN upscale of OUT here")
    add_device_argument(irn_group)


def _emit(doc: dict[str, Any], json_path: str | None, summary: str) -> None:
    """The JSON on stdout (and in ``json_path``), a one-line summary on stderr."""
    from irn.imaging.io import json_text, write_json

    print(json_text(doc))
    print(summary, file=sys.stderr)
    if json_path:
        write_json(json_path, doc)


def _read(path_text: str) -> Any:
    from irn.experiments.craft.resizers import as_uint8
    from irn.imaging.io import read_image_checked

    return as_uint8(read_image_checked(Path(path_text)).rgb)


def _png_output(args: argparse.Namespace) -> Path:
    if not args.output:
        raise IRNError("give the output image with -o OUT.png")
    out = Path(args.output)
    if out.suffix.lower() != ".png":
        raise IRNError(f"{out}: the output must be a .png (a lossy format would destroy the crafted pixels)")
    from irn.imaging.io import check_output_path

    return check_output_path(out, "-o")


def _write_png(image: Any, path: Path) -> Any:
    """Write (H, W, 3) uint8 as PNG atomically, then reopen it: what a reader of the file gets."""
    import numpy as np
    import torch
    from PIL import Image

    from irn.imaging.io import write_image

    write_image(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255, path)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()


def _weights(text: str) -> list[float]:
    try:
        weights = [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise IRNError(f"--curve must be comma-separated numbers, got {text!r}") from None
    if not weights or any(w <= 0 or math.isnan(w) for w in weights):
        raise IRNError(f"--curve weights must be positive, got {text!r}")
    return weights


@contextmanager
def _progress(total: int, desc: str) -> Iterator[Callable[[str], None]]:
    """A progress bar over a craft's ``total`` units (on stderr, a terminal only); yields the hook
    that counts one unit done in a stage and names the stage in the description."""
    from irn.progress import progress_bar

    with progress_bar(total=total, desc=desc, unit="step") as bar:

        def tick(stage: str) -> None:
            bar.set_description_str(f"{desc}: {stage}", refresh=False)
            bar.update(1)

        yield tick


def _load_model(resizer: str, device: str) -> tuple[Any, Any]:
    """(plain model for verification and gradients, inference-optimised view for forward passes)."""
    import torch

    from irn.pipeline import for_inference
    from irn.zoo import load_irn, resolve_device

    model = load_irn(resizer[4:], device=torch.device(resolve_device(device)))
    return model, for_inference(model)  # the fast path on a CPU


def run(args: argparse.Namespace) -> int:
    from irn.imaging.io import check_output_path, refuse_overwriting

    if args.json_path:
        check_output_path(args.json_path, "--json")
    if args.check:
        refuse_overwriting({"--json": args.json_path}, {"the IMAGE": args.check})
        return _run_check(args)
    from irn.experiments.craft import attack, resizers

    if args.cover is None or args.target is None:
        raise IRNError("give COVER and TARGET (or --check IMAGE)")
    resizers.check_resizer(args.resizer)
    size = parse_wxh(args.size)[::-1] if args.size else None  # (height, width)
    out = _png_output(args)
    if args.upscaled:
        if not args.reverse:
            raise IRNError("--upscaled applies to --reverse only")
        if Path(args.upscaled).suffix.lower() != ".png":
            raise IRNError(f"{args.upscaled}: --upscaled must be a .png")
        check_output_path(args.upscaled, "--upscaled")
    refuse_overwriting(
        {"-o": out, "--upscaled": args.upscaled, "--json": args.json_path},
        {"the COVER image": args.cover, "the TARGET image": args.target},
    )
    given = [flag for flag, value in (("--weight", args.weight), ("--steps", args.steps)) if value is not None]
    if given and not args.resizer.startswith("irn:"):
        raise IRNError(f"{given[0]} applies to irn:MODEL resizers and --reverse only")
    if args.weight is not None and (math.isnan(args.weight) or args.weight <= 0):
        raise IRNError(f"--weight must be positive, got {args.weight}")
    if args.steps is not None and args.steps < 0:
        raise IRNError(f"--steps must be >= 0, got {args.steps}")
    for flag, value in (("--rounds", args.rounds), ("--gauss-newton", args.gauss_newton)):
        if value < 0:
            raise IRNError(f"{flag} must be >= 0, got {value}")
    if args.cg_steps < 1:
        raise IRNError(f"--cg-steps must be >= 1, got {args.cg_steps}")
    curve = _weights(args.curve) if args.curve else None
    if args.reverse:
        return _run_reverse(args, out)
    cover = _read(args.cover)
    target = _read(args.target)
    doc: dict[str, Any] = {
        "mode": "craft",
        "resizer": args.resizer,
        "cover": args.cover,
        "target": args.target,
        "output": str(out),
        "cover_size": [cover.shape[1], cover.shape[0]],
    }
    if args.resizer.startswith("irn:"):
        model, fast = _load_model(args.resizer, args.device)
        weight = 100.0 if args.weight is None else args.weight
        steps = 0 if args.steps is None else args.steps
        kwargs = {
            "rounds": args.rounds,
            "gauss_newton": args.gauss_newton,
            "cg_steps": args.cg_steps,
            "steps": steps,
            "size": size,
        }
        units = {k: v for k, v in kwargs.items() if k != "size"}
        with _progress(attack.craft_irn_units(weight=weight, **units), f"crafting for {args.resizer}") as tick:
            result = attack.craft_irn(cover, target, fast, weight=weight, resizer=args.resizer, progress=tick, **kwargs)
        doc["library"] = "IRN (model.downscale)"
        doc.update(units, weight=weight, stages=result.details["stages"])
        if curve:
            total = sum(attack.craft_irn_units(weight=w, **units) for w in curve)
            with _progress(total, f"--curve for {args.resizer}") as tick:
                doc["curve"] = attack.irn_tradeoff(cover, target, fast, curve, progress=tick, **kwargs)
    else:
        if curve:
            raise IRNError("--curve applies to irn:MODEL resizers only")
        if size is None and (target.shape[0] >= cover.shape[0] or target.shape[1] >= cover.shape[1]):
            raise IRNError(
                f"TARGET ({target.shape[1]}x{target.shape[0]}) is not smaller than COVER "
                f"({cover.shape[1]}x{cover.shape[0]}): give the thumbnail size with --size WxH"
            )
        model = None
        result = attack.craft(cover, target, args.resizer, size)
        doc["library"] = resizers.LINEAR_RESIZERS[args.resizer][1]
        doc["solver"] = result.details["solver"]
    started = time.perf_counter()
    reopened = _write_png(result.image, out)
    check = attack.verify(reopened, cover, target, args.resizer, result.size, model=model)
    doc.update(
        size=[result.size[1], result.size[0]],
        psnr_cover=check.psnr_cover,
        psnr_target=check.psnr_target,
        psnr_bound=result.psnr_bound,
        predicted_psnr_target=result.predicted_psnr_target,
        seconds=result.seconds,
        verify_seconds=time.perf_counter() - started,
    )
    summary = (
        f"wrote {out}: PSNR(x, COVER) {check.psnr_cover:.2f} dB, PSNR({args.resizer} thumbnail, TARGET) "
        f"{check.psnr_target:.2f} dB"
    )
    if result.psnr_bound is not None:
        doc["bound_gap_db"] = result.psnr_bound - check.psnr_cover
        summary += f", least-change bound {result.psnr_bound:.2f} dB"
    _emit(doc, args.json_path, summary + f" ({result.seconds:.2f} s)")
    return 0


def _run_reverse(args: argparse.Namespace, out: Path) -> int:
    from irn.experiments.craft import attack

    if not args.resizer.startswith("irn:"):
        raise IRNError("--reverse needs an IRN: --resizer irn:MODEL (a model name or a checkpoint path)")
    if args.size:
        raise IRNError("--reverse takes no --size: the LR size is TARGET's size / the model's scale")
    if args.curve:
        raise IRNError("--curve applies to the downscale craft, not --reverse")
    if args.weight is not None and not math.isfinite(args.weight):
        raise IRNError(f"--reverse needs a finite --weight, got {args.weight}")
    cover = _read(args.cover)
    target = _read(args.target)
    model, _ = _load_model(args.resizer, args.device)
    weight = 10.0 if args.weight is None else args.weight
    steps = 100 if args.steps is None else args.steps
    with _progress(steps, f"reverse craft for {args.resizer}") as tick:
        result = attack.craft_reverse(cover, target, model, weight=weight, steps=steps, progress=tick)
    reopened = _write_png(result.image, out)
    if args.upscaled:
        _write_png(result.upscaled, Path(args.upscaled))
    doc = {
        "mode": "reverse",
        "resizer": args.resizer,
        "cover": args.cover,
        "target": args.target,
        "output": str(out),
        "size": [reopened.shape[1], reopened.shape[0]],
        "upscaled_size": [result.upscaled.shape[1], result.upscaled.shape[0]],
        "weight": weight,
        "steps": steps,
        "psnr_cover": result.psnr_cover,
        "psnr_target": result.psnr_target,
        "start_psnr_cover": result.psnr_cover_start,
        "start_psnr_target": result.psnr_target_start,
        "seconds": result.seconds,
    }
    if args.upscaled:
        doc["upscaled"] = args.upscaled
    summary = (
        f"wrote {out}: PSNR(LR, COVER) {result.psnr_cover:.2f} dB, PSNR(IRN upscale, TARGET) "
        f"{result.psnr_target:.2f} dB ({result.seconds:.1f} s)"
    )
    _emit(doc, args.json_path, summary)
    return 0


def _run_check(args: argparse.Namespace) -> int:
    from irn.experiments.craft import detect

    if args.cover is not None or args.target is not None:
        raise IRNError("--check takes one IMAGE and no COVER/TARGET")
    if args.output:
        raise IRNError("--check writes no image: drop -o (--json PATH writes the report)")
    threshold = detect.CHECK_THRESHOLD_DB if args.threshold is None else args.threshold
    if not math.isfinite(threshold):
        raise IRNError(f"--threshold must be a finite number of dB, got {threshold}")
    image = _read(args.check)
    report = detect.check_image(image, threshold=threshold)
    verdict = "suspicious" if report.suspicious else "clean"
    doc = {
        "mode": "check",
        "image": args.check,
        "verdict": verdict,
        "min_psnr": report.min_psnr,
        "threshold": report.threshold,
        "worst_size": [report.worst_size[1], report.worst_size[0]],
        "worst_method": report.worst_method,
        "sizes": report.sizes,
    }
    summary = (
        f"{verdict}: lowest PSNR between a thumbnail and its area average {report.min_psnr:.2f} dB "
        f"({report.worst_method}, {report.worst_size[1]}x{report.worst_size[0]}); threshold {threshold:g} dB"
    )
    _emit(doc, args.json_path, summary)
    return 1 if report.suspicious else 0
