"""``irn export``: a Lightning training checkpoint -> the self-describing model file of ``irn.save``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from irn.errors import IRNError

HELP = "turn a training checkpoint (last.ckpt / best.ckpt) into a model file that irn.load reads"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="Lightning checkpoint written by irn train")
    parser.add_argument("-o", "--output", required=True, help="model file to write (e.g. model.pt)")


def run(args: argparse.Namespace) -> int:
    from irn.imaging.io import check_output_path, refuse_overwriting
    from irn.train.export import export_checkpoint

    src, dst = Path(args.checkpoint), check_output_path(args.output, "-o")
    if not src.is_file():
        raise IRNError(f"{src}: no such checkpoint file")
    refuse_overwriting({"-o": dst}, {"the training checkpoint": src})
    meta = export_checkpoint(src, dst)
    print(f"wrote {dst} (step {meta['steps']}, {meta['train_seconds']:.0f} s of training)", file=sys.stderr)
    return 0
