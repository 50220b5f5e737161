"""benchmarks/ plumbing: the package and its commands (by path and ``python -m``), the models
the inference sections measure (plain, ``irn.load`` as returned), the filters (``--variants``,
``--scales``, ``--whole-sizes``), the training section's data-parallel step, and the paper's code
as the in-run anchor (``run.py --paper-code DIR``).

The paper's repository cannot be fetched here, so these tests build a stand-in checkout with the
same layout and interfaces (``codes/models/modules/{Inv_arch,Subnet_constructor,Quantization}.py``,
``InvRescaleNet(channel_in, channel_out, subnet_constructor, block_num, down_num)`` with the official
state-dict keys, ``forward(x, rev)`` returning the output alone) whose network is irn's own.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers import REPO, random_irn

from benchmarks import color_curve, common, paper_anchor, run, training
from irn.nn import IRN

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
    """benchmarks/paper_anchor.py; the stand-in's modules removed after."""
    try:
        yield paper_anchor
    finally:
        codes = str(paper_checkout / "codes")
        if codes in sys.path:
            sys.path.remove(codes)
        for name in [n for n in sys.modules if n == "models" or n.startswith("models.")]:
            del sys.modules[name]


def test_paper_model_runs_the_checkout_with_our_weights(anchor_module: object, paper_checkout: Path) -> None:
    code = anchor_module.load_paper_code(paper_checkout)  # type: ignore[attr-defined]
    model = random_irn(4, growth=32, std=0.02, seed=4)
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
    model = random_irn(2, growth=32, std=0.02, seed=2)
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
        'irn.load(...).downscale/.upscale(z="sample")',
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


def test_data_parallel_step_averages_the_whole_batchs_gradient() -> None:
    batch, patch = 2, 16
    _, lit = training.training_step_fn(2, batch, patch, torch.device("cpu"), "plain")
    expected, expected_loss = training.plain_gradient(lit, training.bench_batch(batch, patch))
    step = training.DataParallelStep(2, batch, patch, world=2, threads=1)  # workers import benchmarks.training
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


def test_data_parallel_step_needs_a_batch_that_splits() -> None:
    with pytest.raises(ValueError, match="batch 3 does not split over 2 processes"):
        training.DataParallelStep(2, 3, 16, world=2, threads=1)


# ------------------------------------------------------------------ the models and the filters
def test_load_model_is_the_plain_network_and_load_is_as_returned(tmp_path: Path) -> None:
    """``load_model`` gives the plain :class:`IRN` whatever ``irn.load`` returns; the ``load``
    variant is ``irn.load`` of the same weights (with random weights: written to a file first)."""
    plain, source = common.load_model(2, None)
    assert type(plain) is IRN and not plain.training
    assert not any(p.requires_grad for p in plain.parameters())
    path, note = common.load_file(2, None, tmp_path)
    if source == common.RANDOM_WEIGHTS:
        assert path.parent == tmp_path and note.startswith(common.RANDOM_WEIGHTS) and "irn.load" in note
    else:
        assert note == source
    loaded = common.load_as_returned(path)
    state = loaded.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in plain.state_dict().items())


def test_load_file_writes_random_weights_that_irn_load_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "find_checkpoint", lambda scale, checkpoint: None)
    plain, source = common.load_model(4, None)
    assert source == "random weights (seeded)"
    path, note = common.load_file(4, None, tmp_path)
    assert path == tmp_path / "random_x4.pt" and "temporary file" in note
    loaded = common.load_as_returned(path)
    assert loaded.scale == 4
    state = loaded.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in plain.state_dict().items())


