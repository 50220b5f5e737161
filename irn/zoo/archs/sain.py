"""SAIN (Yang et al., AAAI 2023): compression-aware rescaling; E-InvBlocks give the LR, V-InvBlocks model
its JPEG/WebP-compressed version, a learnt Gaussian mixture the latent.

Official files (``yang-jin-hai/SAIN``, ``SAINet``): ``haar_operations.N.haar_weights``,
``down_operations.N.{E,F,G,H}...``, ``comp_operations.N.{F,G,H}...``, ``gmm.gmm_para``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from irn.nn.sain import SAIN, SAINConfig
from irn.zoo.architecture import Architecture

HAAR = re.compile(r"^haar_operations\.(\d+)\.haar_weights$")
E_BLOCK = re.compile(r"^down_operations\.(\d+)\.E\.conv1\.weight$")
V_BLOCK = re.compile(r"^comp_operations\.(\d+)\.F\.conv1\.weight$")


def _indices(pattern: re.Pattern[str], state: Mapping[str, Any]) -> list[int]:
    return sorted(int(m.group(1)) for k in state if (m := pattern.match(str(k))))


def detect(state: Mapping[str, Any]) -> bool:
    """Haar levels under ``haar_operations``, E-blocks, and the Gaussian mixture of the latent."""
    return "gmm.gmm_para" in state and "haar_operations.0.haar_weights" in state and bool(_indices(E_BLOCK, state))


def infer_config(state: Mapping[str, Tensor]) -> SAINConfig:
    levels, e_blocks, v_blocks = (_indices(p, state) for p in (HAAR, E_BLOCK, V_BLOCK))
    for name, found in (("haar_operations", levels), ("down_operations", e_blocks), ("comp_operations", v_blocks)):
        if found != list(range(len(found))):
            raise ValueError(f"the {name} are not numbered 0, 1, 2, ...: {found}")
    return SAINConfig(
        scale=2 ** len(levels),
        e_blocks=len(e_blocks),
        v_blocks=len(v_blocks),
        gmm_components=int(state["gmm.gmm_para"].shape[1]),
        growth=int(state["down_operations.0.E.conv1.weight"].shape[0]),
    )


def build(config: SAINConfig) -> nn.Module:
    if not isinstance(config, SAINConfig):
        raise ValueError(f"a SAIN needs a SAINConfig, got {type(config).__name__}")
    return SAIN(config)


def owns(module: nn.Module) -> bool:
    return isinstance(module, SAIN)


ARCHITECTURE = Architecture(
    name="sain",
    title="a SAIN model (compression-aware rescaling, x2/x4)",
    config_class=SAINConfig,
    detect=detect,
    infer_config=infer_config,
    build=build,
    owns=owns,
    label="SAIN",
    latent=SAIN.default_z,
    channels="RGB in; LR 3 channels (RGB, 1/s size, made to be stored as JPEG/WebP), latent 3(s²-1) channels "
    "(drawn from the learnt Gaussian mixture)",
    keys="'haar_operations.0.haar_weights' and 'gmm.gmm_para'",
    origin="Yang et al., Self-Asymmetric Invertible Network for Compression-Aware Image Rescaling (AAAI 2023); "
    "github.com/yang-jin-hai/SAIN",
    licence="Apache-2.0",
    onnx=True,  # the mixture's parameters go into model.json: the torch-free runtime draws z from them
    lr_formats=("JPEG", "WEBP"),  # compression-aware: a file without a name or card may be either model
)
