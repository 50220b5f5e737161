"""``irn train``: train an IRN from a YAML config (see :mod:`irn.train.config`); the flags give the
config and the checkpoint to resume from, and :func:`irn.train.run.train` runs it."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
from pathlib import Path

from irn.train.config import (
    SECTIONS,
    ConfigError,
    TrainConfig,
    config_from_dict,
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
ARCHITECTURE_KEYS = ("kind", "scale", "blocks_per_level", "growth", "clamp")
#: what a checkpoint written before a key existed had
ARCHITECTURE_DEFAULTS = {"kind": "haar"}


def resolve_config(args: argparse.Namespace) -> tuple[TrainConfig, Path | None]:
    """The config of this run and the checkpoint to resume from (None: a fresh run)."""
    from irn.train.export import read_training_checkpoint
    from irn.train.run import checkpoint_dir
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
        theirs_of = {k: saved.get(k, ARCHITECTURE_DEFAULTS.get(k)) for k in ARCHITECTURE_KEYS}
        differ = [k for k in ARCHITECTURE_KEYS if theirs_of[k] != mine[k]]
        if differ:
            theirs = ", ".join(f"{k} {theirs_of[k]}" for k in differ)
            ours = ", ".join(f"{k} {mine[k]}" for k in differ)
            raise ConfigError(f"--resume {resume}: its network ({theirs}) is not the config's ({ours})")
        step = int(ckpt.get("global_step", 0))
        if step >= cfg.trainer.max_steps:
            raise ConfigError(
                f"--resume {resume}: the run is at step {step}, trainer.max_steps is {cfg.trainer.max_steps}: "
                "nothing to do (raise --trainer.max_steps to train on)"
            )
    return cfg, resume


def leave_signals_to_rank_zero() -> None:
    """In a rank that a launcher started (``LOCAL_RANK`` > 0), ignore SIGINT and SIGTERM until its trainer
    takes them (:class:`irn.train.callbacks.GracefulStop`): Ctrl+C in the terminal and a SIGTERM to the
    job are rank 0's to act on, and a rank dying while torch loads would make Lightning's launcher
    SIGKILL the whole job."""
    if int(os.environ.get("LOCAL_RANK", "0")) > 0:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def run(args: argparse.Namespace) -> int:
    leave_signals_to_rank_zero()
    from irn.train.data import check_paths
    from irn.train.run import check_compiler, checkpoint_dir, train

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
