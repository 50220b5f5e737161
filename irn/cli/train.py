"""``irn train``: train an IRN from a YAML config (see :mod:`irn.train.config`, :mod:`irn.train.module`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from irn.errors import IRNError
from irn.train.config import (
    SECTIONS,
    ConfigError,
    TrainConfig,
    config_from_dict,
    dump_config,
    field_help,
    load_config,
)

HELP = "train an IRN from a YAML config, with dotted overrides (--trainer.max_steps=100)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default=None, help="YAML config (configs/x2.yaml, configs/quick.yaml, ...)")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="last",
        default=None,
        metavar="CKPT",
        help="continue from RUN_DIR/checkpoints/last.ckpt, or from the Lightning checkpoint CKPT",
    )
    group = parser.add_argument_group(
        "overrides",
        "any config field as --section.key=value (YAML syntax), over the config file's value; "
        "the defaults shown are for fields the config file leaves out",
    )
    for section, cls in SECTIONS.items():
        helps = field_help(cls)
        for f in dataclasses.fields(cls):
            dest = f"override:{section}.{f.name}"
            # "%" is argparse's format character
            group.add_argument(
                f"--{section}.{f.name}", dest=dest, metavar="V", default=None, help=helps[f.name].replace("%", "%%")
            )


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    out = []
    for key, value in vars(args).items():
        if key.startswith("override:") and value is not None:
            out.append(f"--{key[len('override:') :]}={value}")
    return out


#: model fields that define the network: a checkpoint resumes only into the same values
ARCHITECTURE_KEYS = ("scale", "blocks_per_level", "growth", "clamp")


def resolve_config(args: argparse.Namespace) -> tuple[TrainConfig, Path | None]:
    """The config of this run and the checkpoint to resume from (None: a fresh run)."""
    from irn.train.module import read_training_checkpoint
    from irn.zoo import CheckpointError

    overrides = overrides_from_args(args)
    resume: Path | None = None
    if args.config is None and args.resume in (None, "last"):
        raise ConfigError("give --config FILE (or --resume CKPT to continue a run with its own config)")
    if args.config is not None:
        cfg = load_config(args.config, overrides)
    else:
        resume = Path(args.resume)
        if not resume.is_file():
            raise ConfigError(f"--resume {resume}: no such checkpoint")
        try:
            ckpt = read_training_checkpoint(resume)
        except CheckpointError as exc:
            raise ConfigError(f"--resume {exc}") from None
        cfg = config_from_dict(ckpt["hyper_parameters"]["config"], overrides)
    if args.resume is not None and resume is None:
        resume = checkpoint_dir(cfg) / "last.ckpt" if args.resume == "last" else Path(args.resume)
        if not resume.is_file():
            raise ConfigError(f"--resume: no checkpoint at {resume}")
        try:
            ckpt = read_training_checkpoint(resume)
        except CheckpointError as exc:
            raise ConfigError(f"--resume {exc}") from None
    if resume is not None:
        saved = ckpt["hyper_parameters"]["config"].get("model", {})
        mine = dataclasses.asdict(cfg.model)
        differ = [k for k in ARCHITECTURE_KEYS if saved.get(k) != mine[k]]
        if differ:
            theirs = ", ".join(f"{k} {saved.get(k)}" for k in differ)
            ours = ", ".join(f"{k} {mine[k]}" for k in differ)
            raise ConfigError(f"--resume {resume}: its network ({theirs}) is not the config's ({ours})")
        step = int(ckpt.get("global_step", 0))
        if step >= cfg.trainer.max_steps:
            raise ConfigError(
                f"--resume {resume}: the run is at step {step}, trainer.max_steps is {cfg.trainer.max_steps}: "
                "nothing to do (raise --trainer.max_steps to train on)"
            )
    return cfg, resume


def checkpoint_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.trainer.run_dir) / "checkpoints"


def run(args: argparse.Namespace) -> int:
    from irn.train.data import check_paths

    cfg, resume = resolve_config(args)
    check_paths(cfg)
    check_compiler(cfg)
    ckpt_dir = checkpoint_dir(cfg)
    last = ckpt_dir / "last.ckpt"
    if resume is None and last.exists():
        raise ConfigError(f"{last} exists: continue it with --resume, or choose another --trainer.run_dir")
    if resume is not None and last.exists() and last.resolve() != resume.resolve():
        raise ConfigError(
            f"--resume {resume}: this run would write into {ckpt_dir}, over the last.ckpt of another run; "
            "choose another --trainer.run_dir"
        )
    return train(cfg, resume)


def check_compiler(cfg: TrainConfig) -> None:
    """``trainer.compile`` on the CPU: torch's inductor writes C++, so a compiler must be there."""
    import torch

    t = cfg.trainer
    if t.compile is None:
        return
    on_cpu = t.accelerator == "cpu" or (t.accelerator == "auto" and not torch.cuda.is_available())
    compiler = os.environ.get("CXX", "g++")
    if on_cpu and shutil.which(compiler) is None:
        raise ConfigError(
            f"trainer.compile {t.compile!r} on the CPU needs a C++ compiler ({compiler!r} not found; "
            "set CXX, or trainer.compile: null)"
        )


