"""benchmarks/ plumbing: the paper's code as the in-run anchor (``run.py --paper-code DIR``).

The paper's repository cannot be fetched here, so these tests build a stand-in checkout with the
same layout and interfaces (``codes/models/modules/{Inv_arch,Subnet_constructor,Quantization}.py``,
``InvRescaleNet(channel_in, channel_out, subnet_constructor, block_num, down_num)`` with the official
state-dict keys, ``forward(x, rev)`` returning the output alone) whose network is irn's own.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import REPO, benchmark_module

from irn.nn import IRN, IRNConfig

BENCHMARKS = REPO / "benchmarks"

INV_ARCH = """
import torch
from irn.nn import IRN, IRNConfig


class InvRescaleNet(torch.nn.Module):
    def __init__(self, channel_in=3, channel_out=3, subnet_constructor=None, block_num=[], down_num=2):
        super().__init__()
        config = IRNConfig(scale=2**down_num, blocks_per_level=tuple(block_num), in_channels=channel_in)
        self.operations = IRN(config).operations

    def forward(self, x, rev=False):
        for op in reversed(self.operations) if rev else self.operations:
            x, _ = op(x, rev=rev)
        return x
"""

QUANTIZATION = """
import torch


class Quantization(torch.nn.Module):
    def forward(self, x):
        q = (x.clamp(0, 1) * 255).round() / 255
        return x + (q - x).detach()
"""


@pytest.fixture
def paper_checkout(tmp_path: Path) -> Path:
    modules = tmp_path / "paper" / "codes" / "models" / "modules"
    modules.mkdir(parents=True)
    (modules.parent / "__init__.py").write_text("")
    (modules / "Inv_arch.py").write_text(INV_ARCH)
    (modules / "Subnet_constructor.py").write_text("def subnet(kind, init='xavier'):\n    return None\n")
    (modules / "Quantization.py").write_text(QUANTIZATION)
    return tmp_path / "paper"


@pytest.fixture
def anchor_module(paper_checkout: Path) -> Iterator[object]:
    """benchmarks/paper_anchor.py imported in this process; the stand-in's modules removed after."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import paper_anchor

        yield paper_anchor
    finally:
        sys.path.remove(str(BENCHMARKS))
        codes = str(paper_checkout / "codes")
        if codes in sys.path:
            sys.path.remove(codes)
        for name in [n for n in sys.modules if n == "models" or n.startswith("models.")]:
            del sys.modules[name]


