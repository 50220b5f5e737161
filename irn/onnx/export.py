"""ONNX export of any rescaler whose registry entry allows it (issue 20; IRN, x3, IRN-Color, and issue 30:
SAIN, T-IRN): ``DIR/encoder.onnx``, ``DIR/decoder.onnx`` and ``DIR/model.json``, run without torch by
:mod:`irn.onnx.runtime`.

- ``encoder.onnx``: input ``hr`` (B, 3, H, W) float32 in [0, 1], H and W multiples of the scale (the
  runtime pads as :meth:`irn.nn.network.Rescaler.encode` does) -> outputs ``lr`` (B, c, H/s, W/s) on
  8-bit levels (:meth:`~irn.nn.network.Rescaler.downscale`: SAIN's is its E-blocks' LR) and ``z``
  (B, latent, H/s, W/s).
- ``decoder.onnx``: inputs ``lr`` and ``z`` -> output ``hr`` (B, 3, s h, s w) clamped to [0, 1]
  (:meth:`~irn.nn.network.Rescaler.decode` then the clamp of ``upscale``). The latent is an input, so
  drawing it stays outside the graphs: the runtime draws it from ``model.json``'s ``latent``.
- Batch, height and width are dynamic.
- ``model.json``: the format, the architecture, scale, kind, channels, the recommended latent and its
  distribution (``latent``: ``{"distribution": "normal"}``, or SAIN's ``"gaussian_mixture"`` with the
  mixture's weights, means and standard deviations), the lossy LR formats the model is made for
  (``lr_formats``, :func:`irn.zoo.purpose.lr_formats`), the model card (the model's metadata) and the files.

The graphs are traced from the plain network (opset 18) with torch's ONNX exporter
(``torch.onnx.export(..., dynamo=True)``, which needs the ``onnx`` and ``onnxscript`` packages:
``pip install "irn[onnx]"``). An architecture whose entry says ``onnx=False`` (the CRM, a restorer) is
refused in one line with its ``onnx_reason`` (:func:`check_exportable`).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from irn._version import __version__
from irn.errors import IRNError
from irn.imaging.io import atomic_write, json_safe, json_text
from irn.nn.fast import FastIRN
from irn.nn.linear import RGB_TO_YUV
from irn.nn.network import Rescaler, build_network, quantize
from irn.zoo import architecture_of, lr_formats, restorer_of
from irn.zoo.registry import ARCHITECTURES

FORMAT = "irn-onnx"
FORMAT_VERSION = 1
OPSET = 18
FILES = {"encoder": "encoder.onnx", "decoder": "decoder.onnx", "model": "model.json"}


class _Encoder(nn.Module):
    def __init__(self, model: Rescaler) -> None:
        super().__init__()
        self.model = model

    def forward(self, hr: Tensor) -> tuple[Tensor, Tensor]:
        lr, z = self.model._encode_padded(hr)  # the network's own split (SAIN: its E-blocks' LR)
        return quantize(lr), z


class _Decoder(nn.Module):
    def __init__(self, model: Rescaler) -> None:
        super().__init__()
        self.model = model

    def forward(self, lr: Tensor, z: Tensor) -> Tensor:
        hr, _ = self.model(torch.cat((lr, z), 1), rev=True)
        return hr[:, : self.model.config.in_channels].clamp(0, 1)


def _plain(model: Rescaler) -> Rescaler:
    """The plain network of ``model`` (:func:`irn.load` returns the fast path, which shares its weights)."""
    if not isinstance(model, FastIRN):
        return model
    plain = build_network(model.config)
    plain.load_state_dict(model.state_dict())
    return plain


def _linear_algebra(sizes: set[int]) -> dict[Any, Any]:
    """ONNX translations of the two linear-algebra ops of the learnt linear maps (the x3 downsampling,
    IRN-Color's colour matrix), which torch's exporter lacks: ``slogdet`` from ONNX's ``Det``, and the
    inverse of an n x n matrix (n in ``sizes``, known at export) as its adjugate over its determinant,
    from the ``Det`` of each minor: standard ONNX operators only."""
    from onnxscript import opset18 as op

    def slogdet(x: Any) -> tuple[Any, Any]:
        d = op.Det(x)
        return op.Sign(d), op.Log(op.Abs(d))

    def inv_ex(x: Any) -> tuple[Any, Any]:
        (n,) = sizes
        det = op.Det(x)
        entries = []
        for row in range(n):  # inverse[row, col] = (-1)^(row+col) det(x without row col, column row) / det
            for col in range(n):
                keep_rows = op.Constant(value_ints=[k for k in range(n) if k != col])
                keep_cols = op.Constant(value_ints=[k for k in range(n) if k != row])
                minor = op.Gather(op.Gather(x, keep_rows, axis=0), keep_cols, axis=1)
                sign = op.CastLike(op.Constant(value_float=(-1.0) ** (row + col)), x)
                entries.append(op.Reshape(op.Div(op.Mul(sign, op.Det(minor)), det), op.Constant(value_ints=[1])))
        inverse = op.Reshape(op.Concat(*entries, axis=0), op.Constant(value_ints=[n, n]))
        return inverse, op.Constant(value_int=0)

    table: dict[Any, Any] = {torch.ops.aten.linalg_slogdet.default: slogdet}
    if len(sizes) == 1:
        table[torch.ops.aten.linalg_inv_ex.default] = inv_ex
    return table


def _onnx_bytes(
    module: nn.Module, args: tuple[Tensor, ...], names: dict[str, Any], table: dict[Any, Any] | None = None
) -> bytes:
    try:
        import onnx  # noqa: F401 - the exporter needs it; say so in one line
        import onnxscript  # noqa: F401
    except ImportError as exc:
        missing = exc.name or "onnx"
        raise IRNError(
            f"ONNX export needs the onnx and onnxscript packages ({missing} is missing): pip install 'irn[onnx]'"
        ) from None
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's notes on dims it renamed or merged, its progress lines
        program = torch.onnx.export(
            module,
            args,
            input_names=names["inputs"],
            output_names=names["outputs"],
            dynamic_shapes=names["shapes"],
            dynamo=True,
            opset_version=OPSET,
            verbose=False,
            custom_translation_table=table,
        )
    if program is None:  # pragma: no cover - dynamo=True always returns the program
        raise IRNError("torch.onnx.export returned no program")
    buffer = io.BytesIO()
    program.save(buffer)
    return buffer.getvalue()


def check_exportable(model: Rescaler, what: str = "the model") -> None:
    """Raise :class:`IRNError` (one line naming ``what``, the architecture and why) unless ``model``'s
    registry entry exports to ONNX."""
    arch = architecture_of(model)
    if not arch.onnx:
        exported = ", ".join(a.name for a in ARCHITECTURES if a.onnx)
        reason = f": {arch.onnx_reason}" if arch.onnx_reason else ""
        raise IRNError(f"{what}: {arch.title} does not export to ONNX{reason} (the architectures that do: {exported})")


def describe(model: Rescaler) -> dict[str, Any]:
    """The content of ``model.json`` for ``model``."""
    config = model.config
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "irn_version": __version__,
        "arch": architecture_of(model).name,
        "kind": config.kind,
        "scale": model.scale,
        "in_channels": config.in_channels,
        "lr_channels": model.lr_channels,
        "latent_channels": model.latent_channels,
        "recommended_z": model.recommended_z(),
        "latent": model.latent_distribution(),  # N(0, 1), or SAIN's mixture (numbers)
        "lr_formats": list(lr_formats(model)),
        "opset": OPSET,
        "files": {"encoder": FILES["encoder"], "decoder": FILES["decoder"]},
        "inputs": {"encoder": ["hr"], "decoder": ["lr", "z"]},
        "outputs": {"encoder": ["lr", "z"], "decoder": ["hr"]},
        "card": json_safe(dict(getattr(model, "metadata", None) or {})),
        # how `up` turns a grey file into the decoder's input (irn.nn.linear.rgb_to_luma)
        **({"luma": list(RGB_TO_YUV[0])} if config.kind == "color" else {}),
    }


def export_onnx(model: Rescaler, folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Write ``encoder.onnx``, ``decoder.onnx`` and ``model.json`` for ``model`` into ``folder``
    (each file atomically; ``model.json`` last, so a folder with it is complete). Returns model.json's
    content. A carried compression restoration module is not exported (it runs before the decoder,
    in torch): a note in the card says so. An architecture that does not export is refused
    (:func:`check_exportable`) before anything is written."""
    folder = Path(folder)
    check_exportable(model)
    plain = _plain(model).eval()
    s, c, zc = plain.scale, plain.lr_channels, plain.latent_channels
    batch = torch.export.Dim("batch", min=1, max=4096)
    h = torch.export.Dim("h", min=1, max=16384)
    w = torch.export.Dim("w", min=1, max=16384)
    hr_h, hr_w = (h, w) if s == 1 else (s * h, s * w)
    example_hr = torch.rand(2, plain.config.in_channels, 8 * s, 6 * s)
    sizes = {op.conv_weights.shape[0] for op in plain.modules() if hasattr(op, "conv_weights")}
    table = _linear_algebra(sizes) if sizes else None
    with torch.no_grad():
        lr, z = _Encoder(plain)(example_hr)
        encoder = _onnx_bytes(
            _Encoder(plain),
            (example_hr,),
            {"inputs": ["hr"], "outputs": ["lr", "z"], "shapes": {"hr": {0: batch, 2: hr_h, 3: hr_w}}},
            table,
        )
        decoder = _onnx_bytes(
            _Decoder(plain),
            (lr, z),
            {
                "inputs": ["lr", "z"],
                "outputs": ["hr"],
                "shapes": {"lr": {0: batch, 2: h, 3: w}, "z": {0: batch, 2: h, 3: w}},
            },
            table,
        )
    doc = describe(model)
    if restorer_of(model) is not None:
        doc["card"]["onnx_note"] = "the model's JPEG restoration module is not part of the ONNX export"
    assert lr.shape[1] == c and z.shape[1] == zc
    folder.mkdir(parents=True, exist_ok=True)
    # an earlier export's model.json goes first: a re-export cut short must not pair new and old graphs
    (folder / FILES["model"]).unlink(missing_ok=True)
    for name, data in (("encoder", encoder), ("decoder", decoder)):
        with atomic_write(folder / FILES[name]) as f:
            f.write(data)
    with atomic_write(folder / FILES["model"], "w") as f:
        f.write(json_text(doc) + "\n")
    return doc
