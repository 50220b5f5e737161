"""The zoo: model files, the registry of architectures, and models by name.

- :mod:`.architecture`: what one architecture declares (:class:`Architecture`); :mod:`.archs`: one
  module per architecture (``irn``: Haar x2/x4/x8, ``conv``: the official x3, ``color``: IRN-Color,
  ``crm``: the compression restoration module); :mod:`.registry`: the one list of them, and which
  entry claims an official state dict or owns a module
- :mod:`.checkpoint`: our format (pt, safetensors, with its ``"arch"``), the official state dicts,
  :func:`load` (the fast path, for inference), :func:`load_irn`, :func:`load_checkpoint` (the plain
  module, for training), :func:`save`
- :mod:`.catalogue`: every model name (shipped and downloadable; plain data, torch-free), the cache
  folder; :mod:`.pretrained`: :func:`resolve` (a name or path -> a file) and the verified download of
  pretrained files; :mod:`.transfer`: the one resumable downloader (also :mod:`irn.datasets`')
- :mod:`.purpose`: :func:`lr_formats`, the one rule for what a model's LR is made to be stored as
  (PNG, JPEG, WebP)
- :mod:`.device`: :func:`resolve_device`, the one device rule

Every public name is importable from here (``from irn.zoo import load``); each loads its module on
first use, so ``import irn.zoo.catalogue`` (``irn models``, ``irn data``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from irn.zoo.architecture import Architecture, fit_state, strip_prefix
    from irn.zoo.catalogue import (
        CATALOGUE,
        SHIPPED,
        Pretrained,
        Remote,
        cache_dir,
        cached_path,
        checkpoint_dirs,
        models_dir,
    )
    from irn.zoo.checkpoint import (
        FORMAT,
        FORMAT_VERSION,
        RESTORER,
        SAFETENSORS_SUFFIX,
        attach_restorer,
        infer_config,
        infer_restorer_config,
        is_restorer_state,
        is_training_checkpoint,
        load,
        load_checkpoint,
        load_file,
        load_irn,
        load_module,
        read_hub_weights,
        restorer_of,
        save,
    )
    from irn.zoo.device import resolve_device
    from irn.zoo.errors import CheckpointError
    from irn.zoo.pretrained import PretrainedChecksumError, PretrainedDownloadError, fetch, git_blob_sha1, resolve
    from irn.zoo.purpose import lr_formats, trained_for_jpeg
    from irn.zoo.registry import ARCHITECTURES, architecture_of, get_architecture

#: public name -> the module that defines it
_EXPORTS = {
    "Architecture": "irn.zoo.architecture",
    "fit_state": "irn.zoo.architecture",
    "strip_prefix": "irn.zoo.architecture",
    "CATALOGUE": "irn.zoo.catalogue",
    "SHIPPED": "irn.zoo.catalogue",
    "Pretrained": "irn.zoo.catalogue",
    "Remote": "irn.zoo.catalogue",
    "cache_dir": "irn.zoo.catalogue",
    "cached_path": "irn.zoo.catalogue",
    "checkpoint_dirs": "irn.zoo.catalogue",
    "models_dir": "irn.zoo.catalogue",
    "FORMAT": "irn.zoo.checkpoint",
    "FORMAT_VERSION": "irn.zoo.checkpoint",
    "RESTORER": "irn.zoo.checkpoint",
    "SAFETENSORS_SUFFIX": "irn.zoo.checkpoint",
    "attach_restorer": "irn.zoo.checkpoint",
    "infer_config": "irn.zoo.checkpoint",
    "infer_restorer_config": "irn.zoo.checkpoint",
    "is_restorer_state": "irn.zoo.checkpoint",
    "is_training_checkpoint": "irn.zoo.checkpoint",
    "load": "irn.zoo.checkpoint",
    "load_checkpoint": "irn.zoo.checkpoint",
    "load_file": "irn.zoo.checkpoint",
    "load_irn": "irn.zoo.checkpoint",
    "load_module": "irn.zoo.checkpoint",
    "read_hub_weights": "irn.zoo.checkpoint",
    "restorer_of": "irn.zoo.checkpoint",
    "save": "irn.zoo.checkpoint",
    "resolve_device": "irn.zoo.device",
    "CheckpointError": "irn.zoo.errors",
    "PretrainedChecksumError": "irn.zoo.pretrained",
    "PretrainedDownloadError": "irn.zoo.pretrained",
    "fetch": "irn.zoo.pretrained",
    "git_blob_sha1": "irn.zoo.pretrained",
    "resolve": "irn.zoo.pretrained",
    "lr_formats": "irn.zoo.purpose",
    "trained_for_jpeg": "irn.zoo.purpose",
    "ARCHITECTURES": "irn.zoo.registry",
    "architecture_of": "irn.zoo.registry",
    "get_architecture": "irn.zoo.registry",
}

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "CATALOGUE",
    "CheckpointError",
    "FORMAT",
    "FORMAT_VERSION",
    "Pretrained",
    "PretrainedChecksumError",
    "PretrainedDownloadError",
    "RESTORER",
    "Remote",
    "SAFETENSORS_SUFFIX",
    "SHIPPED",
    "architecture_of",
    "attach_restorer",
    "cache_dir",
    "cached_path",
    "checkpoint_dirs",
    "fetch",
    "git_blob_sha1",
    "fit_state",
    "get_architecture",
    "infer_config",
    "infer_restorer_config",
    "is_restorer_state",
    "is_training_checkpoint",
    "load",
    "load_checkpoint",
    "load_file",
    "load_irn",
    "load_module",
    "lr_formats",
    "models_dir",
    "read_hub_weights",
    "resolve",
    "resolve_device",
    "restorer_of",
    "save",
    "strip_prefix",
    "trained_for_jpeg",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'irn.zoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
