"""IRN, the paper's network: 1, 2 or 3 Haar levels (x2, x4, x8), each followed by its coupling blocks.

Official files: ``operations.N.haar_weights`` at each level's start, ``operations.N.F.conv1.weight``
... for the couplings; the blocks per level and the growth are read from the keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from irn.nn.network import IRN, IRNConfig
from irn.zoo.architecture import Architecture
from irn.zoo.archs._official import (
    HAAR_KEY,
    LICENCE,
    LINEAR_KEY,
    ORIGIN,
    blocks_and_growth,
    build_kind,
    fast_path,
    has_haar_levels,
    owns_kind,
)


def detect(state: Mapping[str, Any]) -> bool:
    """Haar levels and no learnable linear map at ``operations.0``."""
    return has_haar_levels(state) and LINEAR_KEY not in state


def infer_config(state: Mapping[str, Tensor]) -> IRNConfig:
    """Levels from the ``haar_weights`` keys, blocks per level from the coupling keys between them."""
    haar = sorted(int(m.group(1)) for k in state if (m := HAAR_KEY.match(str(k))))
    blocks, growth = blocks_and_growth(state)
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


ARCHITECTURE = Architecture(
    name="irn",
    title="an IRN (Haar levels: x2, x4, x8)",
    config_class=IRNConfig,
    detect=detect,
    infer_config=infer_config,
    build=build_kind("haar"),
    owns=owns_kind("haar"),
    latent=IRN.default_z,
    channels="RGB in; LR 3 channels (RGB, 1/s size), latent 3(s²-1) channels",
    keys="'operations.N.haar_weights'",
    origin=ORIGIN,
    licence=LICENCE,
    onnx=True,
    for_inference=fast_path,
)
