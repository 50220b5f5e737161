"""Shared test fixtures. Data in ../shared (beside the checkout) is optional: tests that need
it skip with a clear reason when it is absent. The helpers the fixtures are built on (paths, the
tiny-model factory) live in tests/helpers.py; the names older test modules import from here
(``from conftest import REPO, shared_path``) are that module's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import REPO, SHARED, identity_irn, random_irn, shared_path

import irn

__all__ = ["REPO", "SHARED", "identity_irn", "random_irn", "shared_path"]


@pytest.fixture
def shared() -> Path:
    return shared_path()


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_x2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``random_irn(2)`` (one coupling block, growth 8, every weight random) saved in our format,
    once per session: the model file the CLI tests pass as ``--model``. Tests only read it."""
    path = tmp_path_factory.mktemp("model") / "tiny_x2.pt"
    return irn.save(random_irn(2), path, {"note": "random, for tests"})
