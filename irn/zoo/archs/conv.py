"""The official x3: one learnable downsampling M (an s² x s² matrix, any integer s >= 2, the paper's
x3: 9 x 9) in place of the Haar levels, then one stage of couplings that split 3 / 3(s²-1).

Official files: ``operations.0.conv_weights`` of shape (s², s²), ``operations.N.F.conv1.weight`` ...
(``use_ConvDownsampling: True`` in the official config)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from irn.nn.network import IRN, IRNConfig
from irn.zoo.architecture import Architecture
from irn.zoo.archs._official import (
    LICENCE,
    LINEAR_KEY,
    ORIGIN,
    build_kind,
    fast_path,
    is_colour_transform,
    linear_blocks,
    linear_split,
    owns_kind,
)


def detect(state: Mapping[str, Any]) -> bool:
    """A learnable linear map at ``operations.0`` that is not IRN-Color's colour transform (a map of no
    known shape is claimed here, and refused by :func:`infer_config` naming its shape)."""
    return LINEAR_KEY in state and not is_colour_transform(state)


def infer_config(state: Mapping[str, Tensor]) -> IRNConfig:
    n, split = linear_split(state)
    blocks, growth = linear_blocks(state)
    scale = math.isqrt(n)
    if scale * scale != n or scale < 2:
        raise ValueError(f"{LINEAR_KEY} is {n}x{n}: neither a colour transform (3x3) nor s²xs² downsampling")
    return IRNConfig(kind="conv", scale=scale, blocks_per_level=(blocks,), in_channels=split, growth=growth)


ARCHITECTURE = Architecture(
    name="conv",
    title="an IRN with learnable downsampling (the official x3)",
    config_class=IRNConfig,
    detect=detect,
    infer_config=infer_config,
    build=build_kind("conv"),
    owns=owns_kind("conv"),
    latent=IRN.default_z,
    channels="RGB in; LR 3 channels (RGB, 1/s size), latent 3(s²-1) channels",
    keys=f"'{LINEAR_KEY}' (s² x s²)",
    origin=ORIGIN,
    licence=LICENCE,
    onnx=True,
    for_inference=fast_path,
)
