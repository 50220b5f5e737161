"""T-IRN (Bao et al., AAAI 2025): IRN with tri-branch invertible blocks in YCbCr, x2 and x4, trained with
z = 0.

Official files (``Jingwei-Bao/T-InvBlocks``, ``TIRN_2``/``TIRN_4``): ``haar_operations.0.haar_weights``,
``down_operations.N.{E..L}...`` (x4 also ``haar_operations_2``, ``down_operations_2``), no mixture."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from irn.nn.tirn import TIRN, TIRNConfig
from irn.zoo.architecture import Architecture


def _blocks(prefix: str, state: Mapping[str, Any]) -> list[int]:
    pattern = re.compile(rf"^{prefix}\.(\d+)\.K\.conv1\.weight$")
    return sorted(int(m.group(1)) for k in state if (m := pattern.match(str(k))))


def detect(state: Mapping[str, Any]) -> bool:
    """A Haar level under ``haar_operations`` and tri-branch blocks (their K subnet), no Gaussian mixture
    and no ``comp_operations`` (T-SAIN, the same repository's compression-aware variant, is not
    implemented: it claims none)."""
    return (
        "haar_operations.0.haar_weights" in state
        and "gmm.gmm_para" not in state
        and not any(str(k).startswith("comp_operations.") for k in state)
        and bool(_blocks("down_operations", state))
    )


def infer_config(state: Mapping[str, Tensor]) -> TIRNConfig:
    stages = [("haar_operations", "down_operations")]
    if "haar_operations_2.0.haar_weights" in state:
        stages.append(("haar_operations_2", "down_operations_2"))
    blocks = []
    for _, name in stages:
        found = _blocks(name, state)
        if found != list(range(len(found))):
            raise ValueError(f"the {name} are not numbered 0, 1, 2, ...: {found}")
        blocks.append(len(found))
    return TIRNConfig(
        scale=2 ** len(stages),
        blocks_per_stage=tuple(blocks),
        growth=int(state["down_operations.0.E.conv1.weight"].shape[0]),
    )


def build(config: TIRNConfig) -> nn.Module:
    if not isinstance(config, TIRNConfig):
        raise ValueError(f"a T-IRN needs a TIRNConfig, got {type(config).__name__}")
    return TIRN(config)


def owns(module: nn.Module) -> bool:
    return isinstance(module, TIRN)


ARCHITECTURE = Architecture(
    name="tirn",
    title="a T-IRN model (tri-branch invertible blocks, x2/x4)",
    config_class=TIRNConfig,
    detect=detect,
    infer_config=infer_config,
    build=build,
    owns=owns,
    label="T-IRN",
    latent=TIRN.default_z,
    channels="RGB in; LR 3 channels (RGB, 1/s size), latent 3(s²-1) channels (trained with z = 0)",
    keys="'haar_operations.0.haar_weights' and 'down_operations.N.K.conv1.weight'",
    origin="Bao et al., Plug-and-Play Tri-Branch Invertible Block for Image Rescaling (AAAI 2025); "
    "github.com/Jingwei-Bao/T-InvBlocks",
    licence="Apache-2.0",
    onnx=True,
)
