"""Model files: our self-describing format (pt and safetensors), the official state dicts, and
:func:`load` / :func:`save` on the registry of architectures (:mod:`irn.zoo.registry`).

Our format is a dict saved with ``torch.save``::

    {"format": "irn", "format_version": 1, "irn_version": "0.1.0", "arch": "irn",
     "config": IRNConfig.to_dict(), "state_dict": {...}, "metadata": {...}}

``arch`` names the registry entry (files written before it existed have none: a ``"module":
"restorer"`` file is the CRM, else the config's ``kind`` says irn, conv or color). Everything is
loaded with ``torch.load(weights_only=True)``: a file that carries code (an arbitrary pickle) is
refused, never executed.

Official files (``torch.save(net.state_dict())`` from the official code, optionally under a
``module.`` prefix or a ``state_dict`` key) are recognised by their keys: exactly one registry entry
claims them, and it infers the architecture's config from the keys and shapes. :func:`load` returns
any architecture; :func:`load_irn` (what the commands use) and :func:`load_checkpoint` take
rescalers only and refuse a restorer (the CRM) in one line.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from irn._version import __version__
from irn.errors import InputError, IRNError
from irn.imaging.io import atomic_write, json_text
from irn.nn.network import IRNConfig, Rescaler
from irn.nn.restoration import CompressionRestorer
from irn.zoo.architecture import Architecture, fit_state, strip_prefix
from irn.zoo.archs import crm as crm_arch
from irn.zoo.catalogue import get as catalogue_entry
from irn.zoo.device import resolve_device
from irn.zoo.errors import CheckpointError
from irn.zoo.pretrained import resolve
from irn.zoo.registry import architecture_of, detect, get_architecture

FORMAT = "irn"
FORMAT_VERSION = 1
RESTORER = "restorer"  # our format's "module" value for a CRM (what files before "arch" said)
SAFETENSORS_SUFFIX = ".safetensors"
#: the architecture of our files written before the "arch" field: IRNConfig.kind -> registry name
LEGACY_KINDS = {"haar": "irn", "conv": "conv", "color": "color"}


def _is_safetensors(path: Path) -> bool:
    """The safetensors layout: an 8-byte little-endian header length, then a JSON header (``{``)."""
    with path.open("rb") as f:
        head = f.read(9)
    if path.suffix == SAFETENSORS_SUFFIX:  # torch.load cannot read a file of that name anyway
        return True
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 2 <= int.from_bytes(head[:8], "little") <= path.stat().st_size - 8


def _read_safetensors(path: Path) -> dict[str, Any]:
    """A safetensors model file as the dict of our ``.pt`` format. Only the JSON header and raw tensor
    bytes are read (nothing can execute); a damaged file is one :class:`CheckpointError`."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iterator
    except (SafetensorError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise CheckpointError(f"{path}: damaged safetensors file ({reason})") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: a safetensors file without irn's header (format 'irn', the architecture); "
            "irn reads the safetensors files that irn.save writes"
        )
    try:
        obj: dict[str, Any] = {
            "format": FORMAT,
            "format_version": int(header.get("format_version", "")),
            "irn_version": header.get("irn_version"),
            "config": json.loads(header["config"]),
            "metadata": json.loads(header.get("metadata", "{}")),
        }
        if "arch" in header:
            obj["arch"] = header["arch"]
        if header.get("module") == RESTORER:
            obj["module"] = RESTORER
        prefix = "restorer."
        obj["state_dict"] = {k: v for k, v in tensors.items() if not k.startswith(prefix)}
        if "restorer_config" in header:
            obj["restorer"] = {
                "config": json.loads(header["restorer_config"]),
                "state_dict": {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)},
            }
            if "restorer_arch" in header:
                obj["restorer"]["arch"] = header["restorer_arch"]
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: damaged irn header in the safetensors file ({type(exc).__name__}: {exc})"
        ) from None
    return obj


