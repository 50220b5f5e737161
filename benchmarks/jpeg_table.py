"""Issue 18's JPEG table: how rescaling survives a JPEG LR, on Set5 and Set14 (PSNR-Y, the paper's protocol).

    python benchmarks/jpeg_table.py [--model x2] [--candidate runs/x2_jpeg.pt] [--qualities 90 75 50] \
        [--draws 1] [--json benchmarks/results/jpeg_x2.json]

Rows: Bicubic & Bicubic with the bicubic LR stored as a JPEG; the plain model; the candidate (a model
trained for a JPEG LR), with its carried compression restoration module when it has one and without
(``irn eval --no-restorer``). Every figure is ``irn eval --y-only --device cpu --jpeg Q`` (a PNG LR as
the first column), in one run, so the rows compare like with like. Prints a markdown table and
writes every figure to ``--json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # python benchmarks/jpeg_table.py: import the benchmarks package (and irn) from this checkout
    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

import argparse

from irn.eval.protocol import evaluate
from irn.imaging.io import write_json
from irn.zoo import load_irn, restorer_of

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets"


def figures(model: str | None, scale: int, jpeg: int | None, sets: list[Path], draws: int, restorer: bool) -> dict:
    report = evaluate(
        model,
        sets,
        scale=scale if model is None else None,
        y_only=True,
        device="cpu",
        progress=False,
        jpeg=jpeg,
        use_restorer=restorer,
        draws=draws if model is not None else 1,
        z="sample" if model is not None and draws > 1 else "auto",
    )
    return {name: round(record["mean"]["psnr_y"], 4) for name, record in report["datasets"].items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="x2", help="the plain model (default: the shipped x2)")
    p.add_argument("--candidate", help="a model trained for a JPEG LR (with or without its CRM)")
    p.add_argument("--qualities", type=int, nargs="+", default=[90, 75, 50])
    p.add_argument("--draws", type=int, default=1, help="sampled-z draws per image (default 1)")
    p.add_argument("--sets", nargs="+", default=["Set5", "Set14"])
    p.add_argument("--json", help="write every figure here")
    p.add_argument("--candidate-only", action="store_true", help="leave out the bicubic and plain-model rows")
    args = p.parse_args(argv)
    sets = [DATA / s / "HR" for s in args.sets]
    missing = [s for s in sets if not s.is_dir()]
    if missing:
        sys.exit(f"jpeg_table: {missing[0]} is missing (the shared benchmark folders beside the checkout)")
    scale = load_irn(args.model).scale
    rows: list[tuple[str, str | None, bool]] = [
        ("Bicubic & Bicubic", None, False),
        (f"IRN {args.model}", args.model, False),
    ]
    if args.candidate_only:
        if not args.candidate:
            sys.exit("jpeg_table: --candidate-only needs --candidate")
        rows = []
    if args.candidate:
        if restorer_of(load_irn(args.candidate)) is not None:
            rows.append((f"{Path(args.candidate).name} + its CRM", args.candidate, True))
        rows.append((f"{Path(args.candidate).name}, no CRM", args.candidate, False))
    columns: list[int | None] = [None, *args.qualities]
    table: dict[str, dict[str, dict[str, float]]] = {}
    for label, model, restorer in rows:
        table[label] = {}
        for q in columns:
            key = "png" if q is None else f"q{q}"
            table[label][key] = figures(model, scale, q, sets, args.draws, restorer)
            print(f"{label}, {key}: {table[label][key]}", file=sys.stderr, flush=True)
    head = ["model"] + [f"{s} {('PNG' if q is None else f'q{q}')}" for q in columns for s in args.sets]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for label, by_q in table.items():
        cells = [f"{by_q['png' if q is None else f'q{q}'][s]:.2f}" for q in columns for s in args.sets]
        print("| " + " | ".join([label, *cells]) + " |")
    if args.json:
        write_json(Path(args.json), {"scale": scale, "draws": args.draws, "psnr_y": table})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
