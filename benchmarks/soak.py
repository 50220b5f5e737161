"""Faults at any moment (issue 19): ``irn train`` interrupted by SIGKILL, SIGTERM or Ctrl+C many times,
resumed after each, and compared with an uninterrupted run.

    python benchmarks/soak.py --interruptions 50 --seed 0 [--json benchmarks/results/soak.json]
    python benchmarks/soak.py --interruptions 12 --modes ddp      # DDP only (2 CPU processes, gloo)

A *campaign* is one tiny training run (a one-block x2 IRN, 16-pixel patches, 24 steps, validation every
4 steps on 3 images, ``last.ckpt`` every 3): it is started, interrupted, resumed with
``irn train --resume``, interrupted again, ... until it ends by itself (exit 0). Each start carries one
fault, drawn from a seeded generator:

- the signal: SIGKILL, SIGTERM or SIGINT (Ctrl+C);
- the moment: the first step of the process, a later step, the last step, a validation (between its
  batches), a checkpoint write (after its first 64 KiB), the checkpoint barrier (DDP: rank 0 waits there
  while rank 1 is late), or a random time after the start (sent from outside, possibly before training);
- the target: the process, or for DDP the whole job (the process group), rank 0 alone or rank 1 alone.

The moment is hit exactly by a callback in the child process (``child`` below), which logs the time and
then sends the real signal with ``os.kill`` / ``os.killpg``. After every interruption the harness checks
that every process of the job has exited within 60 s of the signal, that the exit code says what happened
(-9 for SIGKILL, 143 or -15 for SIGTERM, 130 for Ctrl+C, 0 when the run had finished), and that
``last.ckpt``, once written, loads. When the campaign ends, its weights, optimizer state, step and
``best.ckpt`` figure must equal those of the uninterrupted run bit for bit.

The report gives the interruptions by signal and moment, hangs and mismatches, and the command.
``tests/train/test_soak.py`` runs a few seeded campaigns of this harness.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HANG_SECONDS = 60.0
FAULT_ENV = "IRN_SOAK_FAULT"
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
MOMENTS = ("first", "step", "last", "validation", "checkpoint", "random")
DDP_MOMENTS = (*MOMENTS, "barrier")
MAX_STEPS = 24


# ---------------------------------------------------------------------- the run being interrupted
def write_images(folder: Path, n: int, seed: int) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        low = rng.uniform(0, 255, (12, 14, 3)).astype(np.uint8)
        Image.fromarray(low).resize((48, 40), Image.BICUBIC).save(folder / f"img{i}.png")
    return folder


def campaign_config(root: Path, run_dir: Path, ddp: bool) -> Path:
    """The YAML config of one campaign's run (the data under ``root`` is shared by all campaigns)."""
    import yaml

    train = root / "data" / "train"
    val = root / "data" / "val"
    if not train.is_dir():
        write_images(train, 4, 0)
        write_images(val, 3, 1)
    raw = {
        "model": {"scale": 2, "blocks_per_level": [1], "growth": 8},
        "data": {"train_dir": str(train), "val_dir": str(val), "patch_size": 16, "batch_size": 2, "num_workers": 0},
        "loss": {"rec_sample_fraction": 0.5, "rec_temperature_ramp_steps": 10},
        "optim": {"lr": 1e-3, "warmup_steps": 2},
        "trainer": {
            "run_dir": str(run_dir),
            "max_steps": MAX_STEPS,
            "accelerator": "cpu",
            "devices": 2 if ddp else 1,
            "strategy": "ddp" if ddp else "auto",
            "val_every_n_steps": 4,
            "checkpoint_every_n_steps": 3,
            "checkpoint_every_minutes": None,
            "log_every_n_steps": 1,
            "threads": 1,
            "progress_bar": False,
        },
    }
    path = run_dir.parent / f"{run_dir.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