def _read(path: Path) -> Any:
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")
    if _is_safetensors(path):
        return _read_safetensors(path)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the outcome says it in one line
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" in str(exc).lower():  # "Unsupported global", "unsupported GLOBAL os.x ... is blocked"
            raise CheckpointError(
                f"{path}: refused: the file holds Python objects beyond tensors and plain "
                f"containers, and loading it could run code (torch.load weights_only=True)"
            ) from None
        raise CheckpointError(f"{path}: not a readable checkpoint{_looks_like(_head(path))}") from None
    except Exception as exc:  # noqa: BLE001 - torch.load fails in many ways on a bad file (IndexError, KeyError, ...)
        head = _head(path)
        if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):  # torch's zip or legacy pickle
            raise CheckpointError(f"{path}: not a readable checkpoint{_looks_like(head)}") from None
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint, truncated or corrupt ({msg})") from None


_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"BM": "a BMP image",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive",
}


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(8)


def _looks_like(head: bytes) -> str:
    """ " (it is a PNG image)" for a file whose first bytes say what it is, else ", not a PyTorch file"."""
    kind = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
    return f" (it is {kind})" if kind else ", not a PyTorch file"


# ---------------------------------------------------------------- compatibility: the official IRN family
def infer_config(state: Mapping[str, Tensor]) -> IRNConfig:
    """Architecture of an official IRN state dict (Haar, x3 or IRN-Color), from its keys and shapes
    (the registry entry that claims it infers it; ``ValueError`` when none of the IRN family does)."""
    state = strip_prefix(state)
    try:
        entry = detect(state, "state dict")
    except CheckpointError as exc:
        raise ValueError(str(exc)) from None
    if entry.config_class is not IRNConfig:
        raise ValueError(f"the state dict is {entry.title}, not an IRN")
    return entry.infer_config(state)  # type: ignore[no-any-return]


is_restorer_state = crm_arch.detect
infer_restorer_config = crm_arch.infer_config


def attach_restorer(model: Rescaler, restorer: CompressionRestorer | None) -> Rescaler:
    """Let ``model`` carry its compression restoration module: :func:`restorer_of` returns it and
    :func:`save` writes it into the same file. It is not a submodule (the IRN's state dict keeps the
    official keys); it follows the model's device in :func:`load`."""
    model.__dict__["restorer"] = restorer
    return model


def restorer_of(model: object) -> CompressionRestorer | None:
    """The compression restoration module ``model`` carries (an IRN trained for JPEG LR images), or None."""
    value = getattr(model, "__dict__", {}).get("restorer")
    return value if isinstance(value, CompressionRestorer) else None


def _training_checkpoint(obj: Mapping[str, Any]) -> bool:
    return "pytorch-lightning_version" in obj or {"loops", "global_step", "optimizer_states"} <= set(obj)


