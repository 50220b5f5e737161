"""``irn hybrid``: an image that shows NEAR up close and FAR from a distance (see :mod:`irn.experiments.hybrid`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from irn.cli.common import parse_wxh
from irn.errors import IRNError

if TYPE_CHECKING:
    from torch import Tensor

HELP = "make a hybrid image: NEAR up close, FAR from a distance (Gaussian blur in linear light)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("near", help="image seen up close (sets the output size unless --size)")
    parser.add_argument("far", help="image seen from a distance (centre-cropped and resized to fit)")
    parser.add_argument(
        "-o", "--output", required=True, help="output PNG; also writes <stem>_strip.png and <stem>.json"
    )
    parser.add_argument("--size", default=None, metavar="WxH", help="output size (default: NEAR's size)")
    parser.add_argument("--sigma", type=float, default=6.0, help="Gaussian blur sigma in pixels (6)")
    parser.add_argument("--near-weight", type=float, default=1.0, help="weight of the sharp match to NEAR (1)")
    parser.add_argument("--far-weight", type=float, default=1.0, help="weight of the blurred match to FAR (1)")
    parser.add_argument("--gamma", type=float, default=2.2, help="linear light = value ** gamma for the blur (2.2)")
    parser.add_argument(
        "--solver",
        choices=("admm", "gd"),
        default="admm",
        help="admm: DCT-diagonal ADMM (default, fast); gd: sigmoid-parametrised gradient descent (plain recipe)",
    )
    parser.add_argument("--iterations", type=int, default=200, help="ADMM iterations at most (200)")
    parser.add_argument("--tol", type=float, default=1e-4, help="ADMM relative residual tolerance (1e-4)")
    parser.add_argument("--steps", type=int, default=200, help="gd: gradient steps (200)")
    parser.add_argument("--lr", type=float, default=0.3, help="gd: step size on the per-pixel gradient (0.3)")
    parser.add_argument(
        "--distances", default="1,2,4,8", help="viewing-distance factors of the strip, comma-separated (1,2,4,8)"
    )


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    w, h = parse_wxh(text, "--size", lo=8, hi=8192)
    return h, w


def _parse_distances(text: str) -> tuple[int, ...]:
    try:
        factors = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise IRNError(f"--distances must be comma-separated integers, got {text!r}") from None
    if not factors or any(f < 1 or f > 64 for f in factors):
        raise IRNError(f"--distances must be integers between 1 and 64, got {text!r}")
    return factors


def _read(path_text: str, what: str) -> Tensor:
    from irn.imaging.io import IMAGE_SUFFIXES, read_image

    path = Path(path_text)
    if not path.is_file():
        raise IRNError(f"{path}: no such {what} image file")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise IRNError(f"{path}: not an image file (suffix {path.suffix or 'none'})")
    try:
        return read_image(path)
    except OSError as exc:
        raise IRNError(f"{path}: cannot read the {what} image ({exc})") from None


def run(args: argparse.Namespace) -> int:
    from irn.experiments import hybrid
    from irn.imaging.io import check_output_path, refuse_overwriting, save_pil, write_image, write_json

    out = check_output_path(args.output, "-o")
    if out.suffix.lower() != ".png":
        raise IRNError(f"{out}: the output must be a .png file")
    strip_path = out.with_name(f"{out.stem}_strip.png")
    json_path = out.with_suffix(".json")
    outputs = {"-o": out, "-o (its strip)": strip_path, "-o (its JSON)": json_path}
    # every file written, checked before the solve: a derived one that is a folder or cannot be
    # created would otherwise fail after the main image is written, leaving partial output
    check_output_path(strip_path, "-o (its strip)")
    check_output_path(json_path, "-o (its JSON)")
    refuse_overwriting(outputs, {"the NEAR image": args.near, "the FAR image": args.far})
    size = _parse_size(args.size)
    factors = _parse_distances(args.distances)
    config = hybrid.HybridConfig(
        sigma=args.sigma,
        near_weight=args.near_weight,
        far_weight=args.far_weight,
        gamma=args.gamma,
        solver=args.solver,
        iterations=args.iterations,
        tol=args.tol,
        steps=args.steps,
        lr=args.lr,
    )
    near = _read(args.near, "NEAR")
    far = _read(args.far, "FAR")
    if size is None:
        size = (int(near.shape[-2]), int(near.shape[-1]))
    near = hybrid.fit_to(near, size)
    far = hybrid.fit_to(far, size)

    result = hybrid.make_hybrid(near, far, config)
    strip = hybrid.viewing_strip(result.image, factors, sigma=config.sigma, gamma=config.gamma)
    doc = {
        "near": str(args.near),
        "far": str(args.far),
        "size_wh": [size[1], size[0]],
        "config": config.to_dict(),
        **result.to_dict(),
        "strip": str(strip_path),
        "distances": list(factors),
    }
    # everything computed first, then written (each file atomically)
    write_image(result.image, out)
    save_pil(strip, strip_path)
    write_json(json_path, doc)
    info = result.info
    print(
        f"loss {result.loss:.6f} (near {result.near_term:.6f} + far {result.far_term:.6f}; "
        f"8-bit {result.loss_8bit:.6f}), {info.solver} {info.iterations} iterations in {info.seconds:.2f} s"
    )
    print(f"wrote {out}, {strip_path}, {json_path}")
    return 0