def final_state(run_dir: Path) -> dict[str, Any]:
    """What must match the uninterrupted run: weights, optimizer state, step, best figure and step."""
    import torch

    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    best_file = run_dir / "checkpoints" / "best.ckpt"
    best = torch.load(best_file, weights_only=True, map_location="cpu") if best_file.is_file() else None
    saver = next((v for k, v in ckpt["callbacks"].items() if "CheckpointEvery" in k), {})
    opt = [t for state in ckpt["optimizer_states"] for s in state["state"].values() for t in s.values()]
    return {
        "validations": validation_history(run_dir),
        "step": ckpt["global_step"],
        "weights": ckpt["state_dict"],
        "optimizer": opt,
        "best": saver.get("best"),
        "best_step": best["global_step"] if best is not None else None,
    }


def validation_history(run_dir: Path) -> dict[int, str]:
    """Step -> the logged ``val/psnr_y_sample`` of every validation (all starts of the run, in order)."""
    import csv

    history: dict[int, str] = {}
    for f in sorted((run_dir / "csv").glob("version_*/metrics.csv"), key=lambda f: int(f.parent.name.split("_")[1])):
        with f.open() as fh:
            for row in csv.DictReader(fh):
                if row.get("val/psnr_y_sample"):
                    history[int(row["step"])] = row["val/psnr_y_sample"]
    return history


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    import torch

    out = [k for k in ("step", "best", "best_step") if a[k] != b[k]]
    if a["validations"] != b["validations"]:
        steps = sorted(
            k
            for k in a["validations"].keys() | b["validations"].keys()
            if a["validations"].get(k) != b["validations"].get(k)
        )
        out.append(f"validation scores at steps {steps}")
    if a["weights"].keys() != b["weights"].keys() or any(
        not torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"]
    ):
        out.append("weights")
    if len(a["optimizer"]) != len(b["optimizer"]) or any(
        not torch.equal(x, y) for x, y in zip(a["optimizer"], b["optimizer"], strict=False)
    ):
        out.append("optimizer")
    return out


