"""``irn chart``: write the project's generated resolution chart (the sample input)."""

from __future__ import annotations

import argparse
from pathlib import Path

from irn.cli.common import parse_wxh
from irn.errors import IRNError

#: the output when -o is not given: written only where no such file exists (a file named with -o is replaced)
DEFAULT = "chart.png"
HELP = "Write the generated resolution chart (Siemens star, zone plate, bars, text, gradients, patches)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", help=f"output image file (default {DEFAULT}, never replaced; a file named here is)"
    )
    parser.add_argument("--size", default="512", metavar="N|WxH", help="chart size, 128 to 8192 pixels a side (512)")


#: the largest side --size accepts (a 8192^2 chart is 0.2 GB as 8-bit, 0.8 GB as the float tensor written)
MAX_SIZE = 8192


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from irn.experiments.chart import MIN_SIZE, make_chart
    from irn.imaging.io import check_output_path, image_format, write_image

    width, height = parse_wxh(args.size, "--size", square=True)
    if width < MIN_SIZE or height < MIN_SIZE:
        raise IRNError(f"--size {width}x{height}: the chart needs at least {MIN_SIZE}x{MIN_SIZE} pixels")
    if width > MAX_SIZE or height > MAX_SIZE:
        raise IRNError(f"--size {width}x{height}: at most {MAX_SIZE}x{MAX_SIZE} pixels")
    path = Path(DEFAULT if args.output is None else args.output)
    if args.output is None and (path.exists() or path.is_symlink()):
        raise IRNError(f"{path} exists already; name the output with -o (irn chart -o FILE replaces FILE)")
    try:
        image_format(path)
    except ValueError:
        raise IRNError(f"-o {path}: unknown image suffix {path.suffix!r} (use .png)") from None
    if path.is_dir():
        raise IRNError(f"-o {path}: is a folder; give a file name such as {path / 'chart.png'}")
    check_output_path(path, "-o")
    import torch

    chart = torch.from_numpy(np.asarray(make_chart(width, height)).transpose(2, 0, 1).astype(np.float32) / 255.0)
    try:
        write_image(chart, path)
    except OSError as exc:
        raise IRNError(f"-o {path}: cannot write ({exc.strerror or exc})") from None
    print(f"wrote {path} ({width}x{height})")
    return 0