def is_training_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a Lightning checkpoint (``irn train``'s last.ckpt / best.ckpt), not a model file."""
    try:
        obj = _read(Path(path))
    except CheckpointError:
        return False
    return isinstance(obj, Mapping) and _training_checkpoint(obj)


# ---------------------------------------------------------------- loading
@dataclass
class Loaded:
    """What a file holds: its registry entry, the plain module (CPU, weights loaded) and its metadata."""

    arch: Architecture
    module: nn.Module
    metadata: dict[str, Any]


def _config_from(path: Path, arch: Architecture, config: Any, what: str = "architecture") -> Any:
    try:
        return arch.config_class.from_dict(dict(config))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad {what} config ({exc})") from None


def _build(path: Path, arch: Architecture, config: Any) -> nn.Module:
    try:
        return arch.build(config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad architecture config for {arch.name!r} ({exc})") from None


def _arch_of_our_file(path: Path, obj: Mapping[str, Any]) -> Architecture:
    """The ``"arch"`` field, or for a file written before it: the CRM, else the config's kind."""
    name = obj.get("arch")
    if name is None:
        if obj.get("module") == RESTORER:
            name = crm_arch.ARCHITECTURE.name
        else:
            config = obj.get("config")
            kind = config.get("kind", "haar") if isinstance(config, Mapping) else "haar"
            name = LEGACY_KINDS.get(str(kind), LEGACY_KINDS["haar"])  # an unknown kind: the config check says so
    if not isinstance(name, str):
        raise CheckpointError(f"{path}: damaged irn checkpoint (arch {name!r} is not a name)")
    return get_architecture(name, path)


def _load_ours(path: Path, obj: Mapping[str, Any]) -> Loaded:
    version = obj.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path}: damaged irn checkpoint (format_version {version!r} is not an integer)")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is newer than this irn supports "
            f"({FORMAT_VERSION}); upgrade irn"
        )
    arch = _arch_of_our_file(path, obj)
    if "config" not in obj:
        raise CheckpointError(f"{path}: bad architecture config ('config' is missing)")
    config = _config_from(path, arch, obj["config"])
    state = obj.get("state_dict")
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: checkpoint has no 'state_dict'")
    meta = {"source": "irn", "irn_version": obj.get("irn_version"), **dict(obj.get("metadata") or {})}
    module = fit_state(path, _build(path, arch, config), state)
    carried = obj.get("restorer")
    if carried is not None and arch.role == "rescaler":
        if not isinstance(carried, Mapping) or not isinstance(carried.get("state_dict"), Mapping):
            raise CheckpointError(f"{path}: damaged 'restorer' entry (needs its config and state_dict)")
        crm_entry = get_architecture(str(carried.get("arch", crm_arch.ARCHITECTURE.name)), path)
        crm_config = _config_from(path, crm_entry, carried.get("config") or {}, "restorer")
        crm = fit_state(path, _build(path, crm_entry, crm_config), carried["state_dict"])
        attach_restorer(module, crm.eval())  # type: ignore[arg-type]
    return Loaded(arch, module, meta)


def _load_official(path: Path, obj: Mapping[str, Any]) -> Loaded:
    inner = obj.get("state_dict")
    state = strip_prefix(inner if isinstance(inner, Mapping) else obj)
    arch = detect(state, path)
    try:
        module, _ = arch.from_state(state)
    except (ValueError, KeyError, AttributeError, IndexError, TypeError) as exc:
        what = "CRM" if arch.role == "restorer" else "IRN"
        raise CheckpointError(f"{path}: cannot infer the {what} architecture from its keys ({exc})") from None
    return Loaded(arch, fit_state(path, module, arch.prepare_state(state)), {"source": "official"})


