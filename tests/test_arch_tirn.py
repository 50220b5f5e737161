"""The T-IRN entry of the registry (irn/zoo/archs/tirn.py): ``irn.load`` recognises the official x2 and x4
state dicts as T-IRN alone (not SAIN, not T-SAIN), builds TIRN_2 / TIRN_4 and reproduces the official
outputs; T-IRN decodes with z = 0 by default; our files round-trip in both formats."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import shared_path

import irn
from irn.nn.tirn import TIRN
from irn.zoo import registry
from irn.zoo.architecture import strip_prefix
from irn.zoo.errors import CheckpointError

ATOL = 1e-5


def fixture(scale: int) -> tuple[Path, dict[str, torch.Tensor]]:
    io = torch.load(shared_path("fixtures", f"official_tirn_x{scale}_seed3_io.pt"), weights_only=True)
    return shared_path("fixtures", f"official_tirn_x{scale}_seed3.pth"), io


@pytest.mark.parametrize("scale", [2, 4])
def test_the_official_files_are_tirn_alone_and_load_exactly(scale: int) -> None:
    path, io = fixture(scale)
    state = torch.load(path, weights_only=True)
    assert [a.name for a in registry.claimants(strip_prefix(state))] == ["tirn"]
    model = irn.load(path)
    assert isinstance(model, TIRN) and model.scale == scale and model.recommended_z() == "zero"
    with torch.no_grad():
        lr, _ = model.encode(io["hr"])
        torch.testing.assert_close(lr, io["lr"], rtol=0, atol=ATOL)
        torch.testing.assert_close(model.decode(io["lr_quantized"], io["z"]), io["inverse"], rtol=0, atol=ATOL)
        zero = model.upscale(io["lr_quantized"])  # "auto": T-IRN's z = 0, clamped to [0, 1]
        torch.testing.assert_close(zero, io["inverse_z0"].clamp(0, 1), rtol=0, atol=ATOL)


def test_a_t_sain_file_is_claimed_by_no_entry(tmp_path: Path) -> None:
    """T-SAIN (the same repository's compression-aware variant) has T-IRN's keys plus comp_operations:
    it is not implemented, so it must not load as a T-IRN with weights left out."""
    path, _ = fixture(2)
    state = torch.load(path, weights_only=True)
    state["comp_operations.0.F.conv1.weight"] = torch.zeros(32, 9, 3, 3)
    assert registry.claimants(strip_prefix(state)) == []
    torch.save(state, tmp_path / "tsain.pth")
    with pytest.raises(CheckpointError, match="tsain.pth"):
        irn.load(tmp_path / "tsain.pth")


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_our_files_round_trip_with_the_arch_field(tmp_path: Path, suffix: str) -> None:
    path, io = fixture(4)
    model = irn.load(path)
    again = irn.load(irn.save(model, tmp_path / f"tirn{suffix}"))
    assert isinstance(again, TIRN) and again.config == model.config and again.recommended_z() == "zero"
    with torch.no_grad():
        torch.testing.assert_close(again.decode(io["lr_quantized"], io["z"]), io["inverse"], rtol=0, atol=ATOL)
