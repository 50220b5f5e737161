"""``irn export``: a model as a file for deployment. A Lightning training checkpoint becomes the
self-describing model file of ``irn.save`` (pt or safetensors); any model irn loads (a model name,
our files, the official files of every registered architecture, a training checkpoint) becomes those
or, for the architectures whose registry entry says so (``onnx``: the IRN family, SAIN, T-IRN), an
ONNX export (``DIR/encoder.onnx``, ``DIR/decoder.onnx``, ``DIR/model.json``) for :mod:`irn.onnx`; any
other is refused in one line naming why (its entry's ``onnx_reason``). A model given by name keeps its
catalogue purpose in the file's metadata (``purpose``, :mod:`irn.zoo.purpose`)."""

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
        help="training checkpoint of irn train (last.ckpt / best.ckpt), model name (x2, sain-x2-jpeg, ...: irn models) "
        "or model file",
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

    parser.add_argument(
        "--weights",
        choices=("average", "trained"),
        default="average",
        help="of a training checkpoint: the moving average of the weights where the run kept one "
        "(optim.ema_decay; what its validation scored; default), or the optimiser's trained weights",
    )


#: the file suffixes that name a format; an -o with one of them must be of that format
SUFFIX_FORMATS = {".pt": "pt", ".pth": "pt", ".safetensors": "safetensors", ".onnx": "onnx"}


def check_suffix(output: Path, fmt: str) -> None:
    """Refuse, in one line, an ``-o`` whose suffix names another format than the one written (a torch
    file named ``x2.onnx``, a safetensors file named ``.pt``); an ONNX export is a folder."""
    named = SUFFIX_FORMATS.get(output.suffix.lower())
    if fmt == "onnx":
        if named is not None:
            raise IRNError(
                f"-o {output}: --format onnx writes a folder (encoder.onnx, decoder.onnx, model.json); "
                f"name the folder, e.g. -o {output.with_suffix('')}_onnx"
            )
    elif named == "onnx":
        raise IRNError(
            f"-o {output}: a {output.suffix} name for a {fmt} file; for ONNX give a folder: "
            f"--format onnx -o {output.with_suffix('')}_onnx, or name the file {output.with_suffix('.pt').name}"
        )
    elif named is not None and named != fmt:
        wanted = ".safetensors" if fmt == "safetensors" else ".pt"
        raise IRNError(
            f"-o {output}: a {output.suffix} name for a {fmt} file; use --format {named}, or name it "
            f"{output.with_suffix(wanted).name}"
        )


def run(args: argparse.Namespace) -> int:
    from irn.imaging.io import check_output_path, refuse_overwriting
    from irn.zoo.catalogue import describe_names, get
    from irn.zoo.checkpoint import is_training_checkpoint, load_module, purpose_of_name
    from irn.zoo.pretrained import resolve

    fmt = args.format or ("safetensors" if Path(args.output).suffix.lower() == ".safetensors" else "pt")
    check_suffix(Path(args.output), fmt)
    dst = check_output_path(args.output, "-o", folder=fmt == "onnx")
    name = args.checkpoint
    src = resolve(name) if get(name) is not None else Path(name)  # a model name: shipped, or downloaded
    if src.is_dir() and (src / "model.json").is_file():
        raise IRNError(f"{src}: an ONNX export (a folder); irn export reads a checkpoint or model file, not an export")
    if not src.is_file():
        raise IRNError(f"{src}: no such checkpoint or model file ({describe_names()})")
    if fmt != "onnx":
        refuse_overwriting({"-o": dst}, {"the training checkpoint" if src.suffix == ".ckpt" else "the model": src})
    if is_training_checkpoint(src):
        from irn.train.export import model_from_checkpoint

        model, meta = model_from_checkpoint(src, weights=args.weights)
        what = f"step {meta['steps']}, {meta['train_seconds']:.0f} s of training"
        if meta["weights"] == "average":
            what += ", the weights' moving average"
    else:
        if args.weights != "average":
            raise IRNError(f"--weights applies to a training checkpoint (.ckpt), not to {src.name}")
        model, meta = load_module(src)
        purpose = purpose_of_name(name)
        if purpose is not None:  # a model name: its catalogue purpose goes into the file (irn.zoo.purpose)
            meta.setdefault("purpose", purpose)
        model.metadata = meta  # type: ignore[assignment]
        what = f"{type(model).__name__}, from {src.name}"
    if fmt == "onnx":
        from irn.onnx.export import check_exportable, export_onnx
        from irn.zoo.checkpoint import restorer_of

        check_exportable(model, str(src))  # type: ignore[arg-type]
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
    from irn.zoo.checkpoint import save

    save(model, dst, meta, format=fmt)
    print(f"wrote {dst} ({fmt}; {what})", file=sys.stderr)
    return 0