def test_inference_and_whole_with_the_filters(tmp_path: Path) -> None:
    """``--only inference whole --variants api load --scales 2 --whole-sizes WxH``: inference adds
    its baseline (plain), whole runs only what is asked and says it has no baseline."""
    report = tmp_path / "rows.json"
    cmd = [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--only", "inference", "whole"]
    cmd += ["--variants", "api", "load", "--scales", "2", "--whole-sizes", "40x24", "--json", str(report)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(report.read_text())["rows"]
    cpu = [r for r in rows if r["section"] == "inference" and r["device"] == "cpu"]
    load_label = 'irn.load(...).downscale/.upscale(z="sample")'
    assert [r["variant"] for r in cpu] == [
        "plain eager fp32 (baseline)",
        "Python API (irn.downscale_image + irn.upscale_image)",
        load_label,
    ]
    assert {r["case"] for r in cpu} == {"x2 128x128 down+up"}
    plain, api, load = cpu
    assert plain["ratio"] == "1.00x" and api["agreement"] == ""
    assert load["agreement"].endswith(" ok")  # irn.load's model agrees with the plain one to 1e-4
    assert load["note"].split("; ")[-1].endswith("IRN")  # the class irn.load returned
    whole = [r for r in rows if r["section"] == "whole"]
    assert [(r["case"], r["variant"]) for r in whole] == [
        ("x2 40x24 one process", "Python API (irn.downscale_image + irn.upscale_image)"),
        ("x2 40x24 one process", load_label),
    ]
    for r in whole:
        assert r["ratio"] == "no baseline (plain not in --variants)"
        (run_,) = r["raw"]["runs"]
        assert run_["down_up_s"] > 0 and run_["peak_bytes"] > 0
    assert whole[1]["raw"]["runs"][0]["weights"].endswith(".pt")  # the child read a file with irn.load
    assert "| whole | x2 40x24 one process |" in out.stdout


def test_run_as_a_module_and_the_load_child(tmp_path: Path) -> None:
    """``python -m benchmarks.run`` from the repository root: one ``--child`` run of the load
    variant without a checkpoint given (the weights load_model would use, read by irn.load)."""
    cmd = [sys.executable, "-m", "benchmarks.run", "--child", "load", "2", "16", "24"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["down_up_s"] > 0 and result["weights"].endswith(".pt")


def test_filter_mistakes_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in (
        (["--variants", "paper"], "--variants paper needs --paper-code DIR"),
        (["--whole-sizes", "12"], "--whole-sizes must look like WxH"),
        (["--scales", "3"], "argument --scales: invalid choice: 3"),
    ):
        with pytest.raises(SystemExit) as exc:
            run.main(["--only", "whole", *argv])
        assert exc.value.code == 2
        assert message in capsys.readouterr().err


def test_whole_sizes_default_and_given() -> None:
    from benchmarks.inference import whole_sizes

    args = argparse.Namespace(quick=False, whole_sizes=None)
    assert whole_sizes(args) == [(512, 512), (1356, 2040)]
    args.quick = True
    assert whole_sizes(args) == [(128, 128)]
    args.whole_sizes = [(2040, 1356), (64, 32)]  # (W, H) as parsed -> (H, W)
    assert whole_sizes(args) == [(1356, 2040), (32, 64)]


def test_train_ab_reads_seconds_per_step_between_validations(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/train_ab.py: the s/step is the median of the logging windows after the warm-up
    that hold no validation, and each validation is reported at the step it followed."""
    from benchmarks import train_ab

    rows = [{"step": str(s), "train/seconds": str(s * 0.5)} for s in range(9, 100, 10)]
    rows.append({"step": "99", "val/psnr_y_z0": "40.1", "val/psnr_y_sample": "39.5", "val/train_seconds": "60"})
    rows += [{"step": str(s), "train/seconds": str(60 + (s - 99) * 0.5)} for s in range(109, 200, 10)]
    rows[3]["train/seconds"] = str(float(rows[3]["train/seconds"]) + 20)  # one slow window (a checkpoint)
    out = train_ab.summarise(rows)
    assert out["s_per_step"] == 0.5
    assert out["validation"] == [{"step": 100, "psnr_y_z0": 40.1, "psnr_y_sample": 39.5, "lr_psnr_y": None}]
    with pytest.raises(SystemExit):
        train_ab.main(["--variants", "fp32,fp8"])
    assert "unknown variants ['fp8']" in capsys.readouterr().err


def test_ship_model_writes_the_training_folder_relative_to_the_checkout_and_the_total_hours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import ship_model
    from irn.zoo.checkpoint import load_checkpoint, save

    model = random_irn()
    path = save(model, tmp_path / "m.pt", {"data": str(tmp_path / "repo" / "datasets" / "cpu_train"), "steps": 3})
    monkeypatch.setattr(ship_model, "REPO", tmp_path / "repo")
    ship_model.ship_metadata(path)
    loaded, meta = load_checkpoint(path)
    assert meta["data"] == "datasets/cpu_train" and meta["steps"] == 3
    stored = torch.load(path, weights_only=True)["metadata"]
    assert stored == {"data": "datasets/cpu_train", "steps": 3}  # nothing the loader adds
    pairs = zip(model.state_dict().values(), loaded.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    save(model, path, {"data": "/elsewhere/photos", "train_seconds": 5400.0})  # outside the checkout: kept
    ship_model.ship_metadata(path, prior_hours=4.95)  # the accumulated hours: the earlier ones + this run's
    stored = torch.load(path, weights_only=True)["metadata"]
    assert stored == {"data": "/elsewhere/photos", "train_seconds": 5400.0, "train_hours_total": 6.45}


@pytest.mark.parametrize(("candidate_set14", "shipped"), [(21.0, True), (19.0, False)])
def test_ship_model_colour_compares_each_file_as_it_is_used(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    candidate_set14: float,
    shipped: bool,
) -> None:
    """--name color: PSNR-RGB against the grey baseline, each file decoded with the latent it recommends
    (the candidate z = 0, the shipped file sampled z with --draws draws), shipped only if better on both
    sets; the figures and the held-out PSNR-RGB curve are written beside the file."""
    from benchmarks import ship_model
    from irn.zoo.checkpoint import load_checkpoint, save

    repo = tmp_path / "repo"
    (repo / "checkpoints").mkdir(parents=True)
    old = save(random_irn(1, kind="color"), repo / "checkpoints" / "irn_color.pt", {"recommended_z": "sample"})
    run_dir = tmp_path / "run"
    (run_dir / "csv" / "version_0").mkdir(parents=True)
    (run_dir / "csv" / "version_0" / "metrics.csv").write_text(
        "step,val/psnr_rgb_z0,val/psnr_rgb_sample,val/grey_psnr,val/train_seconds,loss\n"
        "299,20.5,6.5,28.6,360,\n300,,,,,5.0\n599,22.0,7.0,30.0,720,\n"
    )
    new_model = random_irn(1, kind="color", seed=1)

    def fake_irn(*args: str) -> None:
        assert args[0] == "export"
        save(new_model, args[-1], {"recommended_z": "zero", "data": "datasets/cpu_train"})

    calls: list[tuple[str, str, int]] = []
    psnr_rgb = {  # (file, set) -> Set5 / Set14 figure
        ("grey", "Set5"): 18.0,
        ("grey", "Set14"): 18.5,
        ("model.pt", "Set5"): 20.0,
        ("model.pt", "Set14"): candidate_set14,
        ("irn_color.pt", "Set5"): 19.5,
        ("irn_color.pt", "Set14"): 20.0,
    }

    def fake_evaluate(model: str, scale: int, z: str, sets: list[str], out: Path, draws: int = 1) -> dict:
        assert scale == 1
        name = Path(model).name
        calls.append((name, z, draws))
        return {s: {"psnr_rgb": psnr_rgb[name, s]} for s in sets}

    monkeypatch.setattr(ship_model, "REPO", repo)
    monkeypatch.setattr(ship_model, "irn", fake_irn)
    monkeypatch.setattr(ship_model, "evaluate", fake_evaluate)
    argv = ["best.ckpt", "--name", "color", "--run-dir", str(run_dir), "--session", "16", "--prior-hours", "2.0"]
    assert ship_model.main(argv) == (0 if shipped else 1)
    summary = json.loads(capsys.readouterr().out)
    assert summary["shipped"] is shipped and summary["gain_over_grey"] == pytest.approx(2.0)
    assert ("model.pt", "zero", 1) in calls and ("irn_color.pt", "sample", 3) in calls  # each as it is used
    curve = (repo / "checkpoints" / "irn_color_curve.csv").read_text().splitlines()  # shipped or not
    assert curve[0] == "session,validation,train_hours,step,psnr_rgb_z0,psnr_rgb_sample,grey_psnr"
    assert curve[1].split(",")[2:] == ["2.1000", "300", "20.5000", "6.5000", "28.6000"] and len(curve) == 3
    assert (repo / "checkpoints" / "irn_color_curve.png").is_file()
    if not shipped:
        assert "as it is used" in summary["reason"]
        assert load_checkpoint(old)[1]["recommended_z"] == "sample"  # the shipped file is untouched
        assert not (repo / "checkpoints" / "irn_color_eval.json").exists()
        return
    assert load_checkpoint(repo / "checkpoints" / "irn_color.pt")[1]["recommended_z"] == "zero"
    figures = json.loads((repo / "checkpoints" / "irn_color_eval.json").read_text())
    assert set(figures) == {"grey", "z0", "sample"}


def test_color_curve_puts_the_kept_colour_runs_on_one_axis(tmp_path: Path) -> None:
    assert color_curve.main(["--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "color_curve.csv").open()))
    assert [r["session"] for r in rows] == ["14"] * 2 + ["15"] * 11 + ["16"] * 2  # every validation kept
    hours = [float(r["train_hours"]) for r in rows]
    assert hours == sorted(hours) and hours[2] > 0.43 and hours[-2] > 0.43 + 1.81  # each run after the last
    assert rows[-1]["objective"] == "z = 0" and float(rows[-1]["psnr_rgb_z0"]) == pytest.approx(20.6001, abs=1e-4)
    assert (tmp_path / "color_curve.png").stat().st_size > 0
    assert color_curve.shipped_reference() == pytest.approx(20.748, abs=1e-3)


def test_ship_model_curve_keeps_a_label_with_a_comma(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import ship_model

    repo, run_dir = tmp_path / "repo", tmp_path / "run"
    (repo / "checkpoints").mkdir(parents=True)
    (run_dir / "csv" / "version_0").mkdir(parents=True)
    (run_dir / "csv" / "version_0" / "metrics.csv").write_text(
        "step,val/psnr_y_z0,val/psnr_y_sample,val/lr_psnr_y,val/train_seconds\n999,39.1,39.0,42.0,3600\n"
    )
    monkeypatch.setattr(ship_model, "REPO", repo)
    label = "held-out clean (16 photos, downscaled by 2)"
    args = argparse.Namespace(name="x2", session="17", validation=label, run_dir=str(run_dir), prior_hours=4.95)
    ship_model.write_curve(args, 2)
    rows = ship_model.read_prior_curve(repo / "checkpoints" / "irn_x2_curve.csv")
    assert [(r["validation"], r["train_hours"], r["step"]) for r in rows] == [(label, "5.9500", "1000")]
