"""The one device rule of irn (:func:`resolve_device`): ``auto`` picks the best device present, other
names are checked against the machine, each mistake is one :class:`irn.InputError`."""

from __future__ import annotations

import torch

from irn.errors import InputError


def resolve_device(name: str | torch.device, what: str = "device") -> str:
    """``auto`` -> cuda if available, else mps if available, else cpu; other names are checked."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"{what} {name!r}: not a device name (cpu, cuda, cuda:N, mps, auto)", param=what) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{what} {name}: CUDA is not available on this machine", param=what)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"{what} {name}: only {torch.cuda.device_count()} CUDA device(s) present", param=what)
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"{what} {name}: MPS is not available on this machine", param=what)
    elif device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"{what} {name}: unsupported device type {device.type!r}", param=what)
    return str(device)
