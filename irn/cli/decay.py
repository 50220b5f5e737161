"""``irn decay``: repeat downscale -> upscale N times and measure what is lost (see :mod:`irn.experiments.decay`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from irn.cli.common import add_device_argument, seed_type
from irn.errors import IRNError

HELP = "repeat downscale -> upscale N times with several rescalers; JSON figures, a PSNR plot and a GIF"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="input image (modcropped to a multiple of the scale)")
    parser.add_argument("-o", "--output", required=True, help="output folder for decay.json, decay.png, decay.gif")
    parser.add_argument(
        "-m",
        "--method",
        action="append",
        default=None,
        metavar="NAME",
        help="rescaler, repeatable or comma-separated: bicubic, bilinear, box, nearest, lanczos2, lanczos3 "
        "(irn.imaging.resize), pil-lanczos, pil-bicubic, pil-bilinear, pil-box, pil-hamming, pil-nearest (Pillow), "
        "irn:MODEL[@zero|@sample|@resample] (MODEL: a name from irn models or a checkpoint path). "
        "Default: bicubic, pil-lanczos, and irn:x<scale>@zero, irn:x<scale>@sample where irn ships that scale "
        "(x2, x4)",
    )
    parser.add_argument("-n", "--cycles", type=int, default=20, help="number of downscale -> upscale cycles (20)")
    parser.add_argument("-s", "--scale", type=int, default=None, help="factor (default: the IRN model's, else 2)")
    parser.add_argument(
        "--z",
        choices=("zero", "sample", "resample"),
        default="sample",
        help="latent for irn: methods without a @suffix: zero, sample (fixed seed, the same z every cycle; "
        "default) or resample (seed + cycle)",
    )
    parser.add_argument("--seed", type=seed_type, default=0, help="seed of the sampled latent (0)")
    parser.add_argument("--jpeg", type=int, default=None, metavar="Q", help="JPEG round trip at quality Q")
    parser.add_argument(
        "--jpeg-on", choices=("lr", "hr", "both"), default="both", help="where --jpeg applies (both: LR and HR)"
    )
    parser.add_argument("--gif-frames", type=int, default=50, help="most frames in the GIF, cycles evenly spread (50)")
    parser.add_argument("--gif-crop", type=int, default=128, help="side of the centre crop shown in the GIF (128)")
    parser.add_argument(
        "--no-shortcut",
        action="store_true",
        help="compute every cycle even after the sequence starts repeating (by default the repeat is copied)",
    )
    parser.add_argument("--save-final", action="store_true", help="also write each method's last image as PNG")
    add_device_argument(parser)


def _method_specs(args: argparse.Namespace) -> list[str]:
    if not args.method:
        return []
    specs = [s.strip() for item in args.method for s in item.split(",") if s.strip()]
    if len(set(specs)) != len(specs):
        raise IRNError(f"a method is given twice in {', '.join(specs)}")
    return specs


def _safe(name: str) -> str:
    """A rescaler's name as a file-name part: ``irn:x2@zero`` -> ``irn_x2@zero``."""
    return "".join(c if c.isalnum() or c in "-_@" else "_" for c in name)


def _scale(args: argparse.Namespace, specs: list[str], models: dict) -> int:
    if args.scale is not None:
        if args.scale < 2:
            raise IRNError(f"--scale must be 2 or more (1 does not rescale), got {args.scale}")
        return int(args.scale)
    from irn.zoo import load_irn

    for spec in specs:
        if spec.startswith("irn:"):
            body = spec[4:].rsplit("@", 1)[0] if spec.rsplit("@", 1)[-1] in ("zero", "sample", "resample") else spec[4:]
            if body and body not in models:
                models[body] = load_irn(body)
            if body:
                return models[body].scale
    return 2


def default_methods(scale: int) -> list[str]:
    """The methods compared without ``-m``: bicubic, Pillow's Lanczos and, where one is shipped, the IRN of
    that scale with z = 0 and with a sampled z."""
    from irn.zoo.catalogue import SHIPPED

    specs = ["bicubic", "pil-lanczos"]
    if f"x{scale}" in SHIPPED:
        specs += [f"irn:x{scale}@zero", f"irn:x{scale}@sample"]
    return specs


