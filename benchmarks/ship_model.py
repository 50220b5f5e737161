"""Export a training checkpoint as a shipped model if it clears the bar, and measure it.

    python benchmarks/ship_model.py runs/x2_cpu/checkpoints/best.ckpt --name x2 --run-dir runs/x2_cpu

1. ``irn export`` to a temporary file;
2. ``irn eval --z zero`` on Set5: ship only if PSNR-Y beats Bicubic & Bicubic (measured in the
   same run with ``irn eval --method bicubic``) by at least ``--min-gain`` dB (3, issue 5);
3. move it to ``checkpoints/irn_<name>.pt``; ``irn eval`` on Set5 and Set14 with z = 0 and
   with sampled z (seeds 0..draws-1), all figures to ``checkpoints/irn_<name>_eval.json``;
4. the run's learning curve to ``checkpoints/irn_<name>_curve.png`` / ``.csv``.

Prints a JSON summary for the model card (checkpoints/README.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets"


def irn(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "irn.cli", *args], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"irn {' '.join(args)} failed: {done.stderr.strip()[-1500:]}")


def evaluate(model: str, scale: int, z: str, sets: list[str], out: Path, draws: int = 1) -> dict:
    args = ["eval", "--y-only", "--device", "cpu", "--json", str(out)]
    args += ["--model", model, "--z", z] if model != "bicubic" else ["--method", "bicubic", "--scale", str(scale)]
    if draws > 1:
        args += ["--draws", str(draws)]
    for s in sets:
        args += ["--data", str(DATA / s / "HR")]
    irn(*args)
    report = json.loads(out.read_text())
    return {name: record["mean"] for name, record in report["datasets"].items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="Lightning checkpoint from irn train")
    parser.add_argument("--name", required=True, choices=("x2", "x4"))
    parser.add_argument("--run-dir", help="run folder whose validation curve goes into the card")
    parser.add_argument("--min-gain", type=float, default=3.0, help="dB over Bicubic & Bicubic on Set5, z = 0 (3)")
    parser.add_argument("--draws", type=int, default=3, help="sampled-z draws per image (3)")
    parser.add_argument("--force", action="store_true", help="replace the shipped file even if it scores higher")
    args = parser.parse_args(argv)
    scale = int(args.name[1:])
    target = REPO / "checkpoints" / f"irn_{args.name}.pt"
    work = Path(tempfile.mkdtemp(prefix="irn_ship_"))
    try:
        candidate = work / "model.pt"
        irn("export", args.checkpoint, "-o", str(candidate))
        bicubic = evaluate("bicubic", scale, "zero", ["Set5", "Set14"], work / "bicubic.json")
        quick = evaluate(str(candidate), scale, "zero", ["Set5"], work / "quick.json")
        gain = quick["Set5"]["psnr_y"] - bicubic["Set5"]["psnr_y"]
        summary: dict = {"candidate_set5_psnr_y_z0": quick["Set5"]["psnr_y"], "gain_over_bicubic": gain}
        if gain < args.min_gain:
            summary["shipped"] = False
            print(json.dumps(summary, indent=1))
            return 1
        if target.exists() and not args.force:
            current = evaluate(str(target), scale, "zero", ["Set5"], work / "current.json")
            if current["Set5"]["psnr_y"] >= quick["Set5"]["psnr_y"]:
                summary.update(shipped=False, reason=f"{target.name} already scores {current['Set5']['psnr_y']:.3f}")
                print(json.dumps(summary, indent=1))
                return 1
        shutil.copyfile(candidate, target.with_suffix(".pt.tmp"))
        target.with_suffix(".pt.tmp").replace(target)
        figures = {
            "bicubic": bicubic,
            "z0": evaluate(str(target), scale, "zero", ["Set5", "Set14"], work / "z0.json"),
            "sample": evaluate(str(target), scale, "sample", ["Set5", "Set14"], work / "sample.json", args.draws),
        }
        (REPO / "checkpoints" / f"irn_{args.name}_eval.json").write_text(json.dumps(figures, indent=1) + "\n")
        if args.run_dir:
            sys.path.insert(0, str(REPO / "benchmarks"))
            from train_quick import plot, read_curve

            rows = read_curve(Path(args.run_dir))
            if rows:
                curve = REPO / "checkpoints" / f"irn_{args.name}_curve.csv"
                curve.write_text(
                    "train_seconds,step,psnr_y_z0,psnr_y_sample,lr_psnr_y\n"
                    + "".join(
                        f"{r['train_seconds']:.1f},{r['step']},{r['psnr_y_z0']:.4f},"
                        f"{r['psnr_y_sample']:.4f},{r['lr_psnr_y']:.4f}\n"
                        for r in rows
                    )
                )
                plot(
                    rows,
                    bicubic["Set5"]["psnr_y"],
                    curve.with_suffix(".png"),
                    f"irn_{args.name}: Set5 validation during training",
                    f"Set5 x{scale} PSNR-Y (dB)",
                )
        summary.update(shipped=True, file=str(target), **figures)
        print(json.dumps(summary, indent=1))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
