"""IRN-Color (the official ``InvGreyNet``): invertible decolorization. A learnable 3 x 3 colour
transform (official start RGB -> YUV), then couplings that split 1 / 2; the "LR" is the grey image
(scale 1) and the latent the two colour channels.

Official files: ``operations.0.conv_weights`` of shape (3, 3) and couplings whose F makes 1 channel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from irn.nn.network import IRNColor, IRNConfig
from irn.zoo.architecture import Architecture
from irn.zoo.archs._official import (
    LICENCE,
    LINEAR_KEY,
    ORIGIN,
    build_kind,
    fast_path,
    is_colour_transform,
    linear_blocks,
    owns_kind,
)


def detect(state: Mapping[str, Any]) -> bool:
    return is_colour_transform(state)


def infer_config(state: Mapping[str, Tensor]) -> IRNConfig:
    blocks, growth = linear_blocks(state)
    return IRNConfig(kind="color", scale=1, blocks_per_level=(blocks,), in_channels=3, growth=growth)


ARCHITECTURE = Architecture(
    name="color",
    title="an IRN-Color model (invertible decolorization)",
    config_class=IRNConfig,
    detect=detect,
    infer_config=infer_config,
    build=build_kind("color"),
    owns=owns_kind("color"),
    # "zero": the official IRN-Color trains and tests with z = 0 (see IRNColor.default_z)
    latent=IRNColor.default_z,
    channels="RGB in; grey 1 channel (same size), latent 2 channels",
    keys=f"'{LINEAR_KEY}' (3 x 3) with couplings that split 1",
    origin=ORIGIN,
    licence=LICENCE,
    onnx=True,
    for_inference=fast_path,
)
