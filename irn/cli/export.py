"""``irn export``: a model as a file for deployment. A Lightning training checkpoint becomes the
self-describing model file of ``irn.save`` (pt or safetensors); any model irn loads (a shipped name,
our files, the official x2/x3/x4/x8 and IRN-Color files, a training checkpoint) becomes those or an
ONNX export (``DIR/encoder.onnx``, ``DIR/decoder.onnx``, ``DIR/model.json``) for :mod:`irn.onnx`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from irn.errors import IRNError

HELP = "write a model for deployment: a training checkpoint as a model file, or any model as pt, safetensors or ONNX"
FORMATS = ("pt", "safetensors", "onnx")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        metavar="MODEL",
        help="training checkpoint of irn train (last.ckpt / best.ckpt), shipped model name (x2, x4, ...) or model file",
    )
    parser.add_argument(
        "-o", "--output", required=True, help="file to write (model.pt, model.safetensors), or a folder for onnx"
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="pt (torch.save, read with weights_only), safetensors, or onnx (a folder: encoder.onnx, decoder.onnx, "
        "model.json); default: safetensors for a .safetensors output, else pt",
    )


def run(args: argparse.Namespace) -> int:
    from irn.imaging.io import check_output_path, refuse_overwriting
    from irn.zoo import SHIPPED, is_training_checkpoint, load_module, resolve

    fmt = args.format or ("safetensors" if str(args.output).endswith(".safetensors") else "pt")
    dst = check_output_path(args.output, "-o", folder=fmt == "onnx")
    name = args.checkpoint
    src = resolve(name) if name in SHIPPED else Path(name)
    if not src.is_file():
        shipped = ", ".join(SHIPPED)
        raise IRNError(f"{src}: no such checkpoint or model file (shipped models: {shipped})")
    if fmt != "onnx":
        refuse_overwriting({"-o": dst}, {"the training checkpoint" if src.suffix == ".ckpt" else "the model": src})
    if is_training_checkpoint(src):
        from irn.train.export import model_from_checkpoint

        model, meta = model_from_checkpoint(src)
        what = f"step {meta['steps']}, {meta['train_seconds']:.0f} s of training"
    else:
        model, meta = load_module(src)
        model.metadata = meta  # type: ignore[assignment]
        what = f"{type(model).__name__}, from {src.name}"
    if fmt == "onnx":
        from irn.nn.network import IRN
        from irn.onnx_export import export_onnx

        if not isinstance(model, IRN):
            raise IRNError(f"{src}: a compression restoration module alone does not export to ONNX (an IRN does)")
        from irn.zoo import restorer_of

        if restorer_of(model) is not None:
            print(
                f"irn export: note: {src.name} carries a compression restoration module; the ONNX export leaves "
                "it out (the JPEG LR is upscaled as decoded; export --format pt or safetensors keeps it)",
                file=sys.stderr,
            )
        print(f"irn export: tracing the encoder and decoder graphs of {src.name} (a minute or two)", file=sys.stderr)
        export_onnx(model, dst)
        print(f"wrote {dst}/encoder.onnx, decoder.onnx, model.json ({what})", file=sys.stderr)
        return 0
    from irn.zoo import save

    save(model, dst, meta, format=fmt)
    print(f"wrote {dst} ({fmt}; {what})", file=sys.stderr)
    return 0