def load_file(path: str | os.PathLike[str]) -> Loaded:
    """Any model file irn reads (ours, pt or safetensors; an official state dict), on the CPU, with its
    registry entry and metadata. Raises :class:`CheckpointError` with one line naming the file."""
    path = Path(path)
    obj = _read(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: not an IRN checkpoint (holds a {type(obj).__name__}, not a dict)")
    if obj.get("format") == FORMAT:
        return _load_ours(path, obj)
    if _training_checkpoint(obj):
        raise CheckpointError(
            f"{path}: a training checkpoint (step {obj.get('global_step', '?')} of irn train), not a model file; "
            f"export it first: irn export {path} -o model.pt"
        )
    return _load_official(path, obj)


def load_module(path: str | os.PathLike[str]) -> tuple[Rescaler | CompressionRestorer, dict[str, Any]]:
    """Load a model of any registered architecture (ours or official) from ``path``, on the CPU, with
    its metadata."""
    loaded = load_file(path)
    return loaded.module, loaded.metadata  # type: ignore[return-value]


def _refuse_restorer(path: str | os.PathLike[str], arch: Architecture, extra: str = "") -> None:
    if arch.role != "rescaler":
        raise CheckpointError(f"{path}: {arch.title}, not an IRN model{extra}")


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[Rescaler, dict[str, Any]]:
    """Load a rescaling model (ours or official) from ``path``; returns the plain model (on CPU) and its
    metadata. A restorer (the CRM) is refused: it is not an IRN (:func:`load_module` reads both)."""
    loaded = load_file(path)
    _refuse_restorer(path, loaded.arch)
    return loaded.module, loaded.metadata  # type: ignore[return-value]


def purpose_of_name(name_or_path: str | os.PathLike[str]) -> str | None:
    """The catalogue purpose (``"lossless"``, ``"JPEG"``, ``"WebP"``, ``"colour"``) of a model name, as
    :func:`irn.zoo.pretrained.resolve` reads names; None for a path."""
    entry = catalogue_entry(str(name_or_path))
    return entry.purpose if entry is not None else None


def _ready(loaded: Loaded, target: str | None, purpose: str | None = None) -> nn.Module:
    """The module of ``loaded`` for inference: eval mode, no gradients, its metadata (with ``purpose``, a
    model name's catalogue purpose, unless the card names one), on ``target``."""
    plain, meta = loaded.module, loaded.metadata
    if purpose is not None:
        meta.setdefault("purpose", purpose)
    plain.metadata = meta  # type: ignore[assignment]
    plain.eval().requires_grad_(False)
    crm = restorer_of(plain)
    if crm is not None:
        crm.eval().requires_grad_(False)
        if target is not None:
            crm.to(target)
    model = loaded.arch.for_inference(plain).eval()
    if crm is not None:
        attach_restorer(model, crm)  # type: ignore[arg-type]
    model.metadata = meta  # type: ignore[assignment]
    if target is not None:
        model.to(target)
    return model


def load(
    name_or_path: str | os.PathLike[str], device: str | torch.device | None = None
) -> Rescaler | CompressionRestorer:
    """A model by name (shipped: ``"x2"``, ``"x4"``, ...; pretrained, downloaded on first use:
    ``"sain-x2-jpeg"``, ...; ``irn models`` lists them) or any model file, ready for inference.

    Every architecture of the registry loads (``irn models --architectures``). A rescaler (an IRN) is
    in eval mode with gradients off; for the IRN family it is the fast inference path
    (:class:`irn.nn.fast.FastIRN`, same weights, same outputs to fp32 rounding), which runs on a CPU
    and hands other devices and autograd to the plain flow, so ``irn.load("x4").downscale(x)`` is as
    fast on a CPU as ``irn.downscale_image`` (which also tiles large images). A compression
    restoration module (the official CRM, or one saved with :func:`save`) gives the
    :class:`~irn.nn.restoration.CompressionRestorer` (``module(x)`` / ``module.restore(x)``).
    :func:`load_irn` takes rescalers only; training takes the plain module (:func:`load_checkpoint`).

    A model loaded by name carries its catalogue purpose as ``metadata["purpose"]`` (``"lossless"``,
    ``"JPEG"``, ``"WebP"``, ``"colour"``: what its LR is made to be stored as, :mod:`irn.zoo.purpose`).

    ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"`` (the best present).
    Raises :class:`CheckpointError` with one line naming the file (or the name) and the problem, and
    :class:`irn.InputError` for a device that is not there.
    """
    target = resolve_device(device, "device") if device is not None else None  # refused before any download
    path = resolve(name_or_path)
    return _ready(load_file(path), target, purpose_of_name(name_or_path))  # type: ignore[return-value]


def load_irn(name_or_path: str | os.PathLike[str], device: str | torch.device | None = None) -> Rescaler:
    """:func:`load` for the places that need a rescaling model (the commands): a restorer (the CRM) is
    refused in one line naming the file."""
    target = resolve_device(device, "device") if device is not None else None
    path = resolve(name_or_path)
    loaded = load_file(path)
    _refuse_restorer(path, loaded.arch, "; it restores a JPEG-decoded LR image for an IRN")
    return _ready(loaded, target, purpose_of_name(name_or_path))  # type: ignore[return-value]


# ---------------------------------------------------------------- saving
def save(
    model: Rescaler | CompressionRestorer,
    path: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
    *,
    format: Literal["pt", "safetensors"] | None = None,  # noqa: A002 - the name users expect
) -> Path:
    """Write ``model`` (any registered architecture: an IRN, a compression restoration module, ...) in
    our format, atomically (temporary file, then rename), with its registry name as ``"arch"``.

    ``format``: ``"pt"`` (a ``torch.save`` dict of tensors and plain values, read back with
    ``weights_only=True``) or ``"safetensors"`` (the weights as safetensors, the architecture, the
    metadata and a carried CRM's config as JSON strings in its header); default: from the suffix
    (``.safetensors``, else pt)."""
    path = Path(path)
    chosen = format or ("safetensors" if path.suffix == SAFETENSORS_SUFFIX else "pt")
    if chosen not in ("pt", "safetensors"):
        raise InputError(f"format must be 'pt' or 'safetensors', got {format!r}", param="format")
    if chosen == "pt" and path.suffix == SAFETENSORS_SUFFIX:
        raise InputError(f"{path}: a pt file may not be named {SAFETENSORS_SUFFIX} (use .pt)", param="format")
    arch = architecture_of(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    if chosen == "safetensors":
        return _save_safetensors(model, arch, path, metadata)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "irn_version": __version__,
        "arch": arch.name,
        **({"module": RESTORER} if arch.role == "restorer" else {}),  # what an irn before "arch" reads
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}),
    }
    crm = restorer_of(model)
    if crm is not None:  # an IRN trained for JPEG LR images carries its restoration module
        payload["restorer"] = {
            "arch": architecture_of(crm).name,
            "config": crm.config.to_dict(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in crm.state_dict().items()},
        }
    with atomic_write(path) as f:
        torch.save(payload, f)
    return path


