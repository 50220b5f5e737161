"""What the tests share besides fixtures: the repository's paths, the ../shared data folder and the
one tiny-model factory. Test modules import these from here
(``from helpers import random_irn``); tests/conftest.py holds the fixtures built on them.

The test folders mirror ``irn/`` and have no ``__init__.py``: pytest puts tests/ (the folder of
conftest.py and of this module) on ``sys.path``, and test modules are imported by their file name,
so every test file's name is unique across the tree."""

from __future__ import annotations

import contextlib
import threading
import types
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from irn.nn import IRN, IRNConfig, build_network

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
LEVELS = {2: 1, 4: 2, 8: 3}  # Haar levels (coupling stages) per scale


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with a reason if it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the ../shared data folder beside the checkout), which is absent")
    return path


def randomise(module: nn.Module, std: float | None = 0.05, last_std: float | None = 0.02, seed: int = 0) -> nn.Module:
    """``module`` with random weights, in place: each parameter in turn drawn from N(0, ``std``), those
    of the dense blocks' last convolutions (``conv5``, which a fresh IRN zeroes so that every coupling
    block is the identity) from N(0, ``last_std``), all from one generator seeded with ``seed``.
    ``None`` leaves those parameters as they are and draws nothing for them. The learnable linear maps
    (``conv_weights``: the x3 downsampling, IRN-Color's colour matrix) get the noise added to their start
    instead, so that they stay invertible and well conditioned."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            spread = last_std if "conv5" in name.split(".") else std
            if spread is not None:
                noise = torch.randn(p.shape, generator=gen) * spread
                p.copy_(p + noise if name.endswith("conv_weights") else noise)
    return module


def random_irn(
    scale: int = 2,
    blocks: int | tuple[int, ...] = 1,
    growth: int = 8,
    *,
    std: float | None = 0.05,
    last_std: float | None = 0.02,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    kind: str = "haar",
) -> IRN:
    """The tests' tiny model: an :class:`irn.IRN` in eval mode with ``blocks`` coupling blocks per
    level (one number for every level, or one per level) and dense blocks ``growth`` channels wide.

    By default every weight is random (:func:`randomise`), the zero-initialised last convolutions
    too, so that every block changes its input. ``std=None`` keeps the network's own initialisation
    (made under ``torch.manual_seed(seed)``, without touching the global generator) and randomises
    only the last convolutions; :func:`identity_irn` keeps all of it. ``kind`` "conv" (the x3 model's
    learnable downsampling, any scale) and "color" (IRN-Color, scale 1) build the other networks of the
    family, with one stage of couplings."""
    levels = LEVELS[scale] if kind == "haar" else 1
    per_level = (blocks,) * levels if isinstance(blocks, int) else tuple(blocks)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_network(IRNConfig(scale=scale, blocks_per_level=per_level, growth=growth, kind=kind))  # type: ignore[arg-type]
    randomise(model, std, last_std, seed)
    return model.eval().to(dtype)


def identity_irn(
    scale: int = 2, blocks: int | tuple[int, ...] = 1, growth: int = 8, seed: int = 0, kind: str = "haar"
) -> IRN:
    """A fresh IRN, as its constructor initialises it: every coupling block's last convolution is zero,
    so the couplings are the identity and the network is the plain Haar transform (for ``kind`` conv and
    color: the official start of its learnable downsampling or colour transform)."""
    return random_irn(scale, blocks, growth, std=None, last_std=None, seed=seed, kind=kind)


def autograd_logdet(fn: Callable[[Tensor], tuple[Tensor, Tensor]], x: Tensor) -> Tensor:
    """log |det J| of ``fn`` (whose first output is the transformed tensor) at ``x``, by autograd."""
    jac = torch.autograd.functional.jacobian(
        lambda v: fn(v.reshape(x.shape))[0].reshape(-1), x.reshape(-1), vectorize=True
    )
    sign, logabs = torch.linalg.slogdet(jac)
    assert sign != 0
    return logabs


def public_names(module: object) -> set[str]:
    """The public names a module defines itself (not what it imports: modules, other modules' names)."""
    names = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", module.__name__) == module.__name__  # type: ignore[attr-defined]
    }
    return names - {"annotations"}


def grey_restorer():  # noqa: ANN201
    """A tiny compression restoration module that restores every LR to mid-grey: easy to see in an output."""
    from irn.nn.restoration import CompressionRestorer, RestorerConfig

    crm = CompressionRestorer(RestorerConfig(features=4, blocks=1, growth=2))
    with torch.no_grad():
        for p in crm.parameters():
            p.zero_()
        crm.conv_last.bias.fill_(0.5)
    return crm


@contextlib.contextmanager
def local_http_server(handler: type[BaseHTTPRequestHandler], state: object) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 with ``handler`` (which reads ``self.server.state``); yields
    its base URL and shuts it down after."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
