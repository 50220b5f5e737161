"""The ``tiling`` section of ``benchmarks/run.py``: PSNR of tiled against whole-image down and up
for growing overlaps (the measurement behind :data:`irn.imaging.tiling.DEFAULT_OVERLAP`)."""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import REPO, Row, load_model, psnr


def bench_tiling(args: argparse.Namespace) -> list[Row]:
    from irn.imaging.io import read_image
    from irn.imaging.tiling import Tiling, tiled_downscale, tiled_upscale
    from irn.nn.fast import FastIRN

    image = REPO.parent / "shared" / "datasets" / "Set14" / "HR" / "baboon.png"
    hr = read_image(image)[None] if image.exists() else torch.rand(1, 3, 480, 500)
    if args.quick:
        hr = hr[..., :96, :96]
    rows = []
    for scale in args.scales:
        plain, source = load_model(scale, getattr(args, f"x{scale}"))
        model = FastIRN(plain)
        tile = 16 if args.quick else 48
        with torch.inference_mode():
            lr = model.downscale(hr)
            up = model.upscale(lr, z="zero", size=tuple(hr.shape[-2:]))
            for overlap in (0, 2, 4, 8, 16, 32) if not args.quick else (0, 8):
                t = Tiling(tile=tile, overlap=overlap)
                lr_t = tiled_downscale(model, hr, t)
                up_t = tiled_upscale(model, lr, t, z="zero", size=tuple(hr.shape[-2:]))
                rows.append(
                    Row(
                        "tiling",
                        f"x{scale} {image.name if image.exists() else 'random'} tile {tile} LR px",
                        f"overlap {overlap} LR px",
                        "cpu",
                        f"down PSNR {psnr(lr_t, lr):.1f} dB, up PSNR {psnr(up_t, up):.1f} dB",
                        note=source,
                    )
                )
    return rows
