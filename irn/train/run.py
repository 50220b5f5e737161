"""A training run: the ``lightning.Trainer`` of a :class:`~irn.train.config.TrainConfig` and the fit
loop, stopped cleanly by SIGTERM / Ctrl+C (what ``irn train`` runs; :func:`train`)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerStatus

from irn.errors import IRNError
from irn.train.callbacks import AtomicCheckpointIO, CheckpointEvery, GracefulStop, StopRequested
from irn.train.config import ConfigError, TrainConfig, dump_config
from irn.train.data import IRNDataModule
from irn.train.hardware import resolve_channels_last, resolve_precision, resolved_accelerator
from irn.train.module import IRNLightning


def checkpoint_dir(cfg: TrainConfig) -> Path:
    """``RUN_DIR/checkpoints``: where a run writes ``last.ckpt`` and ``best.ckpt``."""
    return Path(cfg.trainer.run_dir) / "checkpoints"


class _NoAdverts(logging.Filter):
    """Drops Lightning's "💡 Tip: ... try installing litlogger" line: an advert, not about the run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("💡 Tip")


_NO_ADVERTS = _NoAdverts()


def check_compiler(cfg: TrainConfig) -> None:
    """``trainer.compile`` on the CPU: torch's inductor writes C++, so a compiler must be there."""
    t = cfg.trainer
    if t.compile is None:
        return
    on_cpu = resolved_accelerator(cfg) == "cpu"
    compiler = os.environ.get("CXX", "g++")
    if on_cpu and shutil.which(compiler) is None:
        raise ConfigError(
            f"trainer.compile {t.compile!r} on the CPU needs a C++ compiler ({compiler!r} not found; "
            "set CXX, or trainer.compile: null)"
        )


def build_trainer(cfg: TrainConfig, callbacks: list[Any]) -> L.Trainer:
    t = cfg.trainer
    run_dir = Path(t.run_dir)
    loggers = [
        CSVLogger(run_dir, name="csv", flush_logs_every_n_steps=t.log_every_n_steps),
        TensorBoardLogger(run_dir, name="tb", default_hp_metric=False),
    ]
    if t.progress_bar:
        callbacks = [*callbacks, TQDMProgressBar(refresh_rate=1)]
    has_val = cfg.data.val_dir is not None
    options = dict(
        default_root_dir=run_dir,
        max_steps=t.max_steps,
        max_epochs=-1,
        max_time=t.max_time,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=resolve_precision(cfg)[0],
        gradient_clip_val=t.gradient_clip_val,
        gradient_clip_algorithm="norm",
        val_check_interval=min(t.val_every_n_steps, t.max_steps) if has_val else None,
        check_val_every_n_epoch=None if has_val else 1,
        limit_val_batches=None if has_val else 0,
        num_sanity_val_steps=0,
        log_every_n_steps=t.log_every_n_steps,
        logger=loggers,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,
        deterministic=t.deterministic,
        # training patches have one size: let cuDNN pick the fastest convolution algorithms
        benchmark=not t.deterministic,
    )
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if _NO_ADVERTS not in logger.filters:
            logger.addFilter(_NO_ADVERTS)
    try:
        return L.Trainer(**options)
    except (ValueError, TypeError, ImportError, MisconfigurationException) as exc:
        # Lightning's own checks of accelerator, devices, strategy, precision, max_time, ...
        raise ConfigError("trainer: " + " ".join(str(exc).split())) from None


def fit_until_interrupted(
    trainer: L.Trainer, module: L.LightningModule, data: L.LightningDataModule, resume: Path | None
) -> tuple[str, int] | None:
    """``trainer.fit``; None when it ran to the end, else (what stopped it, the exit code).

    SIGTERM and Ctrl+C end the fit at a step boundary with :class:`~irn.train.callbacks.StopRequested`
    (``last.ckpt`` written, see :class:`~irn.train.callbacks.GracefulStop`); a second Ctrl+C ends it at
    once (Lightning turns that ``KeyboardInterrupt`` into ``sys.exit(1)``). Unfinished training is not
    success: 143 and 130, the shell's codes for the two signals."""
    try:
        trainer.fit(module, datamodule=data, ckpt_path=str(resume) if resume is not None else None, weights_only=True)
    except StopRequested as stop:
        return stop.name, stop.code
    except RuntimeError as exc:
        if compiler_failed(exc):
            first = next((line for line in str(exc).strip().splitlines() if line.strip()), type(exc).__name__)
            raise IRNError(
                f"trainer.compile: torch's compiler failed ({' '.join(first.split())[:200]}); "
                "train without it (trainer.compile: null)"
            ) from None
        if not lost_peer(trainer, exc):
            raise
        text = " ".join(str(exc).split())
        reason = next((w for w in ("Connection reset by peer", "Connection closed by peer") if w in text), text[:120])
        return f"the loss of another process of the job ({reason})", 1
    except SystemExit:
        if trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        return "Ctrl+C (twice)", 130
    return None