# ---------------------------------------------------------------------- the child: irn train + a fault
class Tripwire:
    """A file proxy that calls ``fire`` once ``after`` bytes went through it."""

    def __init__(self, f: Any, after: int, fire: Any) -> None:
        self._f, self._left, self._fire = f, after, fire

    def write(self, data: Any) -> int:
        n = self._f.write(data)
        self._left -= len(data)
        if self._left <= 0 and self._fire is not None:
            fire, self._fire = self._fire, None
            fire()
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def fault_callback(spec: dict[str, Any]) -> Any:
    """A Lightning callback that sends ``spec['signal']`` at ``spec['moment']`` (its ``nth`` occurrence)."""
    import lightning as L

    import irn.train.callbacks as callbacks

    class Fault(L.Callback):
        def __init__(self) -> None:
            self.count: collections.Counter[str] = collections.Counter()
            self.rank = 0
            self.fired = False

        def fire(self, where: str = "") -> None:
            if self.fired or self.rank != spec["rank"]:
                return
            self.fired = True
            with open(spec["log"], "a") as f:
                f.write(json.dumps({"t": time.time(), "where": where, "pid": os.getpid(), **spec}) + "\n")
            sig = SIGNALS[spec["signal"]]
            if spec["target"] == "group":
                os.killpg(os.getpgrp(), sig)
            else:
                os.kill(os.getpid(), sig)

        def _at(self, moment: str, where: str) -> None:
            if spec["moment"] == moment:
                if self.count[moment] == spec["nth"]:
                    self.fire(where)
                self.count[moment] += 1

        def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
            self.rank = trainer.global_rank
            if spec["moment"] == "checkpoint":
                real = callbacks.atomic_write

                @contextlib.contextmanager
                def tripped(path: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
                    with real(path, *args, **kwargs) as f:
                        if self.count["checkpoint"] == spec["nth"] and self.rank == spec["rank"]:
                            yield Tripwire(f, 65536, lambda: self.fire(f"writing {Path(path).name}"))
                        else:
                            yield f
                    self.count["checkpoint"] += 1

                callbacks.atomic_write = tripped  # type: ignore[assignment]
            if spec["moment"] == "barrier":
                strategy = trainer.strategy
                real_barrier = strategy.barrier

                def barrier(name: str | None = None) -> None:
                    if name == "Trainer.save_checkpoint":
                        if self.count["barrier"] == spec["nth"]:
                            if self.rank == spec["rank"]:  # the signal comes while this rank waits
                                threading.Timer(0.5, self.fire, args=("in the checkpoint barrier",)).start()
                            else:
                                time.sleep(1.5)  # the other rank is late
                        self.count["barrier"] += 1
                    real_barrier(name)

                strategy.barrier = barrier  # type: ignore[method-assign]

        def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
            if spec["moment"] == "first":
                self._at("first", f"first step ({trainer.global_step + 1})")
            elif spec["moment"] == "last" and trainer.global_step == trainer.max_steps - 1:
                self.fire(f"last step ({trainer.global_step + 1})")
            else:
                self._at("step", f"step {trainer.global_step + 1}")

        def on_validation_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
            if batch_idx == 1:
                self._at("validation", f"validation at step {trainer.global_step}, between its batches")

    return Fault()


def child(argv: list[str]) -> int:
    """``irn train ARGS`` with the fault of the environment's ``IRN_SOAK_FAULT`` (JSON) added. What
    ``irn train`` does before its heavy imports (a launched rank leaves signals to rank 0; Ctrl+C while
    torch loads is "irn: interrupted", 130) happens here before this module imports the trainer."""
    from irn.cli.train import leave_signals_to_rank_zero

    leave_signals_to_rank_zero()
    try:
        import irn.train.run as run
        from irn.cli.main import main
    except KeyboardInterrupt:
        print("irn: interrupted", file=sys.stderr)
        return 130

    spec = json.loads(os.environ.get(FAULT_ENV, "null"))
    if spec is not None:
        real_train = run.train

        def train(cfg: Any, resume: Any = None, callbacks: Any = ()) -> int:
            return real_train(cfg, resume, [*callbacks, fault_callback(spec)])

        run.train = train  # type: ignore[assignment]
    return main(["train", *argv])


# ---------------------------------------------------------------------- the harness
@dataclass
class Interruption:
    campaign: int
    mode: str
    signal: str
    moment: str
    target: str
    rank: int
    fired: bool = False
    where: str = ""
    returncode: int | None = None
    exit_seconds: float | None = None
    hang: bool = False
    problems: list[str] = field(default_factory=list)


def expected_codes(sig: str, finished: bool, lost_rank: bool = False) -> set[int]:
    """Rank 0's exit codes that say what happened; ``lost_rank``: the signal went to another rank alone."""
    codes = {"SIGKILL": {-9}, "SIGTERM": {143, -15}, "SIGINT": {130}}[sig]
    if lost_rank and sig == "SIGKILL":  # rank 0 says so (1), or Lightning's launcher killed it (-9)
        codes = {1, -9}
    return codes | ({0} if finished else set())


def job_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def draw_fault(rng: random.Random, mode: str, moments: list[str] | None = None) -> tuple[str, str, str, int]:
    sig = rng.choice(list(SIGNALS))
    allowed = DDP_MOMENTS if mode == "ddp" else MOMENTS
    moment = rng.choice([m for m in allowed if moments is None or m in moments] or list(allowed))
    if mode == "single":
        return sig, moment, "self", 0
    if moment == "barrier":
        return sig, moment, rng.choice(["self", "group"]), 0
    if sig == "SIGKILL":  # the whole job, or one rank's node gone
        target, rank = rng.choice([("group", 0), ("self", 0), ("self", 1)])
    else:  # a scheduler signals the job; `kill PID` signals rank 0
        target, rank = rng.choice([("group", 0), ("self", 0)])
    return sig, moment, target, rank


def start(cfg: Path, run_dir: Path, spec: dict[str, Any] | None, log: Path) -> subprocess.Popen[bytes]:
    last = run_dir / "checkpoints" / "last.ckpt"
    args = ["--config", str(cfg)] + (["--resume"] if last.is_file() else [])
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop(FAULT_ENV, None)
    if spec is not None:
        env[FAULT_ENV] = json.dumps(spec)
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "child", *args],
        cwd=REPO,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the job's own process group: what a scheduler signals
    )


