"""irn: Invertible Image Rescaling (Xiao et al., ECCV 2020) as a toolkit.

The package is layered; each layer imports only from the layers below it::

    irn.nn          blocks, networks, the fast inference path (irn.nn.fast)
    irn.imaging     image files, MATLAB-style resize, tiling
    irn.zoo         the registry of architectures, model files (pt, safetensors), models by name
                    (shipped, and pretrained ones downloaded on first use)
    irn.onnx.export ONNX export
    irn.api         the Python API on images (downscale_image, ...)
    irn.onnx        the torch-free runtime of an ONNX export (irn.onnx.runtime)
    irn.eval / irn.train / irn.datasets
    irn.experiments craft, decay, hybrid, chart
    irn.cli         the ``irn`` command

``import irn`` itself imports nothing heavy: the names below load their module (and torch)
on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from irn._version import __version__
from irn.errors import InputError, IRNError

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from irn.api import downscale_image, roundtrip_image, upscale_image
    from irn.nn.network import IRN, IRNColor, IRNConfig
    from irn.zoo import CheckpointError, load, save

#: public name -> the module that defines it
_EXPORTS = {
    "IRN": "irn.nn.network",
    "IRNConfig": "irn.nn.network",
    "IRNColor": "irn.nn.network",
    "CheckpointError": "irn.zoo",
    "load": "irn.zoo",
    "save": "irn.zoo",
    "downscale_image": "irn.api",
    "upscale_image": "irn.api",
    "roundtrip_image": "irn.api",
}

#: ``irn.<name>`` after a plain ``import irn``: the module it names (the older flat names
#: ``irn.metrics``, ``irn.io``, ... point at their place in the layered package)
_SUBMODULES = {
    "nn": "irn.nn",
    "fast": "irn.nn.fast",
    "imaging": "irn.imaging",
    "io": "irn.imaging.io",
    "resize": "irn.imaging.resize",
    "tiling": "irn.imaging.tiling",
    "zoo": "irn.zoo",
    "api": "irn.api",
    "eval": "irn.eval",
    "metrics": "irn.eval.metrics",
    "train": "irn.train",
    "config": "irn.train.config",
    "data": "irn.train.data",
    "training": "irn.train.module",
    "datasets": "irn.datasets",
    "download": "irn.datasets",  # its __init__ has every public name of the former download module
    "experiments": "irn.experiments",
    "craft": "irn.experiments.craft",
    "decay": "irn.experiments.decay",
    "hybrid": "irn.experiments.hybrid",
    "chart": "irn.experiments.chart",
    "plotting": "irn.experiments.plotting",
    "inference": "irn.nn.fast",
}

__all__ = [
    "IRN",
    "CheckpointError",
    "IRNColor",
    "IRNConfig",
    "IRNError",
    "InputError",
    "__version__",
    "downscale_image",
    "load",
    "roundtrip_image",
    "save",
    "upscale_image",
]


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(_SUBMODULES[name])
    raise AttributeError(f"module 'irn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_SUBMODULES})
