"""Training A/B runs in one process: issue 29.2's fp32 against bf16-mixed (and channels-last,
torch.compile under bf16) on the CPU, and issue 29.5's training content (photos as they are against
photos downscaled by 2).

Every variant is ``irn train --config configs/cpu_x2.yaml`` from the shipped x2 with the same seed (the
same batches, step by step), ``--steps`` steps at ``--threads`` threads, validated on the held-out
images (datasets/cpu_val, never Set5/Set14) every ``--val-every`` steps. Per variant it reports the
seconds per step (median of the 10-step logging windows between validations: checkpoint writes and the
first steps' warm-up fall out) and the held-out PSNR-Y (z = 0 and sampled z) at each validation, and the
ratio of each variant's s/step to the first's (fp32)::

    python benchmarks/background_train.py split
    python benchmarks/train_ab.py --steps 300 --val-every 100 --json benchmarks/results/s14_precision_ab.json
    python benchmarks/train_ab.py --variants fp32,bf16,bf16-cl,bf16-compile --steps 100 --val-every 100
    python benchmarks/background_train.py clean   # datasets/cpu_{train,val}_d2
    python benchmarks/train_ab.py --variants bf16,bf16-d2 --data.val_dir=datasets/cpu_val_d2

Options after the script's own (``--section.key=value``) go to every variant's ``irn train``.

The variants run one after another (never side by side: they would share the cores they are timed on).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: every variant names its precision and layout: the config's own values (channels_last: auto) would
#: otherwise decide them per machine
VARIANTS: dict[str, list[str]] = {
    "fp32": ["--trainer.precision=32-true", "--trainer.channels_last=false"],
    "bf16": ["--trainer.precision=bf16-mixed", "--trainer.channels_last=false"],
    "bf16-cl": ["--trainer.precision=bf16-mixed", "--trainer.channels_last=true"],
    "bf16-compile": [
        "--trainer.precision=bf16-mixed",
        "--trainer.channels_last=false",
        "--trainer.compile=default",
    ],
    "fp32-cl": ["--trainer.precision=32-true", "--trainer.channels_last=true"],
    "bf16-cl-compile": [
        "--trainer.precision=bf16-mixed",
        "--trainer.channels_last=true",
        "--trainer.compile=default",
    ],
    # issue 29.5: the training photos downscaled by 2 with MATLAB bicubic (background_train.py clean)
    "bf16-d2": [
        "--trainer.precision=bf16-mixed",
        "--trainer.channels_last=false",
        "--data.train_dir=datasets/cpu_train_d2",
    ],
}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    files = sorted((run_dir / "csv").glob("version_*/metrics.csv"))
    if not files:
        return []
    with files[-1].open() as f:
        return list(csv.DictReader(f))


def summarise(rows: list[dict[str, str]]) -> dict[str, object]:
    """Seconds per step between validations and the validation figures."""
    logged = [(int(r["step"]), float(r["train/seconds"])) for r in rows if r.get("train/seconds")]
    vals = [r for r in rows if r.get("val/psnr_y_z0")]
    val_seconds = [float(r["val/train_seconds"]) for r in vals if r.get("val/train_seconds")]
    windows = []
    for (s0, t0), (s1, t1) in zip(logged, logged[1:], strict=False):
        if s1 <= s0 or s0 < 10:  # the first steps warm up (oneDNN primitives, compilation)
            continue
        if any(t0 <= v <= t1 for v in val_seconds):  # a validation ran in this window
            continue
        windows.append((t1 - t0) / (s1 - s0))
    return {
        "s_per_step": round(statistics.median(windows), 4) if windows else None,
        "windows": len(windows),
        "validation": [
            {
                "step": int(r["step"]) + 1,
                "psnr_y_z0": round(float(r["val/psnr_y_z0"]), 4),
                "psnr_y_sample": round(float(r["val/psnr_y_sample"]), 4),
                "lr_psnr_y": round(float(r["val/lr_psnr_y"]), 4) if r.get("val/lr_psnr_y") else None,
            }
            for r in vals
        ],
    }


def run_variant(name: str, steps: int, val_every: int, threads: int, root: Path, extra: list[str]) -> dict[str, object]:
    run_dir = root / name
    if run_dir.exists() and read_metrics(run_dir):
        sys.exit(f"train_ab: {run_dir} holds an earlier run; remove it or choose another --root")
    cmd = [
        sys.executable,
        "-m",
        "irn.cli",
        "train",
        "--config",
        str(REPO / "configs" / "cpu_x2.yaml"),
        f"--trainer.run_dir={run_dir}",
        f"--trainer.max_steps={steps}",
        f"--trainer.val_every_n_steps={val_every}",
        f"--trainer.threads={threads}",
        "--trainer.checkpoint_every_n_steps=100000",
        "--trainer.checkpoint_every_minutes=null",
        *VARIANTS[name],
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.monotonic()
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / "train.log").open("w") as log:
        code = subprocess.call(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        sys.exit(f"train_ab: variant {name} failed (exit {code}); see {run_dir / 'train.log'}")
    return {"variant": name, "options": VARIANTS[name], "wall_seconds": round(time.monotonic() - started, 1)} | (
        summarise(read_metrics(run_dir))
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--variants", default="fp32,bf16", help=f"comma-separated, first is the baseline: {', '.join(VARIANTS)}"
    )
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--val-every", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--root", default=str(REPO / "runs" / "train_ab"), help="run folders (one per variant)")
    p.add_argument("--json", default=None, help="also write the results here")
    args, extra = p.parse_known_args(argv)
    bad = [o for o in extra if not (o.startswith("--") and "=" in o and "." in o.split("=")[0])]
    if bad:
        p.error(f"unrecognized arguments: {' '.join(bad)} (config overrides are --section.key=value)")
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown} (known: {', '.join(VARIANTS)})")
    results = [run_variant(n, args.steps, args.val_every, args.threads, Path(args.root), extra) for n in names]
    base = results[0].get("s_per_step")
    for r in results:
        sps = r.get("s_per_step")
        r["speedup_vs_first"] = round(base / sps, 3) if base and sps else None
        last = r["validation"][-1] if r["validation"] else {}  # type: ignore[index]
        print(
            f"{r['variant']:>13}: {sps} s/step (x{r['speedup_vs_first']}), held-out at step {last.get('step')}: "
            f"z0 {last.get('psnr_y_z0')} sampled {last.get('psnr_y_sample')} dB"
        )
    doc = {
        "benchmark": "train_ab",
        "cpu": cpu_name(),
        "threads": args.threads,
        "steps": args.steps,
        "config": "configs/cpu_x2.yaml from checkpoints/irn_x2.pt",
        "extra": extra,
        "results": results,
    }
    if args.json:
        from irn.imaging.io import write_json

        write_json(args.json, doc)
    else:
        print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
