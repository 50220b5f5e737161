"""The paper's own code as the in-run anchor of ``benchmarks/run.py --paper-code DIR``.

Issue 7 measures irn against the paper's code (https://github.com/pkuxmq/Invertible-Image-Rescaling)
and asks for ratios measured in one run. Nothing of that code is part of irn or copied here: DIR
is the root of a local checkout (the folder holding ``codes/``). Its network
(``codes/models/modules/Inv_arch.py``, ``Subnet_constructor.py``, ``Quantization.py``) is imported
from there, given the weights of the irn model being measured (the state-dict keys are the same),
and driven the way its ``IRNModel.test`` (inference) and ``IRNModel.optimize_parameters`` (training)
drive it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

REPOSITORY = "https://github.com/pkuxmq/Invertible-Image-Rescaling"
MODULES = ("Inv_arch", "Subnet_constructor", "Quantization")


@dataclass
class PaperCode:
    """The three modules of the paper's code that define and drive its network."""

    root: Path
    inv_arch: Any
    subnet_constructor: Any
    quantization: Any


def load_paper_code(root: str | Path) -> PaperCode:
    """Import the paper's network modules from the checkout at ``root``; SystemExit (one line) if
    they are not there."""
    root = Path(root).expanduser().resolve()
    codes = root / "codes"
    missing = [m for m in MODULES if not (codes / "models" / "modules" / f"{m}.py").is_file()]
    if missing:
        raise SystemExit(
            f"--paper-code {root}: no codes/models/modules/{missing[0]}.py there; "
            f"pass the root of a checkout of {REPOSITORY}"
        )
    loaded = sys.modules.get("models")
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve().parent != codes / "models":
        raise SystemExit(f"--paper-code: another module named 'models' is already imported ({loaded})")
    if str(codes) not in sys.path:
        sys.path.insert(0, str(codes))
    modules = [importlib.import_module(f"models.modules.{m}") for m in MODULES]
    return PaperCode(root, *modules)


def paper_network(code: PaperCode, model: Any) -> nn.Module:
    """The paper's ``InvRescaleNet`` with the weights of the irn ``model`` (same architecture)."""
    cfg = model.config
    subnet = code.subnet_constructor.subnet("DBNet", "xavier")
    net = code.inv_arch.InvRescaleNet(cfg.in_channels, cfg.in_channels, subnet, list(cfg.blocks_per_level), cfg.levels)
    net.load_state_dict(model.state_dict())  # strict: the keys are the official ones
    return net.to(next(model.parameters()).device)


class PaperModel:
    """The paper's network behind irn's ``encode``/``decode``/``downscale``/``upscale`` names, for the
    benchmark's timing and agreement helpers. ``upscale`` draws z as ``IRNModel.upscale`` does
    (standard normal, here from a seeded generator)."""

    def __init__(self, code: PaperCode, model: Any) -> None:
        self.net = paper_network(code, model).eval()
        self.quantization = code.quantization.Quantization()
        self.channels = model.config.in_channels
        self.latent_factor = model.scale**2 - 1

    def encode(self, hr: Tensor) -> tuple[Tensor, Tensor]:
        out = self.net(x=hr)
        return out[:, : self.channels], out[:, self.channels :]

    def decode(self, lr: Tensor, z: Tensor) -> Tensor:
        return self.net(x=torch.cat((lr, z), 1), rev=True)[:, : self.channels]

    def downscale(self, hr: Tensor) -> Tensor:
        return self.quantization(self.encode(hr)[0])

    def upscale(self, lr: Tensor, seed: int = 0) -> Tensor:
        b, c, h, w = lr.shape
        gen = torch.Generator(device=lr.device).manual_seed(seed)
        z = torch.randn((b, c * self.latent_factor, h, w), generator=gen, device=lr.device, dtype=lr.dtype)
        return self.decode(lr, z)


def paper_training_step(
    code: PaperCode,
    model: Any,
    hr: Tensor,
    lr_ref: Tensor,
    weights: tuple[float, float, float],
    charbonnier_eps: float = 1e-6,
    gradient_clipping: float = 10.0,
) -> tuple[Callable[[], float], nn.Module]:
    """One step of ``IRNModel.optimize_parameters`` on the paper's network (weights copied from
    ``model``): forward, L2 fit to ``lr_ref`` (the data loader's bicubic LR in the paper's code, so
    given here), latent sum of squares, quantised LR + standard normal z through the reverse pass,
    Charbonnier reconstruction, backward, gradient clipping, Adam. ``weights``: (fit, rec, latent).
    Returns (the step, a function returning the loss; the paper's network it trains)."""
    net = paper_network(code, model).train()
    quantization = code.quantization.Quantization()
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=2e-4)
    lambda_fit, lambda_rec, lambda_latent = weights
    c = model.config.in_channels
    gen = torch.Generator(device=hr.device).manual_seed(3)

    def step() -> float:
        optimizer.zero_grad()
        out = net(x=hr)
        y, z = out[:, :c], out[:, c:]
        l_fit = torch.mean(torch.sum((y - lr_ref) ** 2, (1, 2, 3)))
        l_latent = torch.sum(z.reshape(z.shape[0], -1) ** 2) / z.shape[0]
        noise = torch.randn(z.shape, generator=gen, device=z.device, dtype=z.dtype)
        rec = net(x=torch.cat((quantization(y), noise), 1), rev=True)[:, :c]
        diff = rec - hr
        l_rec = torch.mean(torch.sum(torch.sqrt(diff * diff + charbonnier_eps), (1, 2, 3)))
        loss = lambda_fit * l_fit + lambda_rec * l_rec + lambda_latent * l_latent
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), gradient_clipping)
        optimizer.step()
        if hr.device.type == "cuda":
            torch.cuda.synchronize(hr.device)
        return float(loss.detach())

    return step, net
