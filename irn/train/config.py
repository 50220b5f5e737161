"""Typed training configuration: dataclasses whose fields match the YAML files one to one.

A config file has the sections ``model``, ``data``, ``loss``, ``optim`` and ``trainer``;
every key must be a field of its section (unknown keys are errors). Command-line overrides
are dotted (``--trainer.max_steps=100``, ``--data.train_dir=photos``); their values are
parsed as YAML scalars/lists (``--model.blocks_per_level=[1]``).

Relative paths in a config (data folders, ``trainer.run_dir``, ``model.init_from``) are
resolved against the current working directory, not against the config file.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from irn.errors import IRNError


class ConfigError(IRNError):
    """A bad configuration (unknown key, wrong type, missing folder...): one-line message."""


@dataclass
class ModelConfig:
    """The network (see :class:`irn.nn.network.IRNConfig`)."""

    #: haar (the paper's IRN, scale 2, 4 or 8), conv (the official x3: one learnable downsampling, any
    #: scale >= 2) or color (IRN-Color, invertible decolorization: scale 1, the "LR" is the grey image)
    kind: Literal["haar", "conv", "color"] = "haar"
    scale: int = 2
    #: coupling blocks per Haar level (one entry for kinds conv and color); empty = 8 per level (the paper)
    blocks_per_level: list[int] = field(default_factory=list)
    growth: int = 32
    clamp: float = 1.0
    #: starting log-scale s of the coupling blocks (Eq. 2), in (-clamp, clamp): one value for every
    #: block, or one per Haar level ([0.0, 0.9] for x4); 0 = the official identity start. s near
    #: clamp damps the latent z on the way back (each block divides the z branch by exp(s)), so
    #: sampled-z decoding is close to z = 0 decoding from the first step. Levels filled by
    #: init_from keep their trained weights.
    init_log_scale: float | list[float] = 0.0
    #: optional shipped model name (x2, x4, ...) or irn.save / official checkpoint whose weights start the run
    #: (fine-tuning)
    init_from: str | None = None
    #: also train a compression restoration module (IRN-Compression's CRM, an RRDB network: nf 64,
    #: nb 8, gc 32) that restores the JPEG LR before the inverse pass; needs loss.jpeg_quality
    restorer: bool = False


@dataclass
class DataConfig:
    """Training crops from a folder of HR images, validation on a folder of HR images."""

    train_dir: str = "datasets/DIV2K/DIV2K_train_HR"
    #: HR validation images (modcropped to the scale); null = no validation
    val_dir: str | None = "datasets/Set5/HR"
    #: HR patch side (a multiple of the scale); the LR patch is patch_size / scale
    patch_size: int = 144
    #: batch per device; effective batch = batch_size x devices x num_nodes
    batch_size: int = 16
    num_workers: int = 4
    #: keep decoded training images in memory as uint8
    cache: bool = True
    #: random flips and 90-degree rotations
    augment: bool = True
    #: validate on at most this many images (sorted by name); null = all
    val_max_images: int | None = None


@dataclass
class LossConfig:
    """L = lambda_fit * L_fit + lambda_rec * L_rec + lambda_latent * L_latent (paper Eq. 5-9)."""

    #: weight of ||y - bicubic_down(x)||^2; null = scale^2 (the paper: 4, 16, 64)
    lambda_fit: float | None = None
    lambda_rec: float = 1.0
    lambda_latent: float = 1.0
    #: Charbonnier epsilon: sqrt(d^2 + eps) (official code: 1e-6)
    charbonnier_eps: float = 1e-6
    #: fraction of each batch decoded with sampled z in the reconstruction term; the rest
    #: uses z = 0 (the paper: 1.0, all sampled)
    rec_sample_fraction: float = 1.0
    #: standard deviation of the sampled z at the end of the ramp (paper: 1.0)
    rec_temperature: float = 1.0
    #: the sampled z's temperature ramps linearly from 0 to rec_temperature over these steps
    rec_temperature_ramp_steps: int = 0
    #: std of Gaussian noise added to y before quantisation (0 = off)
    y_noise_std: float = 0.0
    #: store the LR as a real JPEG (Pillow) inside the training step, with a straight-through gradient
    #: (IRN-Compression): a quality 1-100, or [low, high] for a random quality per batch; null = off.
    #: Validation then scores the reconstruction from the JPEG LR at the quality (the mean of a range)
    jpeg_quality: int | list[int] | None = None
    #: weight of sum((CRM(jpeg(y)) - Q(y))^2), the restoration module's own term (model.restorer)
    lambda_restore: float = 1.0
    #: IRN+ (perceptual stage): weight of the L1 distance of VGG19 conv5_4 features of the reconstruction
    #: and the HR, per image summed over the features as the reconstruction term (needs the VGG19
    #: ImageNet weights in the torch hub cache); 0 = off (official IRN+: 0.01)
    lambda_feature: float = 0.0
    #: IRN+: weight of the adversarial term against the VGG-style discriminator (vanilla GAN); 0 = off
    #: (official IRN+: 1, with lambda_rec 0.01)
    lambda_gan: float = 0.0
    #: IRN+: train only the discriminator for this many steps: the IRN does not move (its terms are off
    #: and its learning rate is 0) until then (official D_init_iters: 5000)
    gan_warmup_steps: int = 0


@dataclass
class OptimConfig:
    """Adam with a step schedule (paper: lr 2e-4, halved at 100k/200k/300k/400k)."""

    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 1e-5
    milestones: list[int] = field(default_factory=lambda: [100000, 200000, 300000, 400000])
    gamma: float = 0.5
    #: linear learning-rate warm-up from 0 over these steps (paper: 0)
    warmup_steps: int = 0
    #: decay of an exponential moving average of the network's weights, updated after every optimiser
    #: step (e.g. 0.999: an average over about the last 1000 steps); validation, the best checkpoint and
    #: irn export then use the average. null = off (the paper's)
    ema_decay: float | None = None
    #: IRN+: the discriminator's Adam (official: lr 1e-4, betas 0.9 / 0.99, no weight decay)
    lr_discriminator: float = 1e-4
    betas_discriminator: list[float] = field(default_factory=lambda: [0.9, 0.99])


@dataclass
class TrainerConfig:
    """Run length, hardware, logging and checkpoints (passed to ``lightning.Trainer``)."""

    run_dir: str = "runs/x2"
    max_steps: int = 500000
    #: wall-clock limit "DD:HH:MM:SS" of the whole run (a resumed run counts its earlier launches); null = none
    max_time: str | None = None
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    #: "auto" (bf16-mixed on a GPU or CPU with native bf16, else 32-true; printed at the start), "32-true",
    #: "bf16-mixed", "16-mixed"; validation, export and inference always run in fp32
    precision: str = "auto"
    gradient_clip_val: float | None = 10.0
    val_every_n_steps: int = 5000
    checkpoint_every_n_steps: int = 1000
    #: also write `last` at least this often (minutes); null = steps only
    checkpoint_every_minutes: float | None = None
    log_every_n_steps: int = 50
    seed: int = 0
    #: stop after this many steps in a row with a non-finite loss or gradient (each one is skipped)
    max_nonfinite_steps: int = 20
    #: z used for the "best" checkpoint's metric: val/psnr_y_z0 or val/psnr_y_sample (colour models:
    #: val/psnr_rgb_z0 or val/psnr_rgb_sample, the restored colour image on RGB)
    monitor: Literal["val/psnr_y_z0", "val/psnr_y_sample", "val/psnr_rgb_z0", "val/psnr_rgb_sample"] = "val/psnr_y_z0"
    #: torch CPU threads (null = torch's default)
    threads: int | None = None
    #: NHWC tensors and weights: true, false, or "auto" (on for bf16-mixed training on a CPU, where it was
    #: 1.45x the steps per hour; off elsewhere; printed at the start)
    channels_last: bool | Literal["auto"] = "auto"
    #: torch.compile the flow of the training step: null (off), default, reduce-overhead (+ CUDA graphs),
    #: max-autotune (+ kernel autotuning and CUDA graphs)
    compile: Literal["default", "reduce-overhead", "max-autotune"] | None = None
    progress_bar: bool = True
    deterministic: bool = False


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def lambda_fit(self) -> float:
        lf = self.loss.lambda_fit
        return float(self.model.scale**2 if lf is None else lf)


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "trainer": TrainerConfig,
}


def _check_type(where: str, value: Any, annotation: Any) -> Any:
    """Validate (and lightly coerce) ``value`` against a field annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in args:
            if arg is type(None):
                if value is None:
                    return None
                continue
            try:
                return _check_type(where, value, arg)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: expected {_name(annotation)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if origin is list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_type(f"{where}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads "5e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {annotation}")  # pragma: no cover


def field_help(cls: type) -> dict[str, str]:
    """One help line per field of a config section: its ``#:`` comment, type in YAML words and default."""
    import inspect
    import json
    import re

    docs: dict[str, str] = {}
    pending: list[str] = []
    try:
        source = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):  # no source (frozen or zipped install): types and defaults only
        source = []
    for line in source:
        text = line.strip()
        if text.startswith("#:"):
            pending.append(text[2:].strip())
            continue
        match = re.match(r"(\w+)\s*:", text)
        if match and pending:
            docs[match.group(1)] = " ".join(pending)
        pending = []
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
        doc = docs.get(f.name)
        out[f.name] = f"{doc.rstrip('.') + '. ' if doc else ''}{_name(hints[f.name])}; default {json.dumps(default)}"
    return out


def _name(annotation: Any) -> str:
    """A field type in YAML words: ``int | None`` -> "an integer or null"."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_name(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is list:
        return f"a list of {_name(args[0]).removeprefix('an ').removeprefix('a ')}s"
    names = {type(None): "null", bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    return names.get(annotation, str(annotation))


def _build_section(name: str, values: Any) -> Any:
    cls = SECTIONS[name]
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"section '{name}' must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown key '{name}.{key}' (known: {', '.join(sorted(known))})")
    kwargs = {k: _check_type(f"{name}.{k}", v, hints[k]) for k, v in values.items()}
    return cls(**kwargs)


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"--trainer.max_steps=100"`` -> ("trainer", "max_steps", 100)."""
    body = text[2:] if text.startswith("--") else text
    if "=" not in body:
        raise ConfigError(f"override {text!r} must look like --section.key=value")
    key, raw = body.split("=", 1)
    if key.count(".") != 1:
        raise ConfigError(f"override {text!r} must look like --section.key=value")
    section, name = key.split(".")
    if section not in SECTIONS:
        raise ConfigError(f"unknown section '{section}' in override {text!r} (known: {', '.join(SECTIONS)})")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return section, name, value


def config_from_dict(raw: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a nested dict plus dotted overrides."""
    if not isinstance(raw, dict):
        raise ConfigError("a config must be a mapping of sections (model, data, loss, optim, trainer)")
    merged: dict[str, dict[str, Any]] = {}
    for section, values in raw.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown section '{section}' (known: {', '.join(SECTIONS)})")
        if values is not None and not isinstance(values, dict):
            raise ConfigError(f"section '{section}' must be a mapping, got {values!r}")
        merged[section] = dict(values or {})
    for text in overrides:
        section, name, value = parse_override(text)
        merged.setdefault(section, {})[name] = value
    cfg = TrainConfig(**{name: _build_section(name, merged.get(name)) for name in SECTIONS})
    validate(cfg)
    return cfg


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a YAML config file and apply dotted overrides; raises :class:`ConfigError`."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a config file")
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a YAML config (not UTF-8 text)") from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML ({first})") from None
    try:
        return config_from_dict(raw, overrides)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def validate(cfg: TrainConfig) -> None:
    """Checks that do not touch the file system."""
    m, d, lo, o, t = cfg.model, cfg.data, cfg.loss, cfg.optim, cfg.trainer
    if m.kind == "haar" and m.scale not in (2, 4, 8):
        hint = " (an x3 model is model.kind conv)" if m.scale == 3 else ""
        raise ConfigError(f"model.scale must be 2, 4 or 8 for model.kind haar, got {m.scale}{hint}")
    if m.kind == "conv" and m.scale < 2:
        raise ConfigError(f"model.scale must be >= 2 for model.kind conv, got {m.scale}")
    if m.kind == "color" and m.scale != 1:
        raise ConfigError(f"model.scale must be 1 for model.kind color (grey image of the same size), got {m.scale}")
    colour_monitor = t.monitor.startswith("val/psnr_rgb")
    if colour_monitor != (m.kind == "color"):
        wanted = "val/psnr_rgb_z0 or val/psnr_rgb_sample" if m.kind == "color" else "val/psnr_y_z0 or val/psnr_y_sample"
        raise ConfigError(f"trainer.monitor {t.monitor} is not a figure of a model.kind {m.kind} run: use {wanted}")
    levels = {2: 1, 4: 2, 8: 3}[m.scale] if m.kind == "haar" else 1
    if m.blocks_per_level and len(m.blocks_per_level) != levels:
        raise ConfigError(
            f"model.blocks_per_level needs {levels} entries for scale {m.scale}, got {m.blocks_per_level}"
        )
    if any(n < 1 for n in m.blocks_per_level):
        raise ConfigError(f"model.blocks_per_level entries must be >= 1, got {m.blocks_per_level}")
    if m.growth < 1:
        raise ConfigError(f"model.growth must be >= 1, got {m.growth}")
    if m.clamp <= 0:
        raise ConfigError(f"model.clamp must be > 0, got {m.clamp}")
    scales = m.init_log_scale if isinstance(m.init_log_scale, list) else [m.init_log_scale]
    if isinstance(m.init_log_scale, list) and len(scales) != levels:
        raise ConfigError(
            f"model.init_log_scale needs one value or {levels} (one per Haar level) for scale {m.scale}, "
            f"got {len(scales)}"
        )
    if not all(abs(v) < m.clamp for v in scales):
        raise ConfigError(
            f"model.init_log_scale must be in (-clamp, clamp) = (-{m.clamp}, {m.clamp}), got {m.init_log_scale}"
        )
    if d.patch_size <= 0 or d.patch_size % m.scale:
        raise ConfigError(f"data.patch_size {d.patch_size} is not a positive multiple of model.scale {m.scale}")
    if d.batch_size < 1:
        raise ConfigError(f"data.batch_size must be >= 1, got {d.batch_size}")
    if d.num_workers < 0:
        raise ConfigError(f"data.num_workers must be >= 0, got {d.num_workers}")
    if d.val_max_images is not None and d.val_max_images < 1:
        raise ConfigError(f"data.val_max_images must be >= 1 or null, got {d.val_max_images}")
    if not 0.0 <= lo.rec_sample_fraction <= 1.0:
        raise ConfigError(f"loss.rec_sample_fraction must be in [0, 1], got {lo.rec_sample_fraction}")
    weights = {"lambda_fit": lo.lambda_fit, "lambda_rec": lo.lambda_rec, "lambda_latent": lo.lambda_latent}
    for name, weight in weights.items():
        if weight is not None and weight < 0:
            raise ConfigError(f"loss.{name} must be >= 0, got {weight}")
    q = lo.jpeg_quality
    qualities = q if isinstance(q, list) else ([] if q is None else [q])
    if q is not None and (
        not 1 <= len(qualities) <= 2 or not all(1 <= v <= 100 for v in qualities) or qualities != sorted(qualities)
    ):
        raise ConfigError(f"loss.jpeg_quality must be a quality 1-100 or [low, high] within 1-100, got {q}")
    if m.restorer and q is None:
        raise ConfigError("model.restorer trains a restoration module for JPEG LR images: set loss.jpeg_quality")
    if m.restorer and m.kind == "color":
        raise ConfigError("model.restorer is for rescaling models, not model.kind color")
    for key in ("lambda_restore", "lambda_feature", "lambda_gan"):
        if getattr(lo, key) < 0:
            raise ConfigError(f"loss.{key} must be >= 0, got {getattr(lo, key)}")
    if lo.gan_warmup_steps < 0:
        raise ConfigError(f"loss.gan_warmup_steps must be >= 0, got {lo.gan_warmup_steps}")
    if (lo.lambda_feature > 0 or lo.lambda_gan > 0) and m.kind == "color":
        raise ConfigError(
            "loss.lambda_feature and loss.lambda_gan (IRN+) are for rescaling models, not model.kind color"
        )
    if o.lr_discriminator <= 0 or len(o.betas_discriminator) != 2 or not all(0 <= b < 1 for b in o.betas_discriminator):
        raise ConfigError("optim.lr_discriminator must be > 0 and optim.betas_discriminator two numbers in [0, 1)")
    if lo.charbonnier_eps < 0 or lo.y_noise_std < 0 or lo.rec_temperature < 0:
        raise ConfigError("loss.charbonnier_eps, loss.y_noise_std and loss.rec_temperature must be >= 0")
    if len(o.betas) != 2:
        raise ConfigError(f"optim.betas needs two numbers, got {o.betas}")
    if o.lr <= 0:
        raise ConfigError(f"optim.lr must be > 0, got {o.lr}")
    if not all(0.0 <= b < 1.0 for b in o.betas):
        raise ConfigError(f"optim.betas must be in [0, 1), got {o.betas}")
    if o.ema_decay is not None and not 0 < o.ema_decay < 1:
        raise ConfigError(f"optim.ema_decay must be in (0, 1) (e.g. 0.999), or null for no average, got {o.ema_decay}")
    if o.ema_decay is not None and t.precision.endswith("-true") and t.precision not in ("32-true", "64-true"):
        raise ConfigError(
            f"optim.ema_decay needs full-precision weights: with trainer.precision {t.precision} the average's "
            "small steps round away (use bf16-mixed or 16-mixed)"
        )
    if o.ema_decay is not None and m.restorer:
        raise ConfigError("optim.ema_decay averages the network's weights only: not with model.restorer (the CRM)")
    if o.gamma <= 0:
        raise ConfigError(f"optim.gamma must be > 0 (the lr is multiplied by it at each milestone), got {o.gamma}")
    if o.weight_decay < 0 or o.warmup_steps < 0 or lo.rec_temperature_ramp_steps < 0:
        raise ConfigError("optim.weight_decay, optim.warmup_steps and loss.rec_temperature_ramp_steps must be >= 0")
    if t.max_steps < 1:
        raise ConfigError(f"trainer.max_steps must be >= 1, got {t.max_steps}")
    if t.threads is not None and t.threads < 1:
        raise ConfigError(f"trainer.threads must be >= 1 or null, got {t.threads}")
    if t.checkpoint_every_minutes is not None and t.checkpoint_every_minutes <= 0:
        raise ConfigError(f"trainer.checkpoint_every_minutes must be > 0 or null, got {t.checkpoint_every_minutes}")
    for key in ("val_every_n_steps", "checkpoint_every_n_steps", "log_every_n_steps", "max_nonfinite_steps"):
        if getattr(t, key) < 1:
            raise ConfigError(f"trainer.{key} must be >= 1, got {getattr(t, key)}")


def dump_config(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