def _seeded_model(scale: int) -> IRN:
    model = IRN(IRNConfig(scale=scale, blocks_per_level=(1,) * (scale // 2)))
    gen = torch.Generator().manual_seed(scale)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    return model


def test_paper_model_runs_the_checkout_with_our_weights(anchor_module: object, paper_checkout: Path) -> None:
    code = anchor_module.load_paper_code(paper_checkout)  # type: ignore[attr-defined]
    model = _seeded_model(4).eval()
    paper = anchor_module.PaperModel(code, model)  # type: ignore[attr-defined]
    hr = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        lr, z = model.encode(hr)
        lr_p, z_p = paper.encode(hr)
        assert torch.equal(lr, lr_p) and torch.equal(z, z_p)
        up = paper.upscale(paper.downscale(hr), seed=5)
        gen = torch.Generator().manual_seed(5)
        lr_q = (lr.clamp(0, 1) * 255).round() / 255
        expected = model.decode(lr_q, torch.randn(z.shape, generator=gen))
    assert torch.equal(up, expected)


def test_paper_training_step_is_the_papers_objective(anchor_module: object, paper_checkout: Path) -> None:
    code = anchor_module.load_paper_code(paper_checkout)  # type: ignore[attr-defined]
    model = _seeded_model(2)
    hr = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    lr_ref = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    step, net = anchor_module.paper_training_step(code, model, hr, lr_ref, (4.0, 1.0, 0.5), 1e-6)  # type: ignore[attr-defined]
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), model.parameters(), strict=True))
    with torch.no_grad():  # the objective by hand, with the step's noise (generator seed 3)
        lr, z = model.encode(hr)
        noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(3))
        rec = model.decode((lr.clamp(0, 1) * 255).round() / 255, noise)
        fit = ((lr - lr_ref) ** 2).sum((1, 2, 3)).mean()
        latent = (z**2).sum() / 2
        charbonnier = torch.sqrt((rec - hr) ** 2 + 1e-6).sum((1, 2, 3)).mean()
        expected = float(4.0 * fit + charbonnier + 0.5 * latent)
    before = [p.detach().clone() for p in model.parameters()]
    assert step() == pytest.approx(expected, rel=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # a copy trains
    pairs = zip(net.parameters(), model.parameters(), strict=True)
    moved = [not torch.equal(a, b) for a, b in pairs if a.requires_grad]
    assert moved and all(moved)  # Adam moved every trainable weight of the copy


def test_missing_checkout_is_one_clear_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--only", "inference", "--paper-code", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert f"--paper-code {tmp_path.resolve()}: no codes/models/modules/Inv_arch.py there" in out.stderr
    assert "github.com/pkuxmq/Invertible-Image-Rescaling" in out.stderr


def test_run_reports_ratios_to_the_paper(paper_checkout: Path, tmp_path: Path) -> None:
    report = tmp_path / "rows.json"
    cmd = [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--only", "inference"]
    cmd += ["--paper-code", str(paper_checkout), "--json", str(report)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    rows = [r for r in json.loads(report.read_text())["rows"] if r["device"] == "cpu"]
    assert [r["variant"].split(" (")[0] for r in rows] == [
        "the paper's code",
        "plain eager fp32",
        "FastIRN",
        "Python API",
    ] * 2
    for r in rows:
        seconds = r["raw"]["seconds"]
        assert len(seconds) == 1 and seconds[0] > 0
        if r["variant"].startswith("the paper's code"):
            assert r["paper"] == "1.00x"
            assert r["agreement"] == "enc 0.0e+00, dec 0.0e+00 ok"  # the stand-in is irn's network
        else:
            assert r["paper"].endswith("x") and float(r["paper"][:-1]) > 0
    assert "| vs paper's code |" in out.stdout


@pytest.fixture
def run_module() -> Iterator[object]:
    """benchmarks/run.py imported in this process (its spawned workers import it by name)."""
    with benchmark_module("run") as module:
        yield module


def test_data_parallel_step_averages_the_whole_batchs_gradient(run_module: object) -> None:
    run = run_module
    batch, patch = 2, 16
    _, lit = run.training_step_fn(2, batch, patch, torch.device("cpu"), "plain")  # type: ignore[attr-defined]
    expected, expected_loss = run.plain_gradient(lit, run.bench_batch(batch, patch))  # type: ignore[attr-defined]
    step = run.DataParallelStep(2, batch, patch, world=2, threads=1)  # type: ignore[attr-defined]
    try:
        grad, loss = step.gradient()
        # each rank saw one patch; DDP's mean of the two gradients is the whole batch's gradient
        assert grad.shape == expected.shape
        torch.testing.assert_close(grad, expected, rtol=0, atol=1e-5 * float(expected.abs().max()))
        assert loss == pytest.approx(expected_loss, rel=1e-6)
        losses = [step(), step(), step()]
        assert all(math.isfinite(x) for x in losses)
        assert losses[0] != losses[2]  # Adam moved the weights on every rank
    finally:
        step.close()
    assert not any(p.is_alive() for p in step.procs)


def test_data_parallel_step_needs_a_batch_that_splits(run_module: object) -> None:
    with pytest.raises(ValueError, match="batch 3 does not split over 2 processes"):
        run_module.DataParallelStep(2, 3, 16, world=2, threads=1)  # type: ignore[attr-defined]