def run_once(
    cfg: Path, run_dir: Path, item: Interruption | None, rng: random.Random, root: Path, budget: float = 600.0
) -> tuple[int, bool]:
    """One start of the campaign's run, with ``item``'s fault; returns (exit code, hung)."""
    faults = root / "faults.jsonl"
    before = faults.read_text().count("\n") if faults.is_file() else 0
    spec = None
    if item is not None and item.moment != "random":
        spec = {"signal": item.signal, "moment": item.moment, "target": item.target, "rank": item.rank}
        spec |= {"nth": rng.randint(0, 1) if item.moment != "first" else 0, "log": str(faults)}
    proc = start(cfg, run_dir, spec, root / "children.log")
    pgid = proc.pid
    started = time.time()
    fired_at: float | None = None
    if item is not None and item.moment == "random":
        delay = rng.uniform(0.5, 12.0)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            fired_at = time.time()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, SIGNALS[item.signal])
            item.fired, item.where = True, f"{delay:.1f} s after the start"
    hung = False
    while True:
        if faults.is_file() and fired_at is None and item is not None:
            lines = faults.read_text().splitlines()[before:]
            if lines:
                record = json.loads(lines[0])
                fired_at, item.fired, item.where = record["t"], True, record["where"]
        done = proc.poll() is not None and not job_alive(pgid)
        if done:
            break
        limit = (fired_at + HANG_SECONDS) if fired_at is not None else started + budget
        if time.time() > limit:
            hung = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.05)
    if item is not None and fired_at is not None:
        item.exit_seconds = round(time.time() - fired_at, 2)
    return proc.returncode, hung


def campaign(
    index: int,
    mode: str,
    root: Path,
    rng: random.Random,
    faults: int,
    reference: dict[str, Any],
    moments: list[str] | None = None,
    plan: list[tuple[str, str, str, int]] | None = None,
) -> list[Interruption]:
    """One run, interrupted by ``faults`` faults drawn from ``rng`` (or by those of ``plan``: (signal,
    moment, target, rank) each), then finished and compared with ``reference``."""
    run_dir = root / f"{mode}_{index}"
    cfg = campaign_config(root, run_dir, mode == "ddp")
    last = run_dir / "checkpoints" / "last.ckpt"
    items: list[Interruption] = []
    for n in range(len(plan) if plan is not None else faults):
        if _step_of(last) >= MAX_STEPS:  # stopped after the last step: nothing left to resume
            break
        sig, moment, target, rank = plan[n] if plan is not None else draw_fault(rng, mode, moments)
        item = Interruption(index, mode, sig, moment, target, rank)
        had_last = last.is_file()
        code, hung = run_once(cfg, run_dir, item, rng, root)
        item.returncode, item.hang = code, hung
        finished = code == 0
        if hung:
            item.problems.append(f"hang: the job had not exited {HANG_SECONDS:.0f} s after the signal")
        elif item.fired and code not in expected_codes(sig, finished, lost_rank=item.rank != 0):
            item.problems.append(f"exit code {code} for {sig}")
        elif not item.fired and code != 0:
            item.problems.append(f"exit code {code} without a fault")
        if (had_last or last.is_file()) and not _loads(last):
            item.problems.append("last.ckpt does not load")
        items.append(item)
        if finished:
            break
    else:  # the faults are spent: finish the run without one
        if _step_of(last) < MAX_STEPS:
            code, hung = run_once(cfg, run_dir, None, rng, root)
            if code != 0 or hung:
                items[-1].problems.append(f"the final resume failed (exit {code}, hung {hung})")
    if last.is_file():
        diff = differences(final_state(run_dir), reference)
        if diff:
            items[-1].problems.append("differs from the uninterrupted run: " + ", ".join(diff))
    else:
        items[-1].problems.append("no last.ckpt at the end")
    stray = list((run_dir / "checkpoints").glob(".*.tmp"))
    if stray:
        items[-1].problems.append(f"temporary files left: {[p.name for p in stray]}")
    return items


def _step_of(last: Path) -> int:
    import torch

    if not last.is_file():
        return -1
    try:
        return int(torch.load(last, weights_only=True, map_location="cpu")["global_step"])
    except Exception:
        return -1


