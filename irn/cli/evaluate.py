"""``irn eval``: score a rescaling model (IRN, x3, IRN-Color, SAIN, T-IRN), or the bicubic baseline, on
folders of HR images.

The flags map one to one onto :func:`irn.eval.protocol.evaluate` (``--method bicubic`` is
``model=None``), whose docstring gives the protocol (the IRN paper's official evaluation);
the printed tables and the ``--json`` file are :mod:`irn.eval.report`'s. Without ``--data``,
the Set5 and Set14 ``HR`` folders under ``shared/datasets/`` beside the source checkout are
used when present.
"""

from __future__ import annotations

import argparse

from irn.cli.common import add_device_argument, number_type
from irn.errors import IRNError

HELP = "Evaluate a model (IRN, SAIN, T-IRN) or bicubic on HR image folders: PSNR/SSIM (Y, RGB), LR PSNR, LPIPS, time."

#: how the library's error messages name its parameters: by these flags
FLAGS = {
    "bicubic": "--method bicubic",
    "grey": "--method grey",
    "baseline": "--method",
    "y_only": "--y-only",
    "jpeg": "--jpeg",
    "webp": "--webp",
    "data": "--data",
    "scale": "--scale",
    "z": "--z",
    "draws": "--draws",
    "crop_border": "--crop-border",
    "device": "--device",
    "save_images": "--save-images",
}

_positive_int = number_type(int, "a whole number", lambda v: v >= 1, "must be at least 1, got {value}")
_non_negative_int = number_type(int, "a whole number", lambda v: v >= 0, "must not be negative, got {value}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--model",
        metavar="NAME|PATH",
        help="model name (x2, x4, sain-x2-jpeg, tirn-x2, ...: irn models) or checkpoint file (IRN, x3, IRN-Color, "
        "SAIN, T-IRN)",
    )
    what.add_argument(
        "--method",
        choices=("bicubic", "grey"),
        help="baseline instead of a model: bicubic (MATLAB bicubic down and up), or grey (the BT.601 luma copied "
        "to RGB: the baseline of IRN-Color models)",
    )
    parser.add_argument(
        "--scale",
        type=_positive_int,
        help="scale factor; required for --method bicubic, checked against a model's own",
    )
    parser.add_argument(
        "--data",
        action="append",
        metavar="DIR",
        help="folder of HR images (repeatable); default: Set5/HR and Set14/HR in shared/datasets beside the checkout",
    )
    parser.add_argument(
        "--z",
        choices=("auto", "sample", "zero"),
        default="auto",
        help="latent for upscaling: a sample of the model's latent distribution (IRN: Gaussian, as in the paper; "
        "SAIN: its mixture), zeros, or auto (default): the one the checkpoint recommends (metadata recommended_z), "
        "else the architecture's (IRN, SAIN: sample; T-IRN, IRN-Color: zero)",
    )
    parser.add_argument(
        "--draws", type=_positive_int, default=1, help="latent draws per image with seeds 0..N-1 (default 1)"
    )
    parser.add_argument(
        "--crop-border",
        type=_non_negative_int,
        metavar="PX",
        help="pixels cut per side before scoring (default: scale; 0 for IRN-Color models and --method grey)",
    )
    parser.add_argument(
        "--y-only", action="store_true", help="score on the Y channel only (no RGB figures; about twice as fast)"
    )
    lossy = parser.add_mutually_exclusive_group()
    lossy.add_argument(
        "--jpeg",
        type=_positive_int,
        metavar="Q",
        help="store the LR (the model's and bicubic's) as a JPEG of quality Q (1-100, Pillow, 4:2:0) before "
        "upscaling: how a rescaling survives a lossy LR (the protocol of the JPEG models: x2-jpeg, sain-*-jpeg)",
    )
    lossy.add_argument(
        "--webp",
        type=_positive_int,
        metavar="Q",
        help="store the LR (the model's and bicubic's) as a WebP of quality Q (1-100, Pillow's lossy WebP) before "
        "upscaling (the protocol of sain-x2-webp); not with --jpeg",
    )
    parser.add_argument(
        "--no-restorer",
        action="store_true",
        help="with --jpeg, upscale the decoded JPEG as it is, without the compression restoration module "
        "a model file may carry",
    )
    parser.add_argument("--lpips", action="store_true", help="also LPIPS (AlexNet; needs its weights in TORCH_HOME)")
    parser.add_argument("--json", metavar="PATH", help="write all figures to PATH as JSON")
    parser.add_argument(
        "--save-images", metavar="DIR", help="write HR, LR, reconstruction, bicubic and a comparison per image"
    )
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    from irn.eval.protocol import prepare_evaluation, run_evaluation
    from irn.eval.report import markdown_tables, write_report
    from irn.imaging.io import check_output_path, refuse_overwriting

    if args.no_restorer and args.jpeg is None:
        raise IRNError("--no-restorer applies with --jpeg Q (the restoration module runs on a JPEG LR only)")
    if args.json is not None:
        check_output_path(args.json, "--json")
    evaluation = prepare_evaluation(
        None if args.method else args.model,
        args.data,
        scale=args.scale,
        z=args.z,
        draws=args.draws,
        crop_border=args.crop_border,
        y_only=args.y_only,
        lpips=args.lpips,
        device=args.device,
        save_images=args.save_images,
        names=FLAGS,
        baseline=args.method or "bicubic",
        jpeg=args.jpeg,
        webp=args.webp,
        use_restorer=not args.no_restorer,
    )
    if args.json:
        images = {f"the data image {p}": p for d in evaluation.datasets for p in d.images}
        refuse_overwriting({"--json": args.json}, images)
    report = run_evaluation(evaluation)
    print(markdown_tables(report))
    if args.json:
        write_report(args.json, report, "--json")
    return 0
