"""ONNX deployment in one package: the exporter and the torch-free runtime.

- :mod:`irn.onnx.runtime`: an export (``irn export MODEL --format onnx -o DIR``) run with onnxruntime,
  numpy and Pillow alone (the ``irn-onnx`` command, ``python -m irn.onnx``); torch is never imported.
- :mod:`irn.onnx.export`: the exporter (torch's ONNX exporter; ``pip install "irn[onnx]"``). It is a
  layer below the runtime and this package's ``__init__``: import it by its name
  (``from irn.onnx.export import export_onnx``), which keeps ``import irn.onnx`` torch-free.

The runtime's public names are importable from here (``from irn import onnx; onnx.load("x2_onnx")``).
"""

from irn.onnx.runtime import (
    FORMAT,
    LOSSY,
    SUPPORTED_VERSION,
    OnnxIRN,
    OnnxModelError,
    ZMode,
    downscale_file,
    load,
    main,
    pad,
    pad_amounts,
    quantize,
    resize_alpha,
    roundtrip_file,
    upscale_file,
)

__all__ = [
    "FORMAT",
    "LOSSY",
    "SUPPORTED_VERSION",
    "OnnxIRN",
    "OnnxModelError",
    "ZMode",
    "downscale_file",
    "load",
    "main",
    "pad",
    "pad_amounts",
    "quantize",
    "resize_alpha",
    "roundtrip_file",
    "upscale_file",
]
