"""Evidence that training learns (issue 4 section 8): train ``configs/quick.yaml`` on the CPU
for a fixed wall-clock budget and report Set5 x2 PSNR-Y of the reconstruction, decoded with
z = 0 and with sampled z, against Bicubic & Bicubic measured in the same run.

    python benchmarks/train_quick.py                      # 20 minutes, writes out/train_quick/
    python benchmarks/train_quick.py --minutes 5 --run-dir out/tq5
    python benchmarks/train_quick.py --from-run runs/x2_cpu   # only report an existing run

Writes ``curve.csv`` (train seconds, step, PSNR-Y z=0 / sampled, LR-PSNR) and ``curve.png``,
and prints a JSON summary. The CPU share the run actually got (process CPU time / wall time)
is reported too: on a shared machine the same 20 minutes buy fewer steps.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # python benchmarks/train_quick.py: import the benchmarks package (and irn) from this checkout
    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

import argparse
import csv
import json
import resource
import time

import torch

REPO = Path(__file__).resolve().parents[1]
SET5 = REPO.parent / "shared" / "datasets" / "Set5" / "HR"


def bicubic_baseline(scale: int = 2) -> float:
    """Bicubic & Bicubic Set5 PSNR-Y (MATLAB-style resize, 8-bit rounding), measured now."""
    from irn.imaging.resize import imresize
    from irn.train.data import FolderImages
    from irn.train.module import psnr_y

    values = []
    for hr, _ in FolderImages(SET5, scale):
        hr = hr[None]
        lr = torch.round(imresize(hr, scale=1 / scale).clamp(0, 1) * 255) / 255
        up = imresize(lr, scale=scale)
        values.append(float(psnr_y(up, hr, scale)))
    return sum(values) / len(values)


#: the validation figures of a rescaling run (``val/<name>`` in its CSV logs)
RESCALE_COLUMNS = ("psnr_y_z0", "psnr_y_sample", "lr_psnr_y")


def read_curve(run_dir: Path, columns: tuple[str, ...] = RESCALE_COLUMNS) -> list[dict[str, float]]:
    """The validation rows of a run's CSV logs, every version in order: training seconds, step and
    ``columns`` (``val/<column>``; a row counts when the first is logged)."""
    rows = []
    for f in sorted((run_dir / "csv").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1])):
        with f.open() as fh:
            for r in csv.DictReader(fh):
                if r.get(f"val/{columns[0]}"):
                    row = {"train_seconds": float(r.get("val/train_seconds") or "nan"), "step": int(r["step"]) + 1}
                    row.update({k: float(r[f"val/{k}"]) for k in columns})
                    rows.append(row)
    return rows


def plot(
    rows: list[dict[str, float]], bicubic: float, path: Path, title: str, ylabel: str = "Set5 x2 PSNR-Y (dB)"
) -> None:
    """PSNR-Y (z = 0, sampled z) against training minutes, with the bicubic line (irn.experiments.plotting)."""
    from irn.experiments.plotting import line_plot

    minutes = [r["train_seconds"] / 60 for r in rows]
    series = {
        "IRN, z = 0": (minutes, [r["psnr_y_z0"] for r in rows]),
        "IRN, sampled z": (minutes, [r["psnr_y_sample"] for r in rows]),
        f"Bicubic & Bicubic {bicubic:.2f} dB": ([minutes[0], minutes[-1]], [bicubic, bicubic]),
    }
    line_plot(series, path, title=title, xlabel="training wall time (minutes)", ylabel=ylabel)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock training budget (20)")
    parser.add_argument("--run-dir", default="out/train_quick", help="run folder (out/train_quick)")
    parser.add_argument("--from-run", default=None, help="report an existing run folder instead of training")
    parser.add_argument("overrides", nargs="*", help="extra dotted config overrides, e.g. trainer.threads=1")
    args = parser.parse_args(argv)
    if not SET5.is_dir():
        print(f"needs {SET5} (../shared beside the checkout)", file=sys.stderr)
        return 1

    wall = cpu = None
    if args.from_run:
        run_dir = Path(args.from_run)
    else:
        from irn.train.config import load_config
        from irn.train.run import train

        run_dir = Path(args.run_dir)
        total = int(args.minutes * 60)
        max_time = f"00:{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"
        overrides = [f"--trainer.run_dir={run_dir}", f"--trainer.max_time={max_time}"]
        overrides += [f"--{o.lstrip('-')}" for o in args.overrides]
        cfg = load_config(REPO / "configs" / "quick.yaml", overrides)
        t0, c0 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
        train(cfg)
        c1 = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic() - t0
        cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)

    bicubic = bicubic_baseline(2)
    rows = read_curve(run_dir)
    if not rows:
        print(f"{run_dir}: no validation rows logged", file=sys.stderr)
        return 1
    out = run_dir
    with (out / "curve.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, bicubic, out / "curve.png", f"{run_dir.name}: Set5 x2 validation during CPU training")
    final = rows[-1]
    summary = {
        "run_dir": str(run_dir),
        "bicubic_bicubic_set5_x2": round(bicubic, 3),
        "final_step": final["step"],
        "final_train_minutes": round(final["train_seconds"] / 60, 2),
        "final_psnr_y_z0": round(final["psnr_y_z0"], 3),
        "final_psnr_y_sample": round(final["psnr_y_sample"], 3),
        "gain_over_bicubic_z0": round(final["psnr_y_z0"] - bicubic, 3),
        "sample_minus_z0": round(final["psnr_y_sample"] - final["psnr_y_z0"], 3),
        "best_psnr_y_z0": round(max(r["psnr_y_z0"] for r in rows), 3),
        "cpu_share_of_wall": round(cpu / wall, 2) if wall else None,
        "threads": torch.get_num_threads() if wall else None,
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
