"""Shared test fixtures. Data in ../shared (beside the checkout) is optional: tests that need
it skip with a clear reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with a reason if it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the ../shared data folder beside the checkout), which is absent")
    return path


@pytest.fixture
def shared() -> Path:
    return shared_path()


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    torch.manual_seed(0)


def random_irn(scale: int = 2, blocks: int = 1, growth: int = 8, seed: int = 0, dtype: torch.dtype = torch.float32):
    """The tests' tiny model: an :class:`irn.IRN` in eval mode whose every weight (the
    zero-initialised last convolutions too) is random, so every block changes its input."""
    from irn.nn.network import IRN, IRNConfig

    levels = {2: 1, 4: 2, 8: 3}[scale]
    model = IRN(IRNConfig(scale=scale, blocks_per_level=(blocks,) * levels, growth=growth)).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (0.02 if "conv5" in name else 0.05))
    return model.to(dtype)
