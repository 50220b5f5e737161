"""The official IRN code's key scheme, shared by its three networks (:mod:`.irn`, :mod:`.conv`,
:mod:`.color`): ``operations.N.haar_weights`` (a Haar level), ``operations.0.conv_weights`` (the x3's
learnable downsampling or IRN-Color's colour transform), ``operations.N.F.conv1.weight`` (a coupling
block), and what :func:`irn.load` hands out for them (the fast CPU path)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn

from irn.nn.fast import FastIRN, fast_or_plain, return_freed_memory_promptly
from irn.nn.network import IRN, IRNConfig, build_network

HAAR_KEY = re.compile(r"^operations\.(\d+)\.haar_weights$")
BLOCK_KEY = re.compile(r"^operations\.(\d+)\.F\.conv1\.weight$")
LINEAR_KEY = "operations.0.conv_weights"  # the x3 downsampling or IRN-Color's colour transform
LICENCE = "Apache-2.0"
ORIGIN = "Xiao et al., Invertible Image Rescaling (ECCV 2020); github.com/pkuxmq/Invertible-Image-Rescaling"


def has_haar_levels(state: Mapping[str, Any]) -> bool:
    return any(HAAR_KEY.match(str(k)) for k in state)


def blocks_and_growth(state: Mapping[str, Tensor]) -> tuple[list[int], int]:
    """The operation indices of the coupling blocks, and their dense blocks' growth (32 when none)."""
    blocks = sorted(int(m.group(1)) for k in state if (m := BLOCK_KEY.match(str(k))))
    growth = int(state[f"operations.{blocks[0]}.F.conv1.weight"].shape[0]) if blocks else 32
    return blocks, growth


def linear_split(state: Mapping[str, Tensor]) -> tuple[int, int]:
    """(n, split) of a network with a learnable linear map: ``conv_weights`` is n x n, and the first
    coupling block's F produces ``split`` channels (3 when there is no block)."""
    weights = state[LINEAR_KEY]
    if weights.dim() != 2 or weights.shape[0] != weights.shape[1]:
        raise ValueError(f"{LINEAR_KEY} has shape {tuple(weights.shape)}, not a square matrix")
    blocks, _ = blocks_and_growth(state)
    split = int(state[f"operations.{blocks[0]}.F.conv5.weight"].shape[0]) if blocks else 3
    return int(weights.shape[0]), split


def is_colour_transform(state: Mapping[str, Any]) -> bool:
    """IRN-Color's layout: a 3 x 3 ``conv_weights`` (the colour transform) and couplings that split 1 / 2."""
    if LINEAR_KEY not in state:
        return False
    try:
        return linear_split(state) == (3, 1)
    except (ValueError, KeyError, AttributeError, IndexError):
        return False


def linear_blocks(state: Mapping[str, Tensor]) -> tuple[int, int]:
    """(number of coupling blocks, growth) after a linear map at ``operations.0``."""
    blocks, growth = blocks_and_growth(state)
    if blocks != list(range(1, len(blocks) + 1)):
        raise ValueError("the coupling blocks do not follow operations.0 one after another")
    return len(blocks), growth


def build_kind(kind: str) -> Callable[[IRNConfig], nn.Module]:
    """``build(config)`` of the architecture of IRNConfig ``kind``: refuses a config of another kind."""

    def build(config: IRNConfig) -> nn.Module:
        if config.kind != kind:
            raise ValueError(f"the config is of kind {config.kind!r}, not {kind!r}")
        return build_network(config)

    return build


def owns_kind(kind: str) -> Callable[[nn.Module], bool]:
    """``owns(module)``: an :class:`~irn.nn.network.IRN` (or its fast path) whose config is of ``kind``."""

    def owns(module: nn.Module) -> bool:
        return isinstance(module, IRN) and isinstance(module.config, IRNConfig) and module.config.kind == kind

    return owns


def fast_path(module: nn.Module) -> nn.Module:
    """The fast CPU inference path of an IRN (:func:`irn.nn.fast.fast_or_plain`; same weights, same
    outputs to fp32 rounding), with freed image buffers handed back to the system promptly."""
    model = fast_or_plain(module)  # type: ignore[arg-type]
    if isinstance(model, FastIRN):
        return_freed_memory_promptly()
    return model
