"""Speed and memory of irn (issue 7), printed as one table, each optimisation against its baseline.

    .venv/bin/python benchmarks/run.py                      # everything (hours on a shared 2-core CPU)
    .venv/bin/python benchmarks/run.py --only inference     # sections: inference, whole, training, gpu, data, tiling
    .venv/bin/python benchmarks/run.py --quick              # small sizes, one repeat: a smoke run
    .venv/bin/python benchmarks/run.py --paper-code DIR     # also time the paper's code, in the same run
    .venv/bin/python benchmarks/run.py --only inference whole --variants api load --scales 2 \
        --whole-sizes 2040x1356                             # only these variants, scales and sizes
    .venv/bin/python -m benchmarks.run ...                  # the same, from the repository root

This file is the command line; each section is a module of the ``benchmarks`` package
(``benchmarks/inference.py``: inference and whole, ``training.py``, ``gpu.py``, ``data.py``,
``tiling.py``; shared helpers in ``common.py``, the paper's code in ``paper_anchor.py``).

The anchor of issue 7 is the paper's own code. ``--paper-code DIR`` (a local checkout of
https://github.com/pkuxmq/Invertible-Image-Rescaling; nothing of it ships with irn) adds it as a
variant of ``inference``, ``whole`` and ``training``, with our weights, interleaved with ours; the
column "vs paper's code" is then each variant's speed over it (see ``paper_anchor.py``).

Filters: ``--variants`` (of inference and whole: paper, plain, fast, api, load; plain always runs
in inference, the baseline; in whole it may be left out, and "vs baseline" then says so),
``--scales`` (inference, whole, training, tiling; the gpu section has ``--gpu-scales``) and
``--whole-sizes WxH ...``.

Sections:

* ``inference`` -- down+up (``downscale`` then ``upscale(seed=0)``) in this process on 512x512,
  x2 and x4: the plain eager fp32 :class:`irn.IRN` (the baseline), :class:`irn.nn.fast.FastIRN`,
  the Python API (``irn.downscale_image``/``irn.upscale_image``) and the model exactly as
  ``irn.load(path)`` returns it (its own ``downscale``/``upscale(z="sample")``; with random weights
  those are written to a temporary file first), interleaved run by run, medians, megapixels (HR)
  per second and the ratio to the baseline. Agreement: the largest absolute difference of ``encode`` (LR and z)
  and of ``decode`` given the same (quantised LR, z), which must be <= 1e-4 in fp32. On a GPU the
  same for the bf16-mixed/channels-last/compiled flow (:func:`irn.nn.fast.accelerated_flow`),
  whose agreement is reported, not required.
* ``whole`` -- one down+up per fresh process (``python benchmarks/run.py --child ...``): its
  time and its peak resident memory (``ru_maxrss``: everything the process ever held, torch's
  libraries included), 512x512 and 2040x1356, x2 and x4, every variant, alternating.
* ``training`` -- the training objective (:meth:`irn.train.module.IRNLightning.losses`, paper Eq. 5-9)
  forward + backward + Adam step, 144x144 patches: batch 4 on CPU (x2, x4), plain eager fp32 against
  channels-last and against DDP over two CPU processes of half the threads each (2 + 2 patches,
  gloo; :class:`DataParallelStep`, agreement by the averaged gradient).
* ``gpu`` -- the trainer's GPU recipes (``trainer.precision``, ``channels_last``, ``compile``) at the
  paper's configuration (batch 16, 144x144, ``configs/x{2,4}.yaml``) through ``irn train`` itself:
  it/s (median of 5 timed windows), GPU utilisation, data wait, peak memory and Set5 PSNR-Y after
  the same number of steps against fp32 (:mod:`benchmarks.gpu`). Without CUDA: "not measured".
* ``data`` -- training patches per second from a folder of 2040x1356 PNGs written to /tmp, by
  :class:`irn.train.data.PatchDataset` through a DataLoader, with and without the decoded-image cache.
* ``tiling`` -- PSNR of tiled against whole-image down and up for growing overlaps (the measurement
  behind :data:`irn.imaging.tiling.DEFAULT_OVERLAP`); needs trained weights (``--x2``/``--x4`` checkpoints or
  the shipped models), else runs on random weights and says so.

Weights: the shipped/trained checkpoints when given or found, else seeded random ones; speed
does not depend on the values. The machine is printed with the table; on a shared machine the
absolute times move with the load, the interleaved ratios much less.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # python benchmarks/run.py: import the benchmarks package (and irn) from this checkout
    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

import argparse
import json
import time
from dataclasses import asdict

from benchmarks.common import Row, machine, print_table
from benchmarks.data import bench_data
from benchmarks.gpu import RECIPES, bench_gpu
from benchmarks.inference import VARIANTS, bench_inference, bench_whole, child
from benchmarks.paper_anchor import load_paper_code
from benchmarks.tiling import bench_tiling
from benchmarks.training import bench_training
from irn.cli.common import parse_wxh
from irn.errors import IRNError

SECTIONS = ("inference", "whole", "training", "gpu", "data", "tiling")
BENCHES = {
    "inference": bench_inference,
    "whole": bench_whole,
    "training": bench_training,
    "gpu": bench_gpu,
    "data": bench_data,
    "tiling": bench_tiling,
}


def wxh(text: str) -> tuple[int, int]:
    """``--whole-sizes`` item: WxH -> (W, H)."""
    try:
        return parse_wxh(text, "--whole-sizes")
    except IRNError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per variant (median)")
    parser.add_argument("--whole-repeats", type=int, default=3, help="fresh processes per variant and case")
    parser.add_argument("--x2", help="x2 checkpoint (default: shipped x2, else random weights)")
    parser.add_argument("--x4", help="x4 checkpoint (default: shipped x4, else random weights)")
    parser.add_argument("--data-dir", default="/tmp/irn_bench_pngs", help="where the data section writes PNGs")
    parser.add_argument("--json", help="also write the rows as JSON here")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        help="variants of inference and whole (default: all; paper needs --paper-code; plain always runs in "
        "inference, the baseline)",
    )
    parser.add_argument(
        "--scales", nargs="+", type=int, choices=(2, 4), default=[2, 4], help="of inference, whole, training, tiling"
    )
    parser.add_argument(
        "--whole-sizes",
        nargs="+",
        type=wxh,
        metavar="WxH",
        help="image sizes of the whole section (default: 512x512 2040x1356; 128x128 with --quick)",
    )
    gpu = parser.add_argument_group("gpu section", "the trainer's GPU recipes through irn train (benchmarks/gpu.py)")
    gpu.add_argument("--gpu-scales", nargs="+", type=int, choices=(2, 4), default=[2, 4])
    gpu.add_argument(
        "--gpu-recipes",
        nargs="+",
        choices=list(RECIPES),
        default=list(RECIPES),
        help="fp32 always runs first (the baseline)",
    )
    gpu.add_argument("--gpu-steps", type=int, default=1000, help="training steps per recipe")
    gpu.add_argument("--gpu-warmup", type=int, default=100, help="steps before the timed windows")
    gpu.add_argument("--gpu-device", choices=("cuda", "cpu"), default="cuda", help="cpu: a (slow) smoke run")
    gpu.add_argument("--train-dir", help="training images (default: PNGs written to --data-dir)")
    gpu.add_argument("--val-dir", help="validation images for the quality figure, e.g. Set5/HR (default: none)")
    parser.add_argument(
        "--paper-code",
        metavar="DIR",
        help="a checkout of the paper's code (github.com/pkuxmq/Invertible-Image-Rescaling): time it in the "
        "same run as the anchor of inference, whole and training",
    )
    parser.add_argument("--child", nargs=4, metavar=("VARIANT", "SCALE", "H", "W"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variants and "paper" in args.variants and not args.paper_code:
        parser.error("--variants paper needs --paper-code DIR (a checkout of the paper's code)")
    args.scales = sorted(set(args.scales))
    args.paper = load_paper_code(args.paper_code) if args.paper_code else None
    if args.child:
        args.child_variant, args.child_scale = args.child[0], int(args.child[1])
        args.child_size = (int(args.child[2]), int(args.child[3]))
        child(args)
        return 0
    if args.quick:
        args.repeats, args.whole_repeats = 1, 1
    print(f"machine: {machine()}", flush=True)
    rows: list[Row] = []
    for name in SECTIONS:
        if name in args.only:
            t0 = time.perf_counter()
            new = BENCHES[name](args)
            rows += new
            print(f"[{name}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
            for r in new:
                print(
                    f"  {r.case} | {r.variant} | {r.value} | {r.ratio} | {r.paper} | {r.agreement}",
                    file=sys.stderr,
                    flush=True,
                )
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": [asdict(r) for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
