"""The colour model's learning curve across sessions 14-16 (issue 29.4), from the runs' kept logs.

    python benchmarks/color_curve.py

The paper-weighted IRN-Color (``configs/cpu_color_paper.yaml``) trained in three sessions, each run
continuing the last one's weights: session 14 from scratch, session 15 (sampled z in the
reconstruction term, as before), session 16 with the official objective (z = 0). Their validation
rows are kept in ``benchmarks/results/s1{4,5,6}_color_*_metrics.csv`` (the runs' CSV logs); all three
validated on the same 6 held-out CBSD432 photos downscaled by 2 (``runs/color_val6``). This script
puts them on one axis of accumulated training hours, with the two references measured on those
photos: the grey baseline (the luma copied to RGB, ``irn eval --method grey``) and the shipped
``irn_color.pt`` (``benchmarks/results/s14_color_shipped_held_out6.json``), and writes
``benchmarks/results/color_curve.csv`` / ``.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # python benchmarks/color_curve.py: import irn from this checkout
    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

import argparse
import csv
import json

RESULTS = Path(__file__).resolve().parent / "results"
# (session, metrics file, training hours of the run: its last step's time, from the model card)
RUNS = (
    ("14", "s14_color_paper_metrics.csv", 0.43),
    ("15", "s15_color_paper_metrics.csv", 1.81),
    ("16", "s16_color_z0_metrics.csv", 0.34),
)
COLUMNS = ("grey_psnr", "psnr_rgb_z0", "psnr_rgb_sample")
GREY_BASELINE = 20.67  # irn eval --method grey on runs/color_val6 (session 16)
HEADER = ("session", "objective", "train_hours", "step", *COLUMNS)


def shipped_reference() -> float:
    """The shipped irn_color.pt on the same 6 photos (sampled z, as its metadata recommends)."""
    report = json.loads((RESULTS / "s14_color_shipped_held_out6.json").read_text())
    return float(next(iter(report["datasets"].values()))["mean"]["psnr_rgb"])


def rows() -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    prior = 0.0
    for session, name, hours in RUNS:
        with (RESULTS / name).open() as f:
            for r in csv.DictReader(f):
                if not r.get("val/psnr_rgb_z0"):
                    continue
                out.append(
                    {
                        "session": session,
                        "objective": "z = 0" if session == "16" else "sampled z",
                        "train_hours": f"{prior + float(r['val/train_seconds']) / 3600:.4f}",
                        "step": str(int(r["step"]) + 1),
                        **{k: f"{float(r[f'val/{k}']):.4f}" for k in COLUMNS},
                    }
                )
        prior += hours
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for color_curve.csv / .png")
    args = parser.parse_args(argv)
    from irn.experiments.plotting import line_plot

    curve = rows()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "color_curve.csv"
    path.write_text(",".join(HEADER) + "\n" + "".join(",".join(r[k] for k in HEADER) + "\n" for r in curve))
    hours = [float(r["train_hours"]) for r in curve]
    shipped = shipped_reference()
    ends = [0.0, max(hours)]
    series = {
        "RGB, z = 0": (hours, [float(r["psnr_rgb_z0"]) for r in curve]),
        "RGB, sampled z": (hours, [float(r["psnr_rgb_sample"]) for r in curve]),
        "grey image vs luma": (hours, [float(r["grey_psnr"]) for r in curve]),
        f"grey baseline (RGB) {GREY_BASELINE:.2f} dB": (ends, [GREY_BASELINE] * 2),
        f"shipped irn_color.pt (RGB) {shipped:.2f} dB": (ends, [shipped] * 2),
    }
    line_plot(
        series,
        str(path.with_suffix(".png")),
        title="IRN-Color (paper latent weight), 6 held-out photos: sessions 14-16",
        xlabel="accumulated training hours",
        ylabel="PSNR (dB)",
    )
    print(f"{path} ({len(curve)} rows), {path.with_suffix('.png')}; shipped {shipped:.2f}, grey {GREY_BASELINE:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
