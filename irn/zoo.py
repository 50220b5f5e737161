"""Checkpoints: our self-describing format, the official IRN state dicts, and shipped models.

Our format is a dict saved with ``torch.save``::

    {"format": "irn", "format_version": 1, "irn_version": "0.1.0",
     "config": IRNConfig.to_dict(), "state_dict": {...}, "metadata": {...}}

Everything is loaded with ``torch.load(weights_only=True)``: a file that carries
code (an arbitrary pickle) is refused, never executed.

Official files (``torch.save(net.state_dict())`` from the paper's code, keys
``operations.N.haar_weights`` / ``operations.N.F.conv1.weight`` ..., optionally under a
``module.`` prefix) are recognised by their keys; the architecture is inferred from them: Haar
levels (x2/x4/x8), the x3 model's learnable downsampling (``operations.0.conv_weights`` of shape
(s², s²)) and IRN-Color's colour transform (``operations.0.conv_weights`` (3, 3), couplings split 1).
The compression restoration module of the official IRN-Compression (an RRDB network, keys
``conv_first.weight``, ``RRDB_trunk.N.RDBk.convj.weight``, ...) loads as a
:class:`irn.nn.restoration.CompressionRestorer`; our format marks it ``"module": "restorer"``.
:func:`load` returns either kind; :func:`load_irn` (what the commands use) and
:func:`load_checkpoint` take IRN models only and refuse a CRM in one line.

Shipped models (``irn.load("x2")``) are looked up, in order, in ``$IRN_CHECKPOINT_DIR``,
in ``irn/checkpoints/`` inside an installed wheel, and in ``checkpoints/`` beside the
package in a source checkout.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from irn._version import __version__
from irn.errors import InputError, IRNError
from irn.imaging.io import atomic_write, json_text
from irn.nn.fast import FastIRN, fast_or_plain, return_freed_memory_promptly
from irn.nn.network import IRN, IRNConfig, build_network
from irn.nn.restoration import CompressionRestorer, RestorerConfig

FORMAT = "irn"
FORMAT_VERSION = 1

#: Shipped model names and their file names.
SHIPPED: dict[str, str] = {
    "x2": "irn_x2.pt",
    "x4": "irn_x4.pt",
    "color": "irn_color.pt",
    "x2-jpeg": "irn_x2_jpeg.pt",  # the x2 for an LR stored as a JPEG (issue 18)
}

_HAAR_KEY = re.compile(r"^operations\.(\d+)\.haar_weights$")
_BLOCK_KEY = re.compile(r"^operations\.(\d+)\.F\.conv1\.weight$")
_LINEAR_KEY = "operations.0.conv_weights"  # the x3 downsampling or IRN-Color's colour transform
_RRDB_KEY = re.compile(r"^RRDB_trunk\.(\d+)\.RDB1\.conv1\.weight$")
RESTORER = "restorer"  # our format's "module" value for a CRM


class CheckpointError(IRNError):
    """A file that cannot be loaded as an IRN model."""


def checkpoint_dirs() -> list[Path]:
    """Folders searched for shipped models, in order."""
    here = Path(__file__).resolve().parent
    dirs = []
    if os.environ.get("IRN_CHECKPOINT_DIR"):
        dirs.append(Path(os.environ["IRN_CHECKPOINT_DIR"]))
    dirs += [here / "checkpoints", here.parent / "checkpoints"]
    return dirs


def resolve(name_or_path: str | os.PathLike[str]) -> Path:
    """Turn a shipped-model name (``"x2"``) or a path into an existing file path."""
    text = str(name_or_path)
    if text in SHIPPED:
        for d in checkpoint_dirs():
            candidate = d / SHIPPED[text]
            if candidate.is_file():
                return candidate
        searched = ", ".join(str(d) for d in checkpoint_dirs())
        raise CheckpointError(f"shipped model {text!r} ({SHIPPED[text]}) not found in: {searched}")
    path = Path(text).expanduser()
    if not path.exists():
        names = ", ".join(SHIPPED)
        raise CheckpointError(f"{path}: no such checkpoint file (shipped models: {names})")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, expected a checkpoint file")
    return path


SAFETENSORS_SUFFIX = ".safetensors"


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
        if header.get("module") == RESTORER:
            obj["module"] = RESTORER
        prefix = "restorer."
        obj["state_dict"] = {k: v for k, v in tensors.items() if not k.startswith(prefix)}
        if "restorer_config" in header:
            obj["restorer"] = {
                "config": json.loads(header["restorer_config"]),
                "state_dict": {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)},
            }
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


def _strip_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    keys = list(state)
    if keys and all(k.startswith("module.") for k in keys):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _blocks_and_growth(state: Mapping[str, Tensor]) -> tuple[list[int], int]:
    blocks = sorted(int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k)))
    growth = int(state[f"operations.{blocks[0]}.F.conv1.weight"].shape[0]) if blocks else 32
    return blocks, growth


def _infer_linear(state: Mapping[str, Tensor]) -> IRNConfig:
    """The x3 model (M of shape (s², s²)) or IRN-Color (a (3, 3) colour matrix, couplings split 1)."""
    weights = state[_LINEAR_KEY]
    if weights.dim() != 2 or weights.shape[0] != weights.shape[1]:
        raise ValueError(f"{_LINEAR_KEY} has shape {tuple(weights.shape)}, not a square matrix")
    n = int(weights.shape[0])
    blocks, growth = _blocks_and_growth(state)
    if blocks != list(range(1, len(blocks) + 1)):
        raise ValueError("the coupling blocks do not follow operations.0 one after another")
    split = int(state[f"operations.{blocks[0]}.F.conv5.weight"].shape[0]) if blocks else 3
    scale = math.isqrt(n)
    if n == 3 and split == 1:
        return IRNConfig(kind="color", scale=1, blocks_per_level=(len(blocks),), in_channels=3, growth=growth)
    if scale * scale != n or scale < 2:
        raise ValueError(f"{_LINEAR_KEY} is {n}x{n}: neither a colour transform (3x3) nor s²xs² downsampling")
    return IRNConfig(kind="conv", scale=scale, blocks_per_level=(len(blocks),), in_channels=split, growth=growth)


def infer_config(state: Mapping[str, Tensor]) -> IRNConfig:
    """Architecture of an official state dict, from its keys and shapes."""
    if _LINEAR_KEY in state:
        return _infer_linear(state)
    haar = sorted(int(m.group(1)) for k in state if (m := _HAAR_KEY.match(k)))
    blocks, growth = _blocks_and_growth(state)
    if not haar:
        raise ValueError("no 'operations.N.haar_weights' key")
    if haar[0] != 0:
        raise ValueError("operations.0 is not a Haar level")
    bounds = haar + [max(blocks + haar) + 1]
    per_level = [sum(1 for b in blocks if bounds[i] < b < bounds[i + 1]) for i in range(len(haar))]
    if len(haar) not in (1, 2, 3):
        raise ValueError(f"{len(haar)} Haar levels; IRN has 1, 2 or 3 (scale 2, 4, 8)")
    in_channels = state["operations.0.haar_weights"].shape[0] // 4
    return IRNConfig(scale=2 ** len(haar), blocks_per_level=tuple(per_level), in_channels=in_channels, growth=growth)


def is_restorer_state(state: Mapping[str, Any]) -> bool:
    """Whether a state dict is an official CRM (an RRDB network)."""
    return "conv_first.weight" in state and any(_RRDB_KEY.match(str(k)) for k in state)


def infer_restorer_config(state: Mapping[str, Tensor]) -> RestorerConfig:
    """The RRDB network's size, from an official CRM state dict's shapes."""
    blocks = sorted(int(m.group(1)) for k in state if (m := _RRDB_KEY.match(k)))
    first, last = state["conv_first.weight"], state["conv_last.weight"]
    return RestorerConfig(
        in_channels=int(first.shape[1]),
        out_channels=int(last.shape[0]),
        features=int(first.shape[0]),
        blocks=len(blocks),
        growth=int(state["RRDB_trunk.0.RDB1.conv1.weight"].shape[0]),
    )


def _build(path: Path, config: IRNConfig, state: Mapping[str, Tensor]) -> IRN:
    return _fit_state(path, build_network(config), state)  # type: ignore[return-value]


def _fit_state(path: Path, model: torch.nn.Module, state: Mapping[str, Any]) -> torch.nn.Module:
    """``model`` with ``state`` loaded, after checking every key and shape (one line naming the file)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise CheckpointError(f"{path}: weights do not fit the architecture: keys {', '.join(parts)}")
    for k, v in expected.items():
        if not isinstance(state[k], Tensor) or state[k].shape != v.shape:
            got = tuple(state[k].shape) if isinstance(state[k], Tensor) else type(state[k]).__name__
            raise CheckpointError(
                f"{path}: weights do not fit the architecture: {k} has shape {got}, expected {tuple(v.shape)}"
            )
    model.load_state_dict(state)
    return model