def _loads(path: Path) -> bool:
    import torch

    try:
        torch.load(path, weights_only=True, map_location="cpu")
    except Exception:
        return False
    return True


def reference(root: Path, mode: str) -> dict[str, Any]:
    """The uninterrupted run's final state (``mode``: single or ddp)."""
    run_dir = root / f"{mode}_reference"
    cfg = campaign_config(root, run_dir, mode == "ddp")
    code, hung = run_once(cfg, run_dir, None, random.Random(0), root)
    if code != 0 or hung:
        raise SystemExit(f"soak: the uninterrupted {mode} run failed (exit {code}); see {root}/children.log")
    return final_state(run_dir)


def soak(
    root: Path,
    interruptions: int,
    seed: int,
    modes: list[str],
    faults_per_run: int = 5,
    moments: list[str] | None = None,
) -> dict[str, Any]:
    """The whole soak; returns the report (see :func:`report_lines`)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    references = {mode: reference(root, mode) for mode in modes}
    items: list[Interruption] = []
    index = 0
    started = time.time()
    while sum(i.fired for i in items) < interruptions:
        mode = modes[index % len(modes)]
        items += campaign(index, mode, root, rng, faults_per_run, references[mode], moments)
        index += 1
    return {
        "command": " ".join(["python", "benchmarks/soak.py", *sys.argv[1:]]) if __name__ == "__main__" else None,
        "seed": seed,
        "campaigns": index,
        "seconds": round(time.time() - started, 1),
        "interruptions": [asdict(i) for i in items],
    }


def target_name(item: dict[str, Any]) -> str:
    if item["mode"] == "single":
        return "process"
    return "whole job" if item["target"] == "group" else f"rank {item['rank']}"


def report_lines(report: dict[str, Any]) -> list[str]:
    items = report["interruptions"]
    fired = [i for i in items if i["fired"]]

    def key(i: dict[str, Any]) -> tuple[str, str, str, str]:
        return i["mode"], i["signal"], i["moment"], target_name(i)

    by = collections.Counter(key(i) for i in fired)
    lines = [
        f"soak: {len(fired)} interruptions in {report['campaigns']} campaigns ({report['seconds']} s), "
        f"{sum(i['hang'] for i in items)} hangs, {sum(bool(i['problems']) for i in items)} with problems",
        "mode    signal   moment      target     count  slowest exit (s)",
    ]
    for k, n in sorted(by.items()):
        slowest = max((i["exit_seconds"] or 0.0) for i in fired if key(i) == k)
        lines.append(f"{k[0]:7s} {k[1]:8s} {k[2]:11s} {k[3]:10s} {n:5d}  {slowest:.1f}")
    for i in items:
        for problem in i["problems"]:
            at = i["where"] or i["moment"]
            lines.append(f"PROBLEM campaign {i['campaign']} ({i['mode']}, {i['signal']} at {at}): {problem}")
    if report.get("command"):
        lines.append(f"command: {report['command']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["child"]:
        return child(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--interruptions", type=int, default=50, help="at least this many faults that fired")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--modes", default="single,ddp", help="single, ddp or both (comma-separated)")
    p.add_argument("--faults-per-run", type=int, default=5, help="faults in one campaign before it may finish")
    p.add_argument("--moments", default=None, help=f"only these moments (comma-separated: {', '.join(DDP_MOMENTS)})")
    p.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = p.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in ("single", "ddp") for m in modes):
        p.error(f"--modes: single and/or ddp, got {args.modes!r}")
    moments = args.moments.split(",") if args.moments else None
    if moments and any(m not in DDP_MOMENTS for m in moments):
        p.error(f"--moments: from {', '.join(DDP_MOMENTS)}, got {args.moments!r}")
    import tempfile

    with contextlib.ExitStack() as stack:
        root = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="irn-soak-")))
        report = soak(root, args.interruptions, args.seed, modes, args.faults_per_run, moments)
    print("\n".join(report_lines(report)))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    problems = sum(bool(i["problems"]) for i in report["interruptions"])
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
