"""The SAIN entry of the registry (irn/zoo/archs/sain.py): ``irn.load`` recognises the official state dict
(with or without a ``module.`` prefix) as SAIN alone, builds the official architecture and reproduces the
official outputs; our files round-trip in both formats; SAIN decodes with its mixture by default."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import shared_path

import irn
from irn.nn.sain import SAIN
from irn.zoo import registry
from irn.zoo.architecture import strip_prefix

ATOL = 1e-5


@pytest.fixture(scope="module")
def fixture() -> tuple[Path, dict[str, torch.Tensor]]:
    io = torch.load(shared_path("fixtures", "official_sain_x2_seed3_io.pt"), weights_only=True)
    return shared_path("fixtures", "official_sain_x2_seed3.pth"), io


def test_the_official_file_is_sain_alone_and_loads_exactly(fixture: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, io = fixture
    state = torch.load(path, weights_only=True)
    assert [a.name for a in registry.claimants(strip_prefix(state))] == ["sain"]
    model = irn.load(path)
    assert isinstance(model, SAIN) and model.scale == 2 and model.recommended_z() == "sample"
    assert (model.config.e_blocks, model.config.v_blocks, model.config.gmm_components) == (5, 3, 5)
    with torch.no_grad():
        lr, z = model.encode(io["hr"])
        torch.testing.assert_close(lr, io["lr"], rtol=0, atol=ATOL)
        torch.testing.assert_close(torch.cat((lr, z), 1)[:, 3:], io["forward"][:, 3:], rtol=0, atol=ATOL)
        torch.testing.assert_close(model.decode(io["lr_quantized"], io["z"]), io["inverse"], rtol=0, atol=ATOL)
        torch.testing.assert_close(model.gmm.gmm_para, io["gmm_para"], rtol=0, atol=0)


def test_a_module_prefix_and_a_state_dict_wrapper_load_the_same(
    tmp_path: Path, fixture: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    path, io = fixture
    state = torch.load(path, weights_only=True)
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "ddp.pth")
    torch.save({"state_dict": state}, tmp_path / "wrapped.pth")
    for p in (tmp_path / "ddp.pth", tmp_path / "wrapped.pth"):
        with torch.no_grad():
            torch.testing.assert_close(irn.load(p).encode(io["hr"])[0], io["lr"], rtol=0, atol=ATOL)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_our_files_round_trip_with_the_arch_field(
    tmp_path: Path, suffix: str, fixture: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    path, io = fixture
    model = irn.load(path)
    saved = irn.save(model, tmp_path / f"sain{suffix}", metadata={"note": "test"})
    again = irn.load(saved)
    assert isinstance(again, SAIN) and again.config == model.config and again.metadata["note"] == "test"
    with torch.no_grad():
        torch.testing.assert_close(again.decode(io["lr_quantized"], io["z"]), io["inverse"], rtol=0, atol=ATOL)
        a = model.upscale(io["lr_quantized"], z="sample", seed=4)
        b = again.upscale(io["lr_quantized"], seed=4)  # "auto" = its mixture
        torch.testing.assert_close(a, b, rtol=0, atol=0)
