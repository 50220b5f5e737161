"""The compression restoration module (CRM) of the official IRN-Compression: an RRDB network
(``RRDBNet(in 3, out 3, nf 64, nb 8, gc 32)``) that restores a JPEG-decoded LR image before an IRN's
inverse pass. It is not a rescaler: :func:`irn.load` returns it, the commands refuse it alone, and an
IRN file can carry one (``irn.zoo.attach_restorer``).

Official files: ``conv_first.weight``, ``RRDB_trunk.N.RDBk.convj.weight``, ``trunk_conv``, ``conv_last``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from irn.nn.restoration import CompressionRestorer, RestorerConfig
from irn.zoo.architecture import Architecture
from irn.zoo.archs._official import LICENCE, ORIGIN

RRDB_KEY = re.compile(r"^RRDB_trunk\.(\d+)\.RDB1\.conv1\.weight$")


def detect(state: Mapping[str, Any]) -> bool:
    """Whether a state dict is an official CRM (an RRDB network)."""
    return "conv_first.weight" in state and any(RRDB_KEY.match(str(k)) for k in state)


def infer_config(state: Mapping[str, Tensor]) -> RestorerConfig:
    """The RRDB network's size, from an official CRM state dict's shapes."""
    blocks = sorted(int(m.group(1)) for k in state if (m := RRDB_KEY.match(str(k))))
    first, last = state["conv_first.weight"], state["conv_last.weight"]
    return RestorerConfig(
        in_channels=int(first.shape[1]),
        out_channels=int(last.shape[0]),
        features=int(first.shape[0]),
        blocks=len(blocks),
        growth=int(state["RRDB_trunk.0.RDB1.conv1.weight"].shape[0]),
    )


def build(config: RestorerConfig) -> nn.Module:
    if not isinstance(config, RestorerConfig):
        raise ValueError(f"a CRM needs a RestorerConfig, got {type(config).__name__}")
    return CompressionRestorer(config)


def owns(module: nn.Module) -> bool:
    return isinstance(module, CompressionRestorer)


ARCHITECTURE = Architecture(
    name="crm",
    title="a compression restoration module (CRM, the RRDB network of IRN-Compression)",
    config_class=RestorerConfig,
    detect=detect,
    infer_config=infer_config,
    build=build,
    owns=owns,
    role="restorer",
    latent="none",
    channels="a JPEG-decoded RGB LR in, the restored RGB LR out (same size)",
    keys="'conv_first.weight' and 'RRDB_trunk.N.RDB1.conv1.weight'",
    origin=ORIGIN + " (IRN-Compression)",
    licence=LICENCE,
    onnx_reason="a restorer has no encoder and decoder to export (export the IRN that carries it; its ONNX "
    "export leaves the restorer out)",
)