def attach_restorer(model: IRN, restorer: CompressionRestorer | None) -> IRN:
    """Let ``model`` carry its compression restoration module: :func:`restorer_of` returns it and
    :func:`save` writes it into the same file. It is not a submodule (the IRN's state dict keeps the
    official keys); it follows the model's device in :func:`load`."""
    model.__dict__["restorer"] = restorer
    return model


def restorer_of(model: object) -> CompressionRestorer | None:
    """The compression restoration module ``model`` carries (an IRN trained for JPEG LR images), or None."""
    value = getattr(model, "__dict__", {}).get("restorer")
    return value if isinstance(value, CompressionRestorer) else None


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[IRN, dict[str, Any]]:
    """Load an IRN (ours or official) from ``path``; returns the model (on CPU) and its metadata.
    A compression restoration module is refused: it is not an IRN (:func:`load_module` reads both)."""
    module, meta = load_module(path)
    if isinstance(module, CompressionRestorer):
        raise CheckpointError(
            f"{path}: a compression restoration module (CRM, the RRDB network of IRN-Compression), not an IRN model"
        )
    return module, meta


def _training_checkpoint(obj: Mapping[str, Any]) -> bool:
    return "pytorch-lightning_version" in obj or {"loops", "global_step", "optimizer_states"} <= set(obj)


