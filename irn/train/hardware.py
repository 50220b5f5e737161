"""What the training hardware decides: ``trainer.precision: auto`` and ``trainer.channels_last: auto``,
resolved at run time from the accelerator and the CPU's bf16 support (:func:`resolve_precision`,
:func:`resolve_channels_last`; ``irn train`` prints both at the start)."""

from __future__ import annotations

from pathlib import Path

import torch

from irn.train.config import TrainConfig


def resolved_accelerator(cfg: TrainConfig) -> str:
    """``trainer.accelerator`` with ``auto`` resolved as Lightning does: cuda, mps or cpu."""
    accelerator = cfg.trainer.accelerator
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    return "cuda" if accelerator == "gpu" else accelerator


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16), read at run time: machines
    with AVX2 only emulate bf16 and gain nothing from it."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for name in checks:
        probe = getattr(torch.cpu, name, None)
        if probe is not None:
            try:
                if probe():
                    return True
            except RuntimeError:  # pragma: no cover - a torch build without the probe's backend
                continue
    if any(hasattr(torch.cpu, name) for name in checks):
        return False
    try:  # an older torch without the probes: the kernel's CPU flags (Linux)
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_precision(cfg: TrainConfig) -> tuple[str, str]:
    """``trainer.precision`` as Lightning takes it, and why: ``auto`` is ``bf16-mixed`` on a GPU or CPU
    that computes bf16 natively (on the CPU about twice the steps per hour, learning as well per step:
    docs/performance.md), else ``32-true``. Other values are taken as they are. Validation, export and
    inference always run in fp32."""
    t = cfg.trainer
    if t.precision != "auto":
        return t.precision, "as configured"
    accelerator = resolved_accelerator(cfg)
    if accelerator == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False):
            return "bf16-mixed", f"auto: {torch.cuda.get_device_name(0)} computes bf16 natively"
        return "32-true", "auto: this GPU has no native bf16"
    if accelerator == "cpu":
        if cpu_has_native_bf16():
            return "bf16-mixed", "auto: this CPU computes bf16 natively (AVX512-BF16/AMX)"
        return "32-true", "auto: this CPU has no native bf16 (it would be emulated, no faster)"
    return "32-true", f"auto: fp32 on {accelerator}"


def resolve_channels_last(cfg: TrainConfig) -> tuple[bool, str]:
    """``trainer.channels_last`` and why: ``auto`` is on where it was measured faster, bf16-mixed
    training on a CPU (1.45x the steps per hour on an AVX512-BF16 CPU: docs/performance.md), and off
    elsewhere (on an AVX2-only CPU in fp32 it was slower; on a GPU it is left to the recipe)."""
    value = cfg.trainer.channels_last
    if value != "auto":
        return bool(value), "as configured"
    if resolved_accelerator(cfg) == "cpu" and resolve_precision(cfg)[0] == "bf16-mixed":
        return True, "auto: bf16 training on this CPU"
    return False, "auto: on for bf16 training on a CPU only"
