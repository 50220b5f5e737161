"""Issue 16's background training: make the held-out split, then start (or resume) the CPU runs.

    python benchmarks/background_train.py split            # datasets/cpu_train, datasets/cpu_val
    python benchmarks/background_train.py clean            # + datasets/cpu_{train,val}_d2 (issue 29.5)
    python benchmarks/background_train.py start x2 --hours 2.0 [--init PATH] [--resume]
    python benchmarks/background_train.py start x4 --hours 2.0 [--optim.lr=5e-5 ...]
    python benchmarks/background_train.py start color --hours 1.0   # IRN-Color (issue 17)
    python benchmarks/background_train.py start color_paper --hours 1.0  # IRN-Color, the paper's latent term
    python benchmarks/background_train.py start x2_jpeg --hours 1.0 # JPEG-robust x2 (issue 18)
    python benchmarks/background_train.py start x2_crm --hours 1.0  # x2-jpeg + its CRM (issue 18)

The split is a pure function of the file names: every 36th CBSD432 image and every 20th
SunHays80 image (sorted) is held out for validation (12 + 4 = 16 images); the rest are training
images. Both folders hold symbolic links into ``../shared/datasets`` (nothing copied). A run logs
to ``runs/cpu_{x2,x4,color}/train.log`` and runs ``irn train --config configs/cpu_{x2,x4,color}.yaml`` with
``trainer.max_time`` set from ``--hours``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
SOURCES = {"CBSD432": 36, "SunHays80": 20}  # folder -> every n-th image held out


def split() -> tuple[int, int]:
    train, val = REPO / "datasets" / "cpu_train", REPO / "datasets" / "cpu_val"
    n_train = n_val = 0
    for name, every in SOURCES.items():
        src = SHARED / name
        if not src.is_dir():
            sys.exit(f"background_train: {src} is missing (the shared training folders)")
        files = sorted(p for p in src.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        for i, f in enumerate(files):
            held_out = i % every == every // 2
            dst = val / f"{name}_{f.name}" if held_out else train / name / f.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.is_symlink():
                dst.symlink_to(f.resolve())
            n_val += held_out
            n_train += not held_out
    return n_train, n_val


def clean(factor: int = 2) -> tuple[int, int]:
    """Issue 29.5: the split's photos downscaled by ``factor`` with MATLAB bicubic (the usual way
    super-resolution training cleans web photos: JPEG blocks and smoothed detail shrink below a pixel),
    as 8-bit PNGs in ``datasets/cpu_train_d{factor}`` and ``datasets/cpu_val_d{factor}``. Existing files
    are kept (the step is a pure function of the photos), new ones written atomically."""
    from irn.imaging.io import read_image, write_image
    from irn.imaging.resize import imresize

    split()
    counts = []
    for name in ("cpu_train", "cpu_val"):
        src, dst = REPO / "datasets" / name, REPO / "datasets" / f"{name}_d{factor}"
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        for f in files:
            out = (dst / f.relative_to(src)).with_suffix(".png")
            if out.is_file():
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            hr = read_image(f)[None]
            h, w = hr.shape[-2:]
            hr = hr[..., : h - h % factor, : w - w % factor]
            write_image(imresize(hr, scale=1.0 / factor).clamp(0, 1)[0], out)
        counts.append(len(files))
    return counts[0], counts[1]


def running_pid(run_dir: Path) -> int | None:
    """The pid in ``run_dir/train.pid`` if that process is still alive (a stopping run finishes its
    step, and a validation under way, before it exits: resuming meanwhile would run two at once)."""
    try:
        pid = int((run_dir / "train.pid").read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def start(scale: str, hours: float, init: str | None, resume: bool, overrides: list[str]) -> None:
    run_dir = REPO / "runs" / f"cpu_{scale}"
    run_dir.mkdir(parents=True, exist_ok=True)
    pid = running_pid(run_dir)
    if pid is not None:
        raise SystemExit(
            f"{run_dir} is still being trained by pid {pid}: wait for it to exit (a SIGTERM lets it finish "
            "its step and any validation under way), then start again"
        )
    h = int(hours)
    m = int(round((hours - h) * 60))
    cmd = [sys.executable, "-m", "irn.cli", "train", f"--trainer.max_time=00:{h:02d}:{m:02d}:00"]
    if resume:
        cmd += ["--resume", str(run_dir / "checkpoints" / "last.ckpt")]
    else:
        cmd += ["--config", str(REPO / "configs" / f"cpu_{scale}.yaml")]
        if init:
            cmd.append(f"--model.init_from={init}")
    cmd += overrides
    log = (run_dir / "train.log").open("a")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    (run_dir / "train.pid").write_text(f"{proc.pid}\n")
    print(f"started {' '.join(cmd)} (pid {proc.pid}), log {run_dir / 'train.log'}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("split")
    sub.add_parser("clean", help="the split's photos downscaled by 2 with MATLAB bicubic, as PNGs (issue 29.5)")
    s = sub.add_parser("start")
    s.add_argument(
        "scale",
        choices=["x2", "x4", "color", "color_paper", "x2_jpeg", "x2_crm"],
        help="the model: x2, x4, color (IRN-Color), color_paper (IRN-Color with the paper's latent weight), "
        "x2_jpeg (the x2 trained for a JPEG LR) or x2_crm "
        "(x2_jpeg with its CRM)",
    )
    s.add_argument(
        "--hours",
        type=float,
        default=2.0,
        help="trainer.max_time: the run's total; with --resume the earlier launches count (Lightning's timer)",
    )
    s.add_argument("--init", default=None, help="model.init_from (default: the config's)")
    s.add_argument("--resume", action="store_true", help="continue runs/cpu_SCALE/checkpoints/last.ckpt")
    args, overrides = p.parse_known_args(argv)
    if args.cmd != "start" and overrides:
        p.error(f"unrecognized arguments: {' '.join(overrides)}")
    bad = [o for o in overrides if not (o.startswith("--") and "=" in o and "." in o.split("=")[0])]
    if bad:
        p.error(f"unrecognized arguments: {' '.join(bad)} (config overrides are --section.key=value)")
    if args.cmd == "split":
        n_train, n_val = split()
        print(f"datasets/cpu_train: {n_train} images, datasets/cpu_val: {n_val} images")
    elif args.cmd == "clean":
        n_train, n_val = clean()
        print(f"datasets/cpu_train_d2: {n_train} images, datasets/cpu_val_d2: {n_val} images")
    else:
        clean() if args.scale == "color_paper" else split()  # color_paper validates on cpu_val_d2
        start(args.scale, args.hours, args.init, args.resume, overrides)


if __name__ == "__main__":
    main()
