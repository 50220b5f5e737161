"""Export a training checkpoint as a shipped model if it clears the bar, and measure it.

    python benchmarks/ship_model.py runs/cpu_x2/checkpoints/best.ckpt --name x2 --run-dir runs/cpu_x2 \
        --session 7 --prior-hours 0.778

1. ``irn export`` to a temporary file;
2. ``irn eval --z zero`` on Set5: the candidate must beat Bicubic & Bicubic (measured in the
   same run with ``irn eval --method bicubic``) by at least ``--min-gain`` dB (3, issue 5);
3. ``irn eval --z sample --draws N`` on Set5 and Set14, for the candidate and the shipped file:
   ship only if the candidate is better on both (issue 16; ``--force`` ships anyway). The
   checkpoint itself was chosen by the run on held-out training images, never on these sets;
4. move it to ``checkpoints/irn_<name>.pt``; z = 0 figures too, all to
   ``checkpoints/irn_<name>_eval.json``;
5. the learning curve, kept across sessions (written whether the candidate ships or not): the rows
   of ``checkpoints/irn_<name>_curve.csv`` from earlier sessions, then this run's validation rows,
   against accumulated training hours (``--prior-hours``: the hours already in the model the run
   started from), to ``.csv`` / ``.png``.

``--name color`` (IRN-Color) follows the same steps with the colour model's measures: PSNR-RGB
instead of PSNR-Y, the grey baseline (``irn eval --method grey``, the luma copied to RGB) instead of
Bicubic & Bicubic (``--min-gain`` 1 dB), and each file decoded with the latent it recommends
(``--z auto``: the official IRN-Color objective decodes z = 0; the session-11 file, sampled z) in
the comparison; the figures go to ``checkpoints/irn_color_eval.json``, the curve (held-out
PSNR-RGB z = 0 / sampled and grey PSNR) to ``irn_color_curve.csv``.

Prints a JSON summary for the model card (checkpoints/README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # python benchmarks/ship_model.py: import the benchmarks package (and irn) from this checkout
    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

import argparse
import csv
import json
import shutil
import subprocess
import tempfile

from benchmarks.train_quick import RESCALE_COLUMNS, read_curve

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets"


def irn(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "irn.cli", *args], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"irn {' '.join(args)} failed: {done.stderr.strip()[-1500:]}")


def ship_metadata(path: Path, prior_hours: float | None = None) -> None:
    """Finish the exported file's metadata for shipping: ``data`` (the training folder, absolute as the
    run resolved it) relative to the checkout, so the shipped file does not carry this machine's path;
    with ``prior_hours`` (the hours already in the model the run started from), ``train_hours_total``:
    the accumulated training across sessions, beside ``train_seconds`` (this run's only)."""
    from irn.zoo.checkpoint import load_checkpoint, save

    model, meta = load_checkpoint(path)
    for added in ("source", "irn_version"):  # what the loader adds to the file's own metadata
        meta.pop(added, None)
    data = Path(str(meta.get("data", "")))
    if data.is_absolute() and data.is_relative_to(REPO):
        meta["data"] = data.relative_to(REPO).as_posix()
    if prior_hours is not None:
        meta["train_hours_total"] = round(prior_hours + float(meta.get("train_seconds", 0.0)) / 3600, 4)
    save(model, path, meta)


def evaluate(model: str, scale: int, z: str, sets: list[str], out: Path, draws: int = 1) -> dict:
    """``irn eval`` of ``model`` (a file, or the baselines ``bicubic`` and ``grey``) on ``sets``: their
    mean figures. Scale 1 is a colour model: RGB figures (no ``--y-only``)."""
    args = ["eval", "--device", "cpu", "--json", str(out)] + (["--y-only"] if scale > 1 else [])
    if model == "bicubic":
        args += ["--method", "bicubic", "--scale", str(scale)]
    elif model == "grey":
        args += ["--method", "grey"]
    else:
        args += ["--model", model, "--z", z]
    if draws > 1:
        args += ["--draws", str(draws)]
    for s in sets:
        args += ["--data", str(DATA / s / "HR")]
    irn(*args)
    report = json.loads(out.read_text())
    return {name: record["mean"] for name, record in report["datasets"].items()}


CURVE_HEADER = "session,validation,train_hours,step,psnr_y_z0,psnr_y_sample,lr_psnr_y"
#: the colour model's curve: held-out PSNR-RGB (z = 0, sampled z) and the grey image against the luma
COLOR_COLUMNS = ("psnr_rgb_z0", "psnr_rgb_sample", "grey_psnr")
COLOR_HEADER = "session,validation,train_hours,step," + ",".join(COLOR_COLUMNS)


def read_prior_curve(path: Path) -> list[dict[str, str]]:
    """The rows of earlier sessions (the older 5-column file: Set5 validation, sessions 1-6)."""
    if not path.is_file():
        return []
    with path.open() as f:
        rows = list(csv.DictReader(f))
    if rows and "session" not in rows[0]:
        rows = [
            {"session": "1-6", "validation": "Set5", "train_hours": f"{float(r['train_seconds']) / 3600:.4f}", **r}
            for r in rows
        ]
    return rows


def write_curve(args: argparse.Namespace, scale: int) -> None:
    curve = REPO / "checkpoints" / f"irn_{args.name}_curve.csv"
    colour = scale == 1
    header = COLOR_HEADER if colour else CURVE_HEADER
    columns = COLOR_COLUMNS if colour else RESCALE_COLUMNS
    rows = [r for r in read_prior_curve(curve) if r["session"] != args.session]
    for r in read_curve(Path(args.run_dir), columns):
        rows.append(
            {
                "session": args.session,
                "validation": args.validation,
                "train_hours": f"{args.prior_hours + r['train_seconds'] / 3600:.4f}",
                **{k: f"{r[k]:.4f}" for k in columns},
                "step": str(r["step"]),
            }
        )
    keys = header.split(",")
    with curve.open("w", newline="") as f:  # csv quotes a label with a comma in it
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    what = "PSNR-RGB" if colour else "PSNR-Y"
    plot_curve(rows, curve.with_suffix(".png"), f"irn_{args.name}: validation {what} against training hours", scale)


def plot_curve(rows: list[dict[str, str]], path: Path, title: str, scale: int) -> None:
    from irn.experiments.plotting import line_plot

    colour = scale == 1
    prefix = "psnr_rgb" if colour else "psnr_y"
    series: dict[str, tuple[list[float], list[float]]] = {}
    for r in rows:
        for key, label in ((f"{prefix}_z0", "z = 0"), (f"{prefix}_sample", "sampled z")):
            name = f"{r['validation']}, {label}"
            xs, ys = series.setdefault(name, ([], []))
            xs.append(float(r["train_hours"]))
            ys.append(float(r[key]))
    ylabel = "colour PSNR-RGB (dB)" if colour else f"x{scale} PSNR-Y (dB)"
    line_plot(series, str(path), title=title, xlabel="accumulated training hours", ylabel=ylabel)


def recommended_z(path: Path) -> str:
    """The latent a model file recommends, as ``irn eval --z auto`` reads it (:meth:`Rescaler.recommended_z`)."""
    import irn

    return irn.load(path, device="cpu").recommended_z()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="Lightning checkpoint from irn train")
    parser.add_argument("--name", required=True, choices=("x2", "x4", "color"))
    parser.add_argument("--run-dir", help="run folder whose validation curve goes into the card")
    parser.add_argument(
        "--min-gain",
        type=float,
        help="dB over Bicubic & Bicubic on Set5, z = 0 (3); colour: PSNR-RGB over the grey baseline, with its "
        "recommended latent (1)",
    )
    parser.add_argument("--draws", type=int, default=3, help="sampled-z draws per image (3)")
    parser.add_argument("--force", action="store_true", help="replace the shipped file even if it scores higher")
    parser.add_argument("--session", default="", help="label of this session's rows in the curve")
    parser.add_argument("--validation", default="held-out (datasets/cpu_val)", help="the run's validation set")
    parser.add_argument(
        "--prior-hours", type=float, required=True, help="training hours of the run's starting model (0 from scratch)"
    )
    args = parser.parse_args(argv)
    colour = args.name == "color"
    scale = 1 if colour else int(args.name[1:])
    metric = "psnr_rgb" if colour else "psnr_y"
    baseline = "grey" if colour else "bicubic"
    min_gain = args.min_gain if args.min_gain is not None else (1.0 if colour else 3.0)
    sets = ["Set5", "Set14"]
    target = REPO / "checkpoints" / f"irn_{args.name}.pt"
    work = Path(tempfile.mkdtemp(prefix="irn_ship_"))

    def as_used(path: Path, out: Path) -> dict:
        """A file decoded as users get it: a rescaler with sampled z (the paper's protocol), a colour
        model with the latent it recommends; ``args.draws`` draws where the latent is sampled."""
        z = recommended_z(path) if colour else "sample"
        return evaluate(str(path), scale, z, sets, out, args.draws if z == "sample" else 1)

    def refused(summary: dict) -> int:
        """A candidate that does not ship: its run's rows still join the curve (the training happened)."""
        if args.run_dir:
            write_curve(args, scale)
        print(json.dumps(summary, indent=1))
        return 1

    try:
        candidate = work / "model.pt"
        irn("export", args.checkpoint, "-o", str(candidate))
        ship_metadata(candidate, args.prior_hours)
        base = evaluate(baseline, scale, "zero", sets, work / "baseline.json")
        quick_z = recommended_z(candidate) if colour else "zero"
        quick = evaluate(str(candidate), scale, quick_z, ["Set5"], work / "quick.json")
        gain = quick["Set5"][metric] - base["Set5"][metric]
        label = "z0" if quick_z == "zero" else quick_z
        summary: dict = {f"candidate_set5_{metric}_{label}": quick["Set5"][metric], f"gain_over_{baseline}": gain}
        if gain < min_gain:
            summary["shipped"] = False
            return refused(summary)
        mine = None
        if target.exists() and not args.force:
            mine = as_used(candidate, work / "mine.json")
            theirs = as_used(target, work / "theirs.json")
            summary["as_used" if colour else "sampled_z"] = {
                "candidate": {k: v[metric] for k, v in mine.items()},
                "shipped": {k: v[metric] for k, v in theirs.items()},
            }
            if not all(mine[k][metric] > theirs[k][metric] for k in sets):
                how = "as it is used" if colour else "with sampled z"
                summary.update(shipped=False, reason=f"{target.name} scores as high {how} (Set5 or Set14)")
                return refused(summary)
        shutil.copyfile(candidate, target.with_suffix(".pt.tmp"))
        target.with_suffix(".pt.tmp").replace(target)
        z0 = evaluate(str(target), scale, "zero", sets, work / "z0.json")
        if mine is not None and (not colour or recommended_z(target) == "sample"):
            sample = mine  # the candidate's sampled figures were measured above: the same file and protocol
        else:
            sample = evaluate(str(target), scale, "sample", sets, work / "sample.json", args.draws)
        figures = {baseline: base, "z0": z0, "sample": sample}
        (REPO / "checkpoints" / f"irn_{args.name}_eval.json").write_text(json.dumps(figures, indent=1) + "\n")
        if args.run_dir:
            write_curve(args, scale)
        summary.update(shipped=True, file=str(target), **figures)
        print(json.dumps(summary, indent=1))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
