"""The ``gpu`` section of ``benchmarks/run.py`` (issue 7, section 3): the trainer's GPU training
recipes, measured through ``irn train`` itself.

A recipe is a set of the trainer's own options (``trainer.precision``, ``trainer.channels_last``,
``trainer.compile``); fp32 eager is the baseline. For each recipe and scale, :func:`run_recipe`
trains the paper's configuration (``configs/x{s}.yaml``: batch 16 of 144x144 patches, 8 DataLoader
workers, the decoded-image cache) for ``steps`` steps from the same seed on the same batches, with
:func:`irn.train.run.train` (the Trainer, DataLoader and LightningModule a user runs), and
measures:

* it/s: the steps after ``warmup`` (compilation, CUDA-graph capture and cuDNN autotuning happen
  in those) cut into :data:`WINDOWS` equal windows, the device synchronised at window edges only;
  the median window's steps per second;
* GPU utilisation: the mean of samples taken every 0.2 s during the timed windows (NVML through
  ``torch.cuda.utilization``, else ``nvidia-smi``);
* data wait: the share of the timed wall-clock spent between one step's end and the next step's
  start, where the loop waits for the DataLoader's next batch and copies it to the device;
* quality: Set5 PSNR-Y of the reconstruction (z = 0 and sampled z) after the last step, and its
  difference to the fp32 run (issue 7: within 0.05 dB after the same number of steps);
* peak GPU memory (``torch.cuda.max_memory_allocated``).

Run through ``benchmarks/run.py --only gpu`` (see its ``--gpu-*`` options; :func:`bench_gpu` makes
the rows). Without CUDA the rows say "not measured"; ``--gpu-device cpu`` runs the same code on the
CPU (tests do, tiny).

On a lent GPU machine: ``benchmarks/device_gpu.sh`` (one scale per call; it says what to carry).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import NOT_MEASURED, REPO, Row, write_pngs

WINDOWS = 5
#: issue 7's goals on an H200 at the paper's configuration
GOAL_IT_S = {2: 40.0, 4: 25.0}
GOAL_PSNR_DB = 0.05


@dataclass(frozen=True)
class Recipe:
    """Trainer options of one variant (``trainer.precision``, ``.channels_last``, ``.compile``)."""

    precision: str
    channels_last: bool
    compile: str | None

    def overrides(self) -> list[str]:
        compile_ = "null" if self.compile is None else self.compile
        return [
            f"--trainer.precision={self.precision}",
            f"--trainer.channels_last={str(self.channels_last).lower()}",
            f"--trainer.compile={compile_}",
        ]


RECIPES: dict[str, Recipe] = {
    "fp32": Recipe("32-true", False, None),
    "bf16-mixed": Recipe("bf16-mixed", False, None),
    "bf16-mixed+cl": Recipe("bf16-mixed", True, None),
    "bf16-mixed+cl+compile": Recipe("bf16-mixed", True, "default"),
    "bf16-mixed+cl+cudagraphs": Recipe("bf16-mixed", True, "reduce-overhead"),
}
LABELS = {
    "fp32": "fp32 eager (baseline; trainer defaults)",
    "bf16-mixed": "bf16-mixed",
    "bf16-mixed+cl": "bf16-mixed + channels-last",
    "bf16-mixed+cl+compile": "bf16-mixed + channels-last + compile",
    "bf16-mixed+cl+cudagraphs": "bf16-mixed + channels-last + compile(reduce-overhead: CUDA graphs)",
}
#: a model and batch small enough for a CPU smoke run of the same code (--quick, tests)
QUICK_OVERRIDES = [
    "--model.blocks_per_level=[1]",
    "--model.growth=8",
    "--data.patch_size=16",
    "--data.batch_size=2",
    "--data.num_workers=0",
    "--data.val_max_images=1",
]


@dataclass
class Result:
    """What one recipe measured; ``None`` where not available (no GPU, no validation images)."""

    recipe: str
    scale: int
    steps: int
    batch: int
    it_s: float
    window_it_s: list[float]
    warmup_seconds: float
    data_wait: float
    gpu_util: float | None
    peak_gib: float | None
    psnr_y_z0: float | None
    psnr_y_sample: float | None
    device: str
    extra: dict[str, Any] = field(default_factory=dict)


class UtilisationSampler:
    """Samples the GPU's utilisation (percent) every ``period`` seconds in a thread."""

    def __init__(self, index: int, period: float = 0.2) -> None:
        self.index, self.period = index, period
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._source: str | None = None  # "nvml" or "nvidia-smi" once one has answered

    def read(self) -> float | None:
        """One sample: NVML through torch (needs nvidia-ml-py), else ``nvidia-smi``; None if neither works."""
        if self._source != "nvidia-smi":
            try:
                value = float(torch.cuda.utilization(self.index))
                self._source = "nvml"
                return value
            except Exception:  # noqa: BLE001 - nvidia-ml-py missing or NVML unusable: try nvidia-smi
                pass
        if shutil.which("nvidia-smi"):
            query = [
                "nvidia-smi",
                "--query-gpu=utilization.gpu",
                "--format=csv,noheader,nounits",
                "-i",
                str(self.index),
            ]
            try:
                out = subprocess.run(query, capture_output=True, text=True, timeout=5, check=True).stdout
                self._source = "nvidia-smi"
                return float(out.strip().splitlines()[0])
            except (subprocess.SubprocessError, OSError, ValueError, IndexError):
                pass
        return None

    def start(self) -> None:
        if self.read() is None:
            return
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            value = self.read()
            if value is not None:
                self.samples.append(value)

    def stop(self) -> float | None:
        """Stops sampling; the mean utilisation, or None when nothing could be read."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return statistics.fmean(self.samples) if self.samples else None


def step_timer(warmup: int, steps: int, sampler: UtilisationSampler | None) -> Any:
    """A Lightning callback timing the windows after ``warmup`` (see the module docstring)."""
    import lightning as L

    span = (steps - warmup) // WINDOWS
    edges = {warmup + k * span for k in range(1, WINDOWS + 1)}

    class StepTimer(L.Callback):
        def __init__(self) -> None:
            self.marks: list[tuple[int, float]] = []
            self.wait = 0.0
            self.last_end: float | None = None
            self.fit_start = time.perf_counter()
            self.metrics: dict[str, float] = {}
            self.gpu_util: float | None = None

        def _sync(self, module: Any) -> float:
            if module.device.type == "cuda":
                torch.cuda.synchronize(module.device)
            return time.perf_counter()

        def timing(self) -> bool:
            return bool(self.marks) and self.marks[-1][0] < warmup + WINDOWS * span

        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
            now = time.perf_counter()
            if self.timing() and self.last_end is not None:
                self.wait += now - self.last_end
            if trainer.global_step == warmup and not self.marks:
                self.marks.append((warmup, self._sync(module)))
                if sampler is not None:
                    sampler.start()

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            self.last_end = time.perf_counter()
            step = trainer.global_step
            if self.marks and step in edges and step > self.marks[-1][0]:
                self.marks.append((step, self._sync(module)))
                self.last_end = time.perf_counter()
                if step == warmup + WINDOWS * span and sampler is not None:
                    self.gpu_util = sampler.stop()

        def on_validation_end(self, trainer: Any, module: Any) -> None:
            self.metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}

    return StepTimer()


def run_recipe(
    name: str,
    scale: int,
    steps: int,
    warmup: int,
    train_dir: Path,
    val_dir: Path | None,
    device: str = "cuda",
    overrides: list[str] | None = None,
) -> Result:
    """Train ``configs/x{scale}.yaml`` with recipe ``name`` for ``steps`` steps and measure it."""
    from irn.train.config import load_config
    from irn.train.run import train

    if steps - warmup < WINDOWS:
        raise ValueError(f"need at least {WINDOWS} timed steps after the warm-up, got steps {steps}, warmup {warmup}")
    recipe = RECIPES[name]
    run_dir = Path(tempfile.mkdtemp(prefix=f"irn_gpu_{name}_x{scale}_"))
    args = [
        f"--data.train_dir={train_dir}",
        f"--data.val_dir={val_dir if val_dir is not None else 'null'}",
        f"--trainer.run_dir={run_dir}",
        f"--trainer.max_steps={steps}",
        f"--trainer.val_every_n_steps={steps}",
        f"--trainer.checkpoint_every_n_steps={10**9}",
        "--trainer.checkpoint_every_minutes=null",
        "--trainer.progress_bar=false",
        f"--trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
        "--trainer.devices=1",
        "--trainer.seed=0",
        *recipe.overrides(),
        *(overrides or []),
    ]
    config = load_config(REPO / "configs" / f"x{scale}.yaml", args)
    cuda = device == "cuda"
    sampler = UtilisationSampler(torch.cuda.current_device()) if cuda else None
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    timer = step_timer(warmup, steps, sampler)
    try:
        code = train(config, callbacks=[timer])
        if code != 0:
            raise RuntimeError(f"training stopped early (exit code {code})")
    finally:
        if sampler is not None:
            sampler.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        if recipe.compile is not None:
            torch._dynamo.reset()
    marks = timer.marks
    rates = [(s1 - s0) / (t1 - t0) for (s0, t0), (s1, t1) in zip(marks, marks[1:], strict=False)]
    if len(rates) != WINDOWS:
        raise RuntimeError(f"timed {len(rates)} of {WINDOWS} windows (steps skipped for non-finite losses?)")
    timed = marks[-1][1] - marks[0][1]
    return Result(
        recipe=name,
        scale=scale,
        steps=steps,
        batch=config.data.batch_size,
        it_s=statistics.median(rates),
        window_it_s=rates,
        warmup_seconds=marks[0][1] - timer.fit_start,
        data_wait=timer.wait / timed,
        gpu_util=timer.gpu_util,
        peak_gib=torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        psnr_y_z0=timer.metrics.get("val/psnr_y_z0"),
        psnr_y_sample=timer.metrics.get("val/psnr_y_sample"),
        device=device,
    )


def describe(result: Result, baseline: Result | None) -> dict[str, str]:
    """Table cells for one result: value, ratio to the baseline, agreement (quality) and note."""
    value = f"{result.it_s:.2f} it/s ({result.it_s * result.batch:.0f} patches/s)"
    ratio = f"{result.it_s / baseline.it_s:.2f}x" if baseline is not None else ""
    quality = "no validation images"
    if result.psnr_y_z0 is not None:
        quality = f"Set5 PSNR-Y z=0 {result.psnr_y_z0:.3f} dB, sampled {result.psnr_y_sample:.3f} dB"
        if baseline is not None and baseline.psnr_y_z0 is not None and baseline is not result:
            delta = result.psnr_y_z0 - baseline.psnr_y_z0
            verdict = "within" if abs(delta) <= GOAL_PSNR_DB else "NOT within"
            quality += f"; {delta:+.3f} dB vs fp32 ({verdict} {GOAL_PSNR_DB} dB)"
    util = "n/a" if result.gpu_util is None else f"{result.gpu_util:.0f}%"
    note = [f"GPU util {util}", f"data wait {result.data_wait:.1%}"]
    if result.peak_gib is not None:
        note.append(f"peak {result.peak_gib:.1f} GiB")
    note.append(f"warm-up {result.warmup_seconds:.0f} s")
    note.append("windows " + ", ".join(f"{r:.1f}" for r in result.window_it_s) + " it/s")
    if result.device == "cuda":
        goal = GOAL_IT_S[result.scale]
        note.append(f"goal {goal:.0f} it/s {'met' if result.it_s >= goal else 'not met'}")
    return {"value": value, "ratio": ratio, "agreement": quality, "note": "; ".join(note)}


def run_all(
    scales: list[int],
    recipes: list[str],
    steps: int,
    warmup: int,
    train_dir: Path,
    val_dir: Path | None,
    device: str,
    overrides: list[str] | None = None,
) -> list[tuple[int, str, Result | None, dict[str, str]]]:
    """Every recipe for every scale, fp32 first (the baseline of the ratios and of the quality delta).

    Returns (scale, recipe, its result or None if it failed, table cells). A failing recipe is reported in its row
    (its traceback goes to stderr) and the others still run."""
    order = ["fp32", *[r for r in recipes if r != "fp32"]]
    out: list[tuple[int, str, Result | None, dict[str, str]]] = []
    for scale in scales:
        baseline: Result | None = None
        for name in order:
            try:
                result = run_recipe(name, scale, steps, warmup, train_dir, val_dir, device, overrides)
            except Exception as exc:  # noqa: BLE001 - one recipe failing must not lose the others' figures
                traceback.print_exc(file=sys.stderr)
                first = " ".join(str(exc).split())[:200]
                out.append((scale, name, None, {"value": f"failed: {type(exc).__name__}: {first}"}))
                continue
            if name == "fp32":
                baseline = result
            print(f"  gpu x{scale} {name}: {result.it_s:.2f} it/s", file=sys.stderr, flush=True)
            out.append((scale, name, result, describe(result, baseline)))
    return out


def bench_gpu(args: argparse.Namespace) -> list[Row]:
    """The rows of the gpu section: every recipe of ``--gpu-recipes`` for every scale of ``--gpu-scales``."""
    device = args.gpu_device
    steps, warmup = (8, 3) if args.quick else (args.gpu_steps, args.gpu_warmup)
    case = "x{scale} batch {batch} {patch}x{patch}, " + f"{steps} steps ({warmup} warm-up)"
    if device == "cuda" and not torch.cuda.is_available():
        return [
            Row("gpu", case.format(scale=s, batch=16, patch=144), LABELS[r], "cuda", NOT_MEASURED)
            for s in args.gpu_scales
            for r in ["fp32", *[r for r in args.gpu_recipes if r != "fp32"]]
        ]
    train_dir = Path(args.train_dir) if args.train_dir else None
    if train_dir is None:
        train_dir = Path(args.data_dir)
        write_pngs(train_dir, 2 if args.quick else 8, (256, 384) if args.quick else (1356, 2040))
    val_dir = Path(args.val_dir) if args.val_dir else None
    overrides = QUICK_OVERRIDES if args.quick else []
    batch, patch = (2, 16) if args.quick else (16, 144)
    rows = []
    for scale, name, result, cells in run_all(
        args.gpu_scales, args.gpu_recipes, steps, warmup, train_dir, val_dir, device, overrides
    ):
        rows.append(
            Row(
                "gpu",
                case.format(scale=scale, batch=batch, patch=patch),
                LABELS[name],
                device,
                raw={} if result is None else asdict(result),
                **cells,
            )
        )
    return rows
