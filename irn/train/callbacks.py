"""Lightning plumbing of a training run: checkpoints written atomically (:class:`AtomicCheckpointIO`)
and the ``last.ckpt`` / ``best.ckpt`` schedule (:class:`CheckpointEvery`)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from irn.imaging.io import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file in the same folder, fsyncs, then renames.

    A reader (or a resumed run) therefore sees either the previous complete file or the
    new complete file, never a half-written one, even if the process is killed mid-write.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        with atomic_write(path, fsync=True) as f:
            torch.save(checkpoint, f)


class CheckpointEvery(L.Callback):
    """``last.ckpt`` every N steps (and every M minutes), at the end of training and on SIGTERM
    or Ctrl+C; ``best.ckpt`` whenever the monitored validation PSNR improves."""

    def __init__(self, dirpath: str | Path, every_n_steps: int, every_minutes: float | None, monitor: str) -> None:
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.every_seconds = every_minutes * 60 if every_minutes else None
        self.monitor = monitor
        self.best = -math.inf
        self._last_saved = time.monotonic()

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    @property
    def best_path(self) -> Path:
        return self.dirpath / "best.ckpt"

    def _save_last(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.last_path, weights_only=False)  # full state: optimizer, loops, RNG
        self._last_saved = time.monotonic()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        due = trainer.global_step % self.every_n_steps == 0
        if self.every_seconds is not None:
            timed = time.monotonic() - self._last_saved >= self.every_seconds
            due = due or bool(trainer.strategy.broadcast(timed))
        if due:
            self._save_last(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if value > self.best:
            self.best = value
            trainer.save_checkpoint(self.best_path, weights_only=False)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_last(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """SIGTERM (Lightning stops after the current step) and Ctrl+C: keep the progress."""
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(exception, (SIGTERMException, KeyboardInterrupt)):
            self._save_last(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "monitor": self.monitor}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("monitor") == self.monitor:
            self.best = float(state_dict.get("best", -math.inf))