def build_trainer(cfg: TrainConfig, callbacks: list[Any]) -> Any:
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import TQDMProgressBar
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from irn.train.module import AtomicCheckpointIO

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
        precision=t.precision,
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
    try:
        return L.Trainer(**options)
    except (ValueError, TypeError, ImportError, MisconfigurationException) as exc:
        # Lightning's own checks of accelerator, devices, strategy, precision, max_time, ...
        raise ConfigError("trainer: " + " ".join(str(exc).split())) from None


def fit_until_interrupted(trainer: Any, module: Any, data: Any, resume: Path | None) -> tuple[str, int] | None:
    """``trainer.fit``; None when it ran to the end, else (what stopped it, the exit code).

    Lightning turns SIGTERM into a ``SystemExit`` with code 0 after the current step, and Ctrl+C
    into ``sys.exit(1)``, both after the callbacks' ``on_exception`` (which writes ``last.ckpt``, see
    :class:`irn.train.module.CheckpointEvery`). Unfinished training is not success: 143 and 130, the
    shell's codes for the two signals."""
    from lightning.pytorch.trainer.states import TrainerStatus
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        trainer.fit(module, datamodule=data, ckpt_path=str(resume) if resume is not None else None, weights_only=True)
    except SIGTERMException:
        return "SIGTERM", 143
    except SystemExit:
        if trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        return "Ctrl+C", 130
    return None


def train(cfg: TrainConfig, resume: Path | None = None, callbacks: Sequence[Any] = ()) -> int:
    """Run (or continue) training; returns 0 when it ran to the end, 143 / 130 when SIGTERM / Ctrl+C
    stopped it (after writing ``last.ckpt``); raises IRNError when stopped by non-finite losses.

    ``callbacks`` are extra Lightning callbacks (used by the tests).
    """
    import lightning as L
    import torch

    from irn.train.data import IRNDataModule
    from irn.train.module import CheckpointEvery, IRNLightning

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
    data = IRNDataModule(cfg.data, cfg.model.scale, seed=t.seed, max_steps=t.max_steps)
    saver = CheckpointEvery(checkpoint_dir(cfg), t.checkpoint_every_n_steps, t.checkpoint_every_minutes, t.monitor)
    trainer = build_trainer(cfg, [saver, *callbacks])
    run_dir = Path(t.run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(dump_config(cfg))
    except OSError as exc:
        raise ConfigError(f"trainer.run_dir {t.run_dir!r}: {exc.strerror or exc}") from None
    stopped_by = fit_until_interrupted(trainer, module, data, resume)
    if stopped_by is not None:
        signal_name, code = stopped_by
        if trainer.is_global_zero:
            print(
                f"irn train: stopped by {signal_name} at step {trainer.global_step}; checkpoint: {saver.last_path}; "
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