def run(args: argparse.Namespace) -> int:
    import torch

    from irn.experiments import decay
    from irn.imaging.io import IMAGE_SUFFIXES, check_output_path, read_image, refuse_overwriting, write_json
    from irn.progress import progress_bar
    from irn.zoo import resolve_device

    device = torch.device(resolve_device(args.device))
    out = check_output_path(args.output, "-o", folder=True)
    image_path = Path(args.image)
    if image_path.is_dir():
        raise IRNError(f"{image_path}: is a folder; give one image file")
    if not image_path.is_file():
        raise IRNError(f"{image_path}: no such image file")
    if image_path.suffix.lower() not in IMAGE_SUFFIXES:
        raise IRNError(f"{image_path}: not an image file (suffix {image_path.suffix or 'none'})")
    config = decay.DecayConfig(
        cycles=args.cycles,
        jpeg_quality=args.jpeg,
        jpeg_on=args.jpeg_on,
        gif_frames=args.gif_frames,
        gif_crop=args.gif_crop,
        shortcut=not args.no_shortcut,
    )
    models: dict = {}
    specs = _method_specs(args)
    scale = _scale(args, specs, models)
    if not specs:
        specs = default_methods(scale)
        if len(specs) == 2:
            print(
                f"irn decay: no shipped IRN for x{scale}; comparing bicubic and pil-lanczos "
                "(add -m irn:CHECKPOINT to include a model)",
                file=sys.stderr,
            )
    rescalers = [decay.make_rescaler(s, scale, default_z=args.z, seed=args.seed, models=models) for s in specs]
    names = ["decay.json", "decay.png", "decay.gif"]
    if args.save_final:
        names += [f"final_{_safe(r.name)}.png" for r in rescalers]
    written = {f"-o {out} (its {name})": out / name for name in names}
    # every file written, checked before the cycles: one that is a folder or cannot be created would
    # otherwise fail only after all the work (and after the final_*.png are written)
    for name in names:
        check_output_path(out / name, f"-o {out} (its {name})")
    refuse_overwriting(written, {"the input image": image_path})
    for model in models.values():
        model.to(device)
    try:
        image = read_image(image_path)
    except OSError as exc:
        raise IRNError(f"{image_path}: cannot read the image ({exc})") from None

    out.mkdir(parents=True, exist_ok=True)
    traces = []
    for r in rescalers:
        x = image.to(device) if r.name.startswith("irn:") else image
        with progress_bar(total=config.cycles, desc=r.name, unit="cycle") as bar:
            trace = decay.decay_trace(x, r, config, progress=lambda _c: bar.update(1))
        trace.frames = {k: v.cpu() for k, v in trace.frames.items()}
        traces.append(trace)
        final = trace.psnr_vs_original[-1]
        fixed = trace.fixed_point_cycle
        print(
            f"{r.name:>24}: cycle {config.cycles} PSNR-Y {'inf' if final is None else f'{final:.3f}'} dB, "
            f"SSIM-Y {trace.ssim_vs_original[-1]:.5f}, fixed point "
            f"{'at cycle ' + str(fixed) if fixed else 'not reached'} "
            f"({trace.computed_cycles} cycles computed, {trace.seconds:.1f} s)"
        )
        if args.save_final:
            from irn.imaging.io import write_image

            write_image(trace.final[0], out / f"final_{_safe(r.name)}.png")

    h, w = decay.modcrop(image, scale).shape[-2:]
    doc = decay.summarise(traces, image=str(image_path), size=(h, w), scale=scale, config=config)
    write_json(out / "decay.json", doc)
    jpeg = f", JPEG q{config.jpeg_quality} on {config.jpeg_on}" if config.jpeg_quality else ""
    decay.write_plot(traces, str(out / "decay.png"), title=f"{image_path.name}: x{scale} rescaling cycles{jpeg}")
    decay.write_gif(traces, str(out / "decay.gif"))
    print(f"wrote {out / 'decay.json'}, {out / 'decay.png'}, {out / 'decay.gif'}")
    return 0
