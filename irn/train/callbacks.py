"""Lightning plumbing of a training run: checkpoints written atomically (:class:`AtomicCheckpointIO`),
the ``last.ckpt`` / ``best.ckpt`` schedule (:class:`CheckpointEvery`) and the stop on SIGTERM / Ctrl+C
at a step boundary, on every rank together (:class:`GracefulStop`)."""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
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


def validation_due(trainer: L.Trainer, validates: bool) -> bool:
    """Whether a validation runs right after this training step (Lightning's own rule for it)."""
    loop = trainer.fit_loop.epoch_loop
    return validates and bool(loop._should_check_val_fx(trainer.fit_loop._data_fetcher))


class CheckpointEvery(L.Callback):
    """``last.ckpt`` every N steps (and every M minutes), at the end of training and on SIGTERM
    or Ctrl+C; ``best.ckpt`` whenever the monitored validation PSNR improves.

    A ``last.ckpt`` due at a step that a validation follows is written after that validation (and its
    ``best.ckpt``): Lightning resumes a checkpoint of that step past its validation, so a run killed
    during the validation would otherwise never score it. Killed then, the run resumes from the
    checkpoint before and redoes the steps and the validation, as an uninterrupted run did them."""

    def __init__(
        self,
        dirpath: str | Path,
        every_n_steps: int,
        every_minutes: float | None,
        monitor: str,
        validates: bool = False,
    ) -> None:
        self.validates = validates
        self._deferred = False
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.every_seconds = every_minutes * 60 if every_minutes else None
        self.monitor = monitor
        self.best = -math.inf
        self._last_saved = time.monotonic()
        self.saved_step: int | None = None  # the step of the last.ckpt this process wrote
        self.saved_batch: int | None = None  # ... and the training batches started by then

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Temporary files of checkpoint writes that a SIGKILL cut short (their process is gone) are removed."""
        if trainer.is_global_zero and self.dirpath.is_dir():
            for tmp in self.dirpath.glob(".*.ckpt.*.tmp"):
                parts = tmp.name.split(".")
                pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
                if pid is not None and pid != os.getpid() and not _alive(pid):
                    tmp.unlink(missing_ok=True)

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    @property
    def best_path(self) -> Path:
        return self.dirpath / "best.ckpt"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.saved_step is None and trainer.global_step > 0:  # resumed: last.ckpt is at this step
            self.saved_step = trainer.global_step

    def _save_last(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.last_path, weights_only=False)  # full state: optimizer, loops, RNG
        self._last_saved = time.monotonic()
        self.saved_step = trainer.global_step
        self.saved_batch = _batches_started(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        due = trainer.global_step % self.every_n_steps == 0
        if self.every_seconds is not None:
            timed = time.monotonic() - self._last_saved >= self.every_seconds
            due = due or bool(trainer.strategy.broadcast(timed))
        if due and validation_due(trainer, self.validates):
            self._deferred = True  # written after the validation (on_validation_end)
        elif due:
            self._save_last(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.monitor in trainer.callback_metrics:
            self._update_best(trainer)
        if self._deferred:
            self._deferred = False
            self._save_last(trainer)

    def _update_best(self, trainer: L.Trainer) -> None:
        value = float(trainer.callback_metrics[self.monitor])
        if trainer.world_size > 1:  # rank 0's figure decides for all: the save below is a collective
            value = float(trainer.strategy.broadcast(value, src=0))
        if value > self.best:
            self.best = value
            trainer.save_checkpoint(self.best_path, weights_only=False)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_last(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "monitor": self.monitor}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("monitor") == self.monitor:
            self.best = float(state_dict.get("best", -math.inf))


def _batches_started(trainer: L.Trainer) -> int:
    return int(trainer.fit_loop.epoch_loop.batch_progress.total.ready)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


#: what each handled signal is called in messages, and the shell's exit code for it
STOP_SIGNALS: dict[int, tuple[str, int]] = {signal.SIGTERM: ("SIGTERM", 143), signal.SIGINT: ("Ctrl+C", 130)}


class StopRequested(Exception):
    """Raised (on every rank at the same step) once ``last.ckpt`` holds the state to continue from."""

    def __init__(self, signum: int, step: int) -> None:
        self.name, self.code = STOP_SIGNALS[signum]
        self.step = step
        super().__init__(f"stopped by {self.name} at step {step}")


class GracefulStop(L.Callback):
    """SIGTERM and Ctrl+C stop a run at the next step boundary, with ``last.ckpt`` written there.

    The signal handler only takes note (no collective, no I/O in a handler: a rank in a checkpoint
    barrier or an all-reduce when the signal comes cannot deadlock). After every optimizer step the ranks
    agree whether any of them was signalled (one all-reduce); if so, they write ``last.ckpt`` together and
    raise :class:`StopRequested`. When a validation is due at that step, or the signal came during one,
    the validation runs to its end first (and may update ``best.ckpt``): a resumed run then scores every
    validation whole, as an uninterrupted run does. A second Ctrl+C stops at once, keeping the previous
    ``last.ckpt``. Lightning's own SIGTERM handling (a broadcast inside the handler, a checkpoint of a
    half-done validation) is switched off by :meth:`install`.
    """

    def __init__(self, saver: CheckpointEvery, max_steps: int, validates: bool) -> None:
        self.saver = saver
        self.max_steps = max_steps
        self.validates = validates  # the run has validation images
        self.requested: int | None = None
        self._pending = False
        self._previous: dict[int, Any] = {}
        self._rank = 0
        self._pid = os.getpid()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._rank = trainer.global_rank

    # -------------------------------------------------------------- handlers
    def install(self, trainer: L.Trainer | None = None) -> None:
        """Take SIGTERM and SIGINT (main thread only); with ``trainer``, keep Lightning's handlers out."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._pid = os.getpid()
        for signum in STOP_SIGNALS:
            self._previous.setdefault(signum, signal.getsignal(signum))
            signal.signal(signum, self._handle)
        if trainer is not None:
            trainer._signal_connector.register_signal_handlers = lambda: None  # type: ignore[method-assign]

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:
            if signum == signal.SIGINT:  # Ctrl+C twice: now
                raise KeyboardInterrupt
            return
        if os.getpid() != self._pid:  # a forked data-loading worker: the trainer's process decides
            return
        self.requested = signum
        if self._rank != 0:  # one note for the job
            return
        name = STOP_SIGNALS[signum][0]
        again = " (Ctrl+C again: stop now)" if signum == signal.SIGINT else ""
        # os.write, not print: a handler that interrupts a buffered stderr write must not write through it
        os.write(2, f"irn train: {name}: stopping after this step{again}\n".encode())

    # -------------------------------------------------------------- the decision, at step boundaries
    def _agreed(self, trainer: L.Trainer) -> int | None:
        """The signal any rank got (SIGTERM over Ctrl+C), the same on every rank; None: go on."""
        mine = self.requested or 0
        if trainer.world_size > 1:
            import torch

            flag = torch.tensor([mine], dtype=torch.int64, device=trainer.strategy.root_device)
            mine = int(trainer.strategy.reduce(flag, reduce_op="max").item())
        if mine and self.requested is None:
            self.requested = mine
        return mine or None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._agreed(trainer) is None or trainer.global_step >= self.max_steps:
            return  # nothing asked, or the run is complete: it ends as usual (exit 0)
        if not self._pending and validation_due(trainer, self.validates):
            self._pending = True  # stop after this step's validation (on_validation_end)
            return
        # the saver may have written this very state at this hook already (its every-N-steps save)
        self._stop(trainer, save=self.saver.saved_batch != _batches_started(trainer))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.global_step >= self.max_steps:
            return
        if self._agreed(trainer) is not None or self._pending:
            self._stop(trainer, save=True)  # the state after the validation (and its best.ckpt)

    def _stop(self, trainer: L.Trainer, save: bool) -> None:
        assert self.requested is not None
        if save:
            self.saver._save_last(trainer)
        raise StopRequested(self.requested, trainer.global_step)