def _save_safetensors(
    model: Rescaler | CompressionRestorer, arch: Architecture, path: Path, metadata: Mapping[str, Any] | None
) -> Path:
    from safetensors.torch import save as save_bytes

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "irn_version": __version__,
        "arch": arch.name,
        "module": RESTORER if arch.role == "restorer" else "irn",
        "config": json_text(model.config.to_dict(), indent=None),
        "metadata": json_text(dict(metadata or {}), indent=None),
    }
    crm = restorer_of(model)
    if crm is not None:
        header["restorer_arch"] = architecture_of(crm).name
        header["restorer_config"] = json_text(crm.config.to_dict(), indent=None)
        tensors |= {f"restorer.{k}": v.detach().cpu().contiguous().clone() for k, v in crm.state_dict().items()}
    data = save_bytes(tensors, metadata=header)
    with atomic_write(path) as f:
        f.write(data)
    return path


def read_hub_weights(path: Path, url: str, needed_for: str, what: str) -> Any:
    """A torchvision weights file from the torch hub cache (``$TORCH_HOME/hub/checkpoints/``), read with
    ``weights_only=True``: the one reader of the backbones irn never downloads (LPIPS's AlexNet, IRN+'s
    VGG19). A missing or unreadable file is one :class:`IRNError` naming it and where it comes from."""
    if not path.is_file():
        raise IRNError(
            f"{needed_for} needs the {what} ImageNet weights at {path} (not found); download {url} and put it "
            f"there (or set TORCH_HOME to a folder whose hub/checkpoints/ holds {path.name})"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        reason = " ".join(str(exc).split())[:200]
        if "Weights only load failed" in reason:  # torch's long advice about untrusted pickles
            reason = "not a weights file"
        raise IRNError(f"{path}: cannot read the {what} weights ({type(exc).__name__}: {reason})") from None