def is_training_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a Lightning checkpoint (``irn train``'s last.ckpt / best.ckpt), not a model file."""
    try:
        obj = _read(Path(path))
    except CheckpointError:
        return False
    return isinstance(obj, Mapping) and _training_checkpoint(obj)


def load_module(path: str | os.PathLike[str]) -> tuple[IRN | CompressionRestorer, dict[str, Any]]:
    """Load an IRN or a compression restoration module (ours or official) from ``path``, on the CPU,
    with its metadata."""
    path = Path(path)
    obj = _read(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: not an IRN checkpoint (holds a {type(obj).__name__}, not a dict)")
    if obj.get("format") == FORMAT:
        version = obj.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise CheckpointError(f"{path}: damaged irn checkpoint (format_version {version!r} is not an integer)")
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: checkpoint format version {version!r} is newer than this irn supports "
                f"({FORMAT_VERSION}); upgrade irn"
            )
        restorer = obj.get("module") == RESTORER
        try:
            config = (RestorerConfig if restorer else IRNConfig).from_dict(dict(obj["config"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: bad architecture config ({exc})") from None
        state = obj.get("state_dict")
        if not isinstance(state, Mapping):
            raise CheckpointError(f"{path}: checkpoint has no 'state_dict'")
        meta = {"source": "irn", "irn_version": obj.get("irn_version"), **dict(obj.get("metadata") or {})}
        if restorer:
            return _fit_state(path, CompressionRestorer(config), state), meta  # type: ignore[arg-type,return-value]
        model = _build(path, config, state)  # type: ignore[arg-type]
        carried = obj.get("restorer")
        if carried is not None:
            if not isinstance(carried, Mapping) or not isinstance(carried.get("state_dict"), Mapping):
                raise CheckpointError(f"{path}: damaged 'restorer' entry (needs its config and state_dict)")
            try:
                crm_config = RestorerConfig.from_dict(dict(carried.get("config") or {}))
            except (TypeError, ValueError) as exc:
                raise CheckpointError(f"{path}: bad restorer config ({exc})") from None
            crm = _fit_state(path, CompressionRestorer(crm_config), carried["state_dict"])
            attach_restorer(model, crm.eval())  # type: ignore[arg-type]
        return model, meta
    if _training_checkpoint(obj):
        raise CheckpointError(
            f"{path}: a training checkpoint (step {obj.get('global_step', '?')} of irn train), not a model file; "
            f"export it first: irn export {path} -o model.pt"
        )
    state = obj.get("state_dict", obj) if "state_dict" in obj and isinstance(obj.get("state_dict"), Mapping) else obj
    state = _strip_prefix(state)
    if is_restorer_state(state):
        try:
            restorer_config = infer_restorer_config(state)
        except (ValueError, KeyError, AttributeError, IndexError) as exc:
            raise CheckpointError(f"{path}: cannot infer the CRM architecture from its keys ({exc})") from None
        return _fit_state(path, CompressionRestorer(restorer_config), state), {"source": "official"}  # type: ignore[return-value]
    if not any(_HAAR_KEY.match(str(k)) for k in state) and _LINEAR_KEY not in state:
        raise CheckpointError(
            f"{path}: not an IRN checkpoint (no irn metadata and no official 'operations.N.haar_weights', "
            f"'{_LINEAR_KEY}' or CRM 'conv_first.weight' keys)"
        )
    try:
        config = infer_config(state)
    except (ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{path}: cannot infer the IRN architecture from its keys ({exc})") from None
    return _build(path, config, state), {"source": "official"}


def save(
    model: IRN | CompressionRestorer,
    path: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
    *,
    format: Literal["pt", "safetensors"] | None = None,  # noqa: A002 - the name users expect
) -> Path:
    """Write ``model`` (an IRN or a compression restoration module) in our format, atomically
    (temporary file, then rename).

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
    path.parent.mkdir(parents=True, exist_ok=True)
    if chosen == "safetensors":
        return _save_safetensors(model, path, metadata)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "irn_version": __version__,
        **({"module": RESTORER} if isinstance(model, CompressionRestorer) else {}),
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}),
    }
    crm = restorer_of(model)
    if crm is not None:  # an IRN trained for JPEG LR images carries its restoration module
        payload["restorer"] = {
            "config": crm.config.to_dict(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in crm.state_dict().items()},
        }
    with atomic_write(path) as f:
        torch.save(payload, f)
    return path


def _save_safetensors(model: IRN | CompressionRestorer, path: Path, metadata: Mapping[str, Any] | None) -> Path:
    from safetensors.torch import save as save_bytes

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "irn_version": __version__,
        "module": RESTORER if isinstance(model, CompressionRestorer) else "irn",
        "config": json_text(model.config.to_dict(), indent=None),
        "metadata": json_text(dict(metadata or {}), indent=None),
    }
    crm = restorer_of(model)
    if crm is not None:
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


def load(name_or_path: str | os.PathLike[str], device: str | torch.device | None = None) -> IRN | CompressionRestorer:
    """A shipped model by name (``"x2"``, ``"x4"``) or any checkpoint file, ready for inference.

    An IRN file gives an IRN (below); a compression restoration module (the official CRM, or one
    saved with :func:`save`) gives the :class:`~irn.nn.restoration.CompressionRestorer`, in eval mode
    with gradients off (``module(x)`` / ``module.restore(x)``). :func:`load_irn` takes IRN files only.

    The model is an :class:`~irn.nn.network.IRN` in eval mode with gradients off; it is the fast
    inference path (:class:`irn.nn.fast.FastIRN`, same weights, same outputs to fp32 rounding),
    which runs on a CPU and hands other devices and autograd to the plain flow, so
    ``irn.load("x4").downscale(x)`` is as fast on a CPU as ``irn.downscale_image`` (which also
    tiles large images). Training takes the plain module (:func:`load_checkpoint`).

    ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"`` (the best present).
    Raises :class:`CheckpointError` with one line naming the file and the problem, and
    :class:`irn.InputError` for a device that is not there.
    """
    path = resolve(name_or_path)
    target = resolve_device(device, "device") if device is not None else None
    plain, meta = load_module(path)
    if isinstance(plain, CompressionRestorer):
        plain.metadata = meta  # type: ignore[assignment]
        plain.eval().requires_grad_(False)
        return plain.to(target) if target is not None else plain
    plain.metadata = meta  # type: ignore[assignment]
    plain.eval().requires_grad_(False)
    crm = restorer_of(plain)
    if crm is not None:
        crm.eval().requires_grad_(False)
        if target is not None:
            crm.to(target)
    model = fast_or_plain(plain).eval()
    attach_restorer(model, crm)
    if isinstance(model, FastIRN):
        return_freed_memory_promptly()
    model.metadata = meta  # type: ignore[assignment]
    if target is not None:
        model.to(target)
    return model


def load_irn(name_or_path: str | os.PathLike[str], device: str | torch.device | None = None) -> IRN:
    """:func:`load` for the places that need an IRN model (the commands): a compression restoration
    module is refused in one line naming the file."""
    model = load(name_or_path, device)
    if isinstance(model, CompressionRestorer):
        raise CheckpointError(
            f"{resolve(name_or_path)}: a compression restoration module (CRM), not an IRN model; "
            "it restores a JPEG-decoded LR image for an IRN"
        )
    return model