def compiler_failed(exc: BaseException) -> bool:
    """An error raised by torch.compile's dynamo or inductor (a compiler bug or an unsupported operation,
    not the user's data): ``irn train`` reports it in one line and says how to train without it."""
    return any(cls.__module__.startswith(("torch._dynamo", "torch._inductor")) for cls in type(exc).__mro__)


#: what gloo says when the process at the other end of a collective is gone
PEER_LOST = ("Connection reset by peer", "Connection closed by peer")


def lost_peer(trainer: L.Trainer, exc: BaseException) -> bool:
    """A collective failed because another rank is gone (killed, its node lost)."""
    if trainer.world_size <= 1:
        return False
    text = str(exc)
    return any(w in text for w in PEER_LOST)


def exit_with_parent() -> threading.Event:
    """A rank other than 0 exits (137) within a second of its parent's death: a rank-0 process killed by
    SIGKILL would otherwise leave it waiting in a collective until the process group's timeout (30 min).
    Set the returned event once the fit is over (a parent that ends normally first is no failure)."""
    parent = os.getppid()
    done = threading.Event()

    def watch() -> None:
        while os.getppid() == parent:
            if done.wait(1.0):
                return
        if not done.is_set():
            print("irn train: the parent process is gone; this rank stops", file=sys.stderr, flush=True)
            os._exit(137)

    threading.Thread(target=watch, name="irn-parent-watch", daemon=True).start()
    return done


def train(cfg: TrainConfig, resume: Path | None = None, callbacks: Sequence[Any] = ()) -> int:
    """Run (or continue) training; returns 0 when it ran to the end, 143 / 130 when SIGTERM / Ctrl+C
    stopped it (after writing ``last.ckpt``); raises IRNError when stopped by non-finite losses.

    ``callbacks`` are extra Lightning callbacks (used by the tests).
    """
    # Batches are a pure function of the global step (irn.train.data.StepBatchSampler), so a run resumed
    # mid-epoch sees the same data as an uninterrupted one: Lightning's generic warning is wrong here.
    warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
    # a non-finite loss skips the step on purpose (returns None; counted and reported by IRNLightning)
    warnings.filterwarnings("ignore", message=".*`training_step` returned `None`.*")
    t = cfg.trainer
    if t.threads:
        torch.set_num_threads(t.threads)
    L.seed_everything(t.seed, verbose=False)
    try:
        module = IRNLightning(cfg)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    data = IRNDataModule(cfg.data, cfg.model.scale, seed=t.seed, max_steps=t.max_steps, kind=cfg.model.kind)
    validates = cfg.data.val_dir is not None
    saver = CheckpointEvery(
        checkpoint_dir(cfg), t.checkpoint_every_n_steps, t.checkpoint_every_minutes, t.monitor, validates=validates
    )
    stopper = GracefulStop(saver, t.max_steps, validates=validates)
    trainer = build_trainer(cfg, [saver, stopper, *callbacks])
    watching = exit_with_parent() if int(os.environ.get("LOCAL_RANK", "0")) > 0 else None  # a launched rank
    run_dir = Path(t.run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(dump_config(cfg))
    except OSError as exc:
        raise ConfigError(f"trainer.run_dir {t.run_dir!r}: {exc.strerror or exc}") from None
    if trainer.is_global_zero:
        precision, why = resolve_precision(cfg)
        layout, layout_why = resolve_channels_last(cfg)
        print(
            f"irn train: precision {precision} ({why}); channels-last {'on' if layout else 'off'} ({layout_why})",
            file=sys.stderr,
            flush=True,
        )
    stopper.install(trainer)
    try:
        stopped_by = fit_until_interrupted(trainer, module, data, resume)
    finally:
        stopper.uninstall()
        if watching is not None:
            watching.set()
    if stopped_by is not None:
        signal_name, code = stopped_by
        if not trainer.is_global_zero:
            # a clean stop: rank 0's code is the run's (Lightning's launcher kills the whole job, rank 0
            # included, as soon as another rank exits non-zero)
            return 0 if code in (130, 143) else code
        if not saver.last_path.is_file():
            print(
                f"irn train: stopped by {signal_name} at step {trainer.global_step}, before the first checkpoint; "
                "start the run again",
                file=sys.stderr,
            )
            return code
        at = f" (step {saver.saved_step})" if saver.saved_step not in (None, trainer.global_step) else ""
        print(
            f"irn train: stopped by {signal_name} at step {trainer.global_step}; checkpoint: {saver.last_path}{at}; "
            f"continue with: irn train --resume {saver.last_path}",
            file=sys.stderr,
        )
        return code
    if module.stopped_for_nonfinite:
        raise IRNError(
            f"training stopped: {module.nonfinite_in_row} non-finite losses or gradients in a row at step "
            f"{trainer.global_step} (all skipped; weights are from the last finite step); checkpoint: {saver.last_path}"
        )
    if trainer.is_global_zero:
        summary = {
            "steps": trainer.global_step,
            "train_seconds": round(module.train_seconds(), 1),
            "last": str(saver.last_path),
            "best": str(saver.best_path) if saver.best_path.exists() else None,
            f"best {t.monitor}": saver.best if saver.best_path.exists() else None,
        }
        print(json.dumps(summary), file=sys.stderr)
    return 0
