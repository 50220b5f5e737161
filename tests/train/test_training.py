"""Training: the objective, a short run, resume after SIGKILL, DDP on CPU, bad configs, NaN handling.

Everything uses a one-block x2 IRN on 16x16 patches of small synthetic images, so the
whole file runs in a few minutes on two busy cores.
"""

from __future__ import annotations

import csv
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import REPO, random_irn
from PIL import Image

from irn.cli.main import main
from irn.nn.network import IRN, quantize
from irn.train.callbacks import AtomicCheckpointIO
from irn.train.config import ConfigError, config_from_dict, load_config
from irn.train.export import export_checkpoint
from irn.train.module import IRNLightning, lr_factor


def write_images(folder: Path, n: int = 4, size: tuple[int, int] = (40, 48)) -> Path:
    """Smooth random colour images (PNG), one smaller than a 16-pixel patch side in height."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = size if i else (12, 30)
        low = rng.uniform(0, 255, (h // 4 + 2, w // 4 + 2, 3)).astype(np.uint8)
        img = Image.fromarray(low).resize((w, h), Image.BICUBIC)
        img.save(folder / f"img{i}.png")
    return folder


def tiny_config(tmp_path: Path, **sections: dict) -> dict:
    train = write_images(tmp_path / "train")
    raw = {
        "model": {"scale": 2, "blocks_per_level": [1], "growth": 8},
        "data": {"train_dir": str(train), "val_dir": None, "patch_size": 16, "batch_size": 4, "num_workers": 0},
        "loss": {"rec_sample_fraction": 0.5, "rec_temperature_ramp_steps": 10},
        "optim": {"lr": 1e-3, "warmup_steps": 2},
        "trainer": {
            "run_dir": str(tmp_path / "run"),
            "max_steps": 5,
            "accelerator": "cpu",
            "devices": 1,
            "log_every_n_steps": 1,
            "checkpoint_every_n_steps": 1,
            "threads": 1,
            "progress_bar": False,
            "precision": "32-true",  # the same arithmetic on every CPU (auto is tested on its own)
        },
    }
    for name, values in sections.items():
        raw[name].update(values)
    return raw


def write_config(tmp_path: Path, raw: dict, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for f in sorted((run_dir / "csv").glob("version_*/metrics.csv")):
        with f.open() as fh:
            rows += list(csv.DictReader(fh))
    return rows


def run_cli(*args: str, cwd: Path = REPO, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "irn.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


# ---------------------------------------------------------------------- objective
def test_one_step_every_term_finite_and_every_parameter_gets_a_finite_gradient(tmp_path: Path) -> None:
    module = IRNLightning(config_from_dict(tiny_config(tmp_path)))
    hr = torch.rand(2, 3, 16, 16)
    terms = module.losses(hr, step=5, generator=torch.Generator().manual_seed(0))
    assert set(terms) == {"loss", "fit", "rec", "latent"}
    for key, value in terms.items():
        assert value.dim() == 0 and torch.isfinite(value), key
    cfg = module.config
    total = cfg.lambda_fit * terms["fit"] + terms["rec"] + terms["latent"]
    torch.testing.assert_close(terms["loss"], total)
    terms["loss"].backward()
    params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    assert params
    for name, p in params:
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    # the fresh network (zero last convolutions) passes the image through Haar unchanged,
    # so some gradient must reach the last convolution of every subnet
    assert all(p.grad.abs().sum() > 0 for n, p in params if n.endswith("conv5.weight"))


def test_loss_terms_follow_the_paper_definitions() -> None:
    """With an identity-initialised network, y is the Haar low band and z the high bands."""
    raw = {"model": {"scale": 2, "blocks_per_level": [1], "growth": 8}, "loss": {"rec_sample_fraction": 0.0}}
    module = IRNLightning(config_from_dict(raw))
    hr = torch.rand(3, 3, 8, 8)
    terms = module.losses(hr, step=0)
    out, _ = module.model(hr)
    from irn.imaging.resize import imresize

    fit = ((out[:, :3] - imresize(hr, scale=0.5)) ** 2).sum((1, 2, 3)).mean()
    latent = (out[:, 3:] ** 2).sum((1, 2, 3)).mean()
    torch.testing.assert_close(terms["fit"], fit)
    torch.testing.assert_close(terms["latent"], latent)
    # z = 0 (rec_sample_fraction 0): Charbonnier of the decoded quantised LR against hr
    with torch.no_grad():
        rec = module.model(torch.cat((quantize(out[:, :3]), torch.zeros_like(out[:, 3:])), 1), rev=True)[0]
    expected_rec = torch.sqrt((rec - hr) ** 2 + 1e-6).sum((1, 2, 3)).mean()
    torch.testing.assert_close(terms["rec"], expected_rec)


def test_every_loss_option_enters_the_objective_as_documented() -> None:
    """Non-default weights, Charbonnier eps, y noise and a partly sampled, tempered z, recomputed
    by hand with the same generator (noise on y first, then z for the first half of the batch)."""
    loss = {
        "lambda_fit": 1.5,
        "lambda_rec": 2.5,
        "lambda_latent": 0.3,
        "charbonnier_eps": 1e-2,
        "y_noise_std": 0.1,
        "rec_sample_fraction": 0.5,
        "rec_temperature": 0.5,
        "rec_temperature_ramp_steps": 10,
    }
    module = IRNLightning(config_from_dict({"model": {"scale": 2, "blocks_per_level": [1], "growth": 8}, "loss": loss}))
    with torch.no_grad():
        for p in module.model.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.05)
    hr = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    terms = module.losses(hr, step=5, generator=torch.Generator().manual_seed(7))
    from irn.imaging.resize import imresize

    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        out, _ = module.model(hr)
        y, z = out[:, :3], out[:, 3:]
        y_q = quantize(y + 0.1 * torch.randn(y.shape, generator=gen))
        z_rec = torch.zeros_like(z)
        z_rec[:2] = torch.randn((2, *z.shape[1:]), generator=gen) * (0.5 * 5 / 10)  # temperature ramp at step 5
        rec = module.model(torch.cat((y_q, z_rec), 1), rev=True)[0]
    fit = ((y - imresize(hr, scale=0.5)) ** 2).sum((1, 2, 3)).mean()
    latent = (z**2).sum((1, 2, 3)).mean()
    rec_term = torch.sqrt((rec - hr) ** 2 + 1e-2).sum((1, 2, 3)).mean()
    torch.testing.assert_close(terms["fit"].detach(), fit)
    torch.testing.assert_close(terms["latent"].detach(), latent)
    torch.testing.assert_close(terms["rec"].detach(), rec_term)
    torch.testing.assert_close(terms["loss"].detach(), 1.5 * fit + 2.5 * rec_term + 0.3 * latent)


def test_validation_scores_the_weights_in_fp32_under_mixed_precision(tmp_path: Path) -> None:
    """Lightning runs validation_step inside the bf16 autocast of trainer.precision=bf16-mixed;
    the logged PSNRs must be those of the fp32 network (what irn rescale runs), not of bf16 maths."""
    module = IRNLightning(config_from_dict(tiny_config(tmp_path)))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    logged: dict[str, list[float]] = {}
    module.log = lambda name, value, **kw: logged.setdefault(name, []).append(float(value))  # type: ignore[method-assign]
    module._log_grid = lambda *args: None  # type: ignore[method-assign]
    hr = torch.rand(1, 3, 32, 32, generator=gen)
    module.validation_step((hr, ["a"]), 0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        module.validation_step((hr, ["a"]), 0)
        bf16_x0 = module.model.upscale(module.model.downscale(hr), z="zero")
    fp32, mixed = logged["val/psnr_y_z0"]
    assert fp32 == mixed and logged["val/psnr_y_sample"][0] == logged["val/psnr_y_sample"][1]
    assert logged["val/lr_psnr_y"][0] == logged["val/lr_psnr_y"][1]
    # the autocast does change the network's output, so the test would see bf16 maths
    assert float((bf16_x0 - module.model.upscale(module.model.downscale(hr), z="zero")).abs().max()) > 1e-3


def test_validation_runs_the_fast_path_on_the_current_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CPU validation scores through irn.pipeline.for_inference (the fast path, 3.4x faster on a
    held-out photo): the same PSNRs as the plain network, and after an optimiser step changes the
    weights in place, the new weights' PSNRs (the fast twin repacks them), never a stale copy's."""
    import irn.pipeline
    from irn.nn.fast import FastIRN
    from irn.train.module import psnr_y

    module = IRNLightning(config_from_dict(tiny_config(tmp_path)))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    used: list[object] = []
    real = irn.pipeline.for_inference
    monkeypatch.setattr("irn.train.module.for_inference", lambda m, **kw: used.append(real(m, **kw)) or used[-1])
    logged: dict[str, list[float]] = {}
    module.log = lambda name, value, **kw: logged.setdefault(name, []).append(float(value))  # type: ignore[method-assign]
    module._log_grid = lambda *args: None  # type: ignore[method-assign]
    hr = torch.rand(1, 3, 32, 32, generator=gen)
    plain: list[float] = []
    for _ in range(2):
        with torch.no_grad():
            module.validation_step((hr, ["a"]), 0)
            plain.append(float(psnr_y(module.model.upscale(module.model.downscale(hr), z="zero"), hr, 2).mean()))
            for p in module.model.parameters():  # what an optimiser step does
                p.mul_(1.5)
    assert all(isinstance(net, FastIRN) for net in used) and len(used) == 2
    assert plain[0] != pytest.approx(plain[1], abs=0.05)  # the step changed the figures
    assert logged["val/psnr_y_z0"] == pytest.approx(plain, abs=0.01)


@pytest.mark.parametrize(
    ("fraction", "temperature", "zero"), [(0.0, 1.0, True), (0.1, 1.0, True), (0.5, 0.0, True), (0.5, 1.0, False)]
)
def test_recommended_z_is_zero_exactly_when_the_objective_never_sampled_z(
    tmp_path: Path, fraction: float, temperature: float, zero: bool
) -> None:
    """irn export's recommended_z follows what losses() decodes: with batch 4, fraction 0.1 draws
    round(0.4) = 0 samples, and temperature 0 scales every draw to 0."""
    from irn.train.export import trained_on_zero_latent

    raw = tiny_config(tmp_path, loss={"rec_sample_fraction": fraction, "rec_temperature": temperature})
    raw["loss"]["rec_temperature_ramp_steps"] = 0
    module = IRNLightning(config_from_dict(raw))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    hr = torch.rand(4, 3, 16, 16, generator=gen)
    recs = [float(module.losses(hr, 0, torch.Generator().manual_seed(seed))["rec"]) for seed in (1, 2)]
    assert trained_on_zero_latent(module.config) is zero
    assert (recs[0] == recs[1]) is zero, recs


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_a_patch_target_is_the_crop_of_the_whole_image_bicubic_lr(scale: int) -> None:
    """Issue 29.3: the fit term's target is the official one: the patch's part of the whole training
    image's MATLAB-bicubic LR (context beyond the patch, mirrored at the image border), not the bicubic
    of the patch alone, for patches at the border, inside, and flipped/transposed."""
    from irn.imaging.resize import imresize
    from irn.train.data import random_patch, target_margin
    from irn.train.module import lr_target

    rng0 = np.random.default_rng(3)
    h, w = 10 * scale + 3, 13 * scale + 1  # not multiples of the scale: the whole image is modcropped
    image = torch.from_numpy(rng0.integers(0, 256, (3, h, w), dtype=np.uint8))
    whole = image[:, : h - h % scale, : w - w % scale].float()[None] / 255
    whole_lr = imresize(whole, scale=1.0 / scale)[0]
    cfg = config_from_dict({"model": {"scale": scale}})
    margin, patch = target_margin("haar", scale), 4 * scale
    borders = seen = 0
    for i in range(40):
        rng = np.random.default_rng([0, i])
        region = random_patch(whole[0].mul(255).round().to(torch.uint8), patch, rng, False, margin, scale)
        assert region.shape == (3, patch + 2 * margin, patch + 2 * margin)
        # where is the patch? find it in the whole image (the crop is exact)
        centre = region[:, margin:-margin, margin:-margin].float() / 255
        hits = [
            (t, left)
            for t in range(0, whole.shape[-2] - patch + 1, scale)
            for left in range(0, whole.shape[-1] - patch + 1, scale)
            if torch.equal(whole[0, :, t : t + patch, left : left + patch], centre)
        ]
        assert hits, "the patch's corner is a multiple of the scale"
        top, left = hits[0]
        target = lr_target(cfg, region.float()[None] / 255, margin)[0]
        expected = whole_lr[:, top // scale : (top + patch) // scale, left // scale : (left + patch) // scale]
        torch.testing.assert_close(target, expected, atol=1e-5, rtol=0)
        borders += top == 0 or left == 0 or top + patch == whole.shape[-2] or left + patch == whole.shape[-1]
        seen += 1
        # without the context the target differs next to the patch border (what irn train did before)
        alone = lr_target(cfg, centre[None])[0]
        assert (alone - expected).abs().max() > 1e-3
    assert borders > 0 and seen == 40
    # flips and the transpose of the whole region commute with the target (the patch stays centred)
    region = random_patch(whole[0].mul(255).round().to(torch.uint8), patch, np.random.default_rng(5), False, margin)
    x = region.float()[None] / 255
    for op in (lambda t: t.flip(-1), lambda t: t.flip(-2), lambda t: t.transpose(-1, -2)):
        torch.testing.assert_close(lr_target(cfg, op(x), margin), op(lr_target(cfg, x, margin)), atol=1e-5, rtol=0)


def test_training_batches_carry_the_target_context(tmp_path: Path) -> None:
    """The data module gives each patch its context margin and aligns it to the scale; a colour model
    (per-pixel target) gets none."""
    from irn.train.data import IRNDataModule

    raw = tiny_config(tmp_path)
    cfg = config_from_dict(raw)
    data = IRNDataModule(cfg.data, 2, kind="haar")
    data.setup("fit")
    assert data.train_set is not None and data.train_set[0].shape == (3, 16 + 8, 16 + 8)
    colour = IRNDataModule(cfg.data, 1, kind="color")
    colour.setup("fit")
    assert colour.train_set is not None and colour.train_set[0].shape == (3, 16, 16)
    module = IRNLightning(cfg)
    batch = torch.stack([data.train_set[i] for i in range(4)])
    region = batch.float() / 255
    hr = region[..., 4:-4, 4:-4]
    from irn.train.module import lr_target

    with_context = module.losses(hr, 0, torch.Generator().manual_seed(0), lr_ref=lr_target(cfg, region, 4))
    alone = module.losses(hr, 0, torch.Generator().manual_seed(0))
    assert not torch.allclose(with_context["fit"], alone["fit"])
    torch.testing.assert_close(with_context["rec"], alone["rec"])


def test_precision_auto_is_bf16_exactly_where_the_cpu_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 29.2: trainer.precision auto picks bf16-mixed on a CPU with native bf16 and fp32 on one
    without (detected at run time), says which at the start, and other values pass through."""
    from irn.train import hardware
    from irn.train import run as run_module

    cfg = config_from_dict(tiny_config(tmp_path, trainer={"precision": "auto", "max_steps": 2}))
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    assert hardware.resolve_precision(cfg)[0] == "32-true"
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)
    assert hardware.resolve_precision(cfg)[0] == "bf16-mixed"
    fixed = config_from_dict(tiny_config(tmp_path, trainer={"precision": "bf16-mixed"}))
    assert hardware.resolve_precision(fixed) == ("bf16-mixed", "as configured")
    assert run_module.train(cfg) == 0
    assert "irn train: precision bf16-mixed (auto: this CPU computes bf16 natively" in capsys.readouterr().err
    # the real probe agrees with the CPU's flags where the kernel lists them
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    monkeypatch.undo()
    if "flags" in flags:
        native = " avx512_bf16" in flags or " amx_bf16" in flags
        assert hardware.cpu_has_native_bf16() == native


@pytest.mark.parametrize("native", [True, False])
def test_channels_last_auto_follows_bf16_on_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], native: bool
) -> None:
    """trainer.channels_last auto (the default) is on exactly for bf16-mixed training on a CPU (where it
    was 1.45x the steps per hour), off for fp32 (slower on an AVX2-only CPU), and the run says which;
    true / false are taken as they are."""
    from irn.train import hardware
    from irn.train import run as run_module

    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: native)
    cfg = config_from_dict(tiny_config(tmp_path, trainer={"precision": "auto", "max_steps": 2}))
    assert cfg.trainer.channels_last == "auto"
    assert hardware.resolve_channels_last(cfg)[0] is native
    module = IRNLightning(cfg)
    first_conv = next(m for m in module.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.weight.is_contiguous(memory_format=torch.channels_last) is native
    fp32 = config_from_dict(tiny_config(tmp_path, trainer={"precision": "32-true"}))
    assert hardware.resolve_channels_last(fp32)[0] is False
    for value in (True, False):
        fixed = config_from_dict(tiny_config(tmp_path, trainer={"precision": "32-true", "channels_last": value}))
        assert hardware.resolve_channels_last(fixed) == (value, "as configured")
    assert run_module.train(cfg) == 0
    said = "channels-last on (auto: bf16 training on this CPU)" if native else "channels-last off (auto:"
    assert said in capsys.readouterr().err


def test_lr_schedule_warmup_and_milestones() -> None:
    assert lr_factor(0, 4, [10], 0.5) == pytest.approx(0.25)
    assert lr_factor(3, 4, [10], 0.5) == 1.0
    assert lr_factor(9, 0, [10, 20], 0.5) == 1.0
    assert lr_factor(10, 0, [10, 20], 0.5) == 0.5
    assert lr_factor(25, 0, [10, 20], 0.5) == 0.25


# ---------------------------------------------------------------------- a short run
def test_thirty_steps_lower_the_loss_and_write_logs_and_checkpoints(tmp_path: Path) -> None:
    from irn.train.run import train

    raw = tiny_config(tmp_path, trainer={"max_steps": 30, "checkpoint_every_n_steps": 10})
    raw["loss"] = {"rec_sample_fraction": 1.0}  # the paper's objective: a fixed target, no ramp
    raw["data"]["val_dir"] = str(write_images(tmp_path / "val", n=2, size=(24, 20)))
    raw["trainer"]["val_every_n_steps"] = 15
    cfg = config_from_dict(raw)
    assert train(cfg) == 0
    run = Path(cfg.trainer.run_dir)
    rows = read_metrics(run)
    losses = [float(r["loss"]) for r in rows if r.get("loss")]
    assert len(losses) >= 25
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    for key in ("train/fit", "train/rec", "train/latent"):
        assert any(r.get(key) for r in rows), key
    val = [r for r in rows if r.get("val/psnr_y_z0")]
    assert len(val) == 2 and all(float(r["val/lr_psnr_y"]) > 20 for r in val)
    assert list((run / "tb").rglob("events.out.tfevents.*"))
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "checkpoints" / "best.ckpt").is_file()
    assert not list((run / "checkpoints").glob("*.tmp"))
    # export -> irn.load
    meta = export_checkpoint(run / "checkpoints" / "last.ckpt", tmp_path / "model.pt")
    assert meta["steps"] == 30 and meta["config"]["model"]["blocks_per_level"] == [1]
    import irn

    model = irn.load(tmp_path / "model.pt")
    assert model.metadata["steps"] == 30 and model.metadata["data"] == str(tmp_path / "train")
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    trained = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items()}
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, trained[k])


# ---------------------------------------------------------------------- faults
def _model_and_optimizer(path: Path) -> tuple[dict[str, torch.Tensor], list[torch.Tensor], int]:
    ckpt = torch.load(path, weights_only=True)
    opt_state = [t for s in ckpt["optimizer_states"][0]["state"].values() for t in s.values() if torch.is_tensor(t)]
    return ckpt["state_dict"], opt_state, int(ckpt["global_step"])


def start_training(cfg_path: Path) -> subprocess.Popen[str]:
    """``irn train --config cfg_path`` in a child process (stderr piped, one thread)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "irn.cli", "train", "--config", str(cfg_path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    """The weights, the optimiser and the weights' moving average (optim.ema_decay: a checkpoint written at
    the end of a step holds that step's update) are bit for bit those of a run never stopped."""
    optim = {"lr": 1e-3, "warmup_steps": 2, "ema_decay": 0.9}
    raw = tiny_config(tmp_path, trainer={"max_steps": 100000, "run_dir": str(tmp_path / "killed")}, optim=optim)
    cfg_path = write_config(tmp_path, raw)
    proc = start_training(cfg_path)
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    killed_at = 0
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"training exited early: {proc.stderr.read()[-2000:]}")
            if last.is_file():
                killed_at = _model_and_optimizer(last)[2]  # atomic writes: always a whole file
                if killed_at >= 3:
                    break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert killed_at >= 3, "no checkpoint appeared in time"
    killed_at = _model_and_optimizer(last)[2]
    target = killed_at + 3
    resumed = run_cli("train", "--config", str(cfg_path), "--resume", f"--trainer.max_steps={target}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    raw_ref = tiny_config(tmp_path, trainer={"max_steps": target, "run_dir": str(tmp_path / "straight")}, optim=optim)
    ref = run_cli("train", "--config", str(write_config(tmp_path, raw_ref, "ref.yaml")))
    assert ref.returncode == 0, ref.stderr[-2000:]

    params_a, opt_a, step_a = _model_and_optimizer(last)
    params_b, opt_b, step_b = _model_and_optimizer(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    assert step_a == step_b == target
    assert params_a.keys() == params_b.keys() and any(k.startswith("ema.") for k in params_a)
    for k in params_a:
        torch.testing.assert_close(params_a[k], params_b[k], rtol=0, atol=0, msg=k)
    assert len(opt_a) == len(opt_b) > 0
    for a, b in zip(opt_a, opt_b, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # the resumed run logged the steps after the kill (a second CSV version)
    steps = {int(r["step"]) for r in read_metrics(tmp_path / "killed") if r.get("loss")}
    assert target - 1 in steps


# Ctrl+C (SIGINT, exit 130), signals during validation, checkpoint writes and DDP barriers: tests/train/test_soak.py
def test_a_signal_stops_training_writes_last_and_says_how_to_continue(tmp_path: Path) -> None:
    signum, code, name = signal.SIGTERM, 143, "SIGTERM"
    raw = tiny_config(tmp_path, trainer={"max_steps": 100000, "checkpoint_every_n_steps": 1000})
    cfg_path = write_config(tmp_path, raw)
    proc = start_training(cfg_path)
    metrics = tmp_path / "run" / "csv" / "version_0" / "metrics.csv"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None and not metrics.is_file():
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()[-2000:]
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert last.is_file(), f"no checkpoint after {name} (checkpoint_every_n_steps was 1000)"
    step = torch.load(last, weights_only=True)["global_step"]
    assert 1 <= step < 1000
    # unfinished is not success: the shell's code for the signal, and one line saying how to go on
    assert proc.returncode == code, err[-2000:]
    assert f"irn train: stopped by {name} at step {step}; checkpoint: {last}" in err
    assert f"continue with: irn train --resume {last}" in err
    assert "Traceback" not in err


def test_atomic_checkpoint_keeps_the_old_file_when_a_write_fails(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)

    class Unpicklable:
        def __reduce__(self) -> tuple:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint({"step": 2, "w": Unpicklable()}, path)
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_nonfinite_steps_are_skipped_then_the_run_stops_with_a_usable_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A NaN loss (the step returns None) or NaN gradients behind a finite loss (the gradients are
    dropped before the optimizer): both skip the step, count towards max_nonfinite_steps, stop."""
    if where == "loss":
        real_losses = IRNLightning.losses

        def nan_loss(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            terms = real_losses(self, *args, **kwargs)
            return {**terms, "loss": terms["loss"] * float("nan")}

        monkeypatch.setattr(IRNLightning, "losses", nan_loss)
    else:

        def nan_gradients(self) -> None:  # noqa: ANN001
            for p in self.model.parameters():
                if p.grad is not None:
                    p.grad.fill_(float("nan"))

        monkeypatch.setattr(IRNLightning, "on_after_backward", nan_gradients)
    optim = {"lr": 1e-3, "warmup_steps": 2, "ema_decay": 0.99}  # a skipped step leaves the average too
    raw = tiny_config(tmp_path, trainer={"max_steps": 50, "max_nonfinite_steps": 3}, optim=optim)
    cfg_path = write_config(tmp_path, raw)
    assert main(["train", "--config", str(cfg_path)]) == 2
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("irn: error:")]
    assert len(lines) == 1 and "3 non-finite losses or gradients in a row" in lines[0], err[-1500:]
    assert [line for line in out.splitlines() if "step skipped" in line] == [
        f"irn train: non-finite loss or gradient at step {k}, step skipped ({k + 1} in a row)" for k in range(3)
    ]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["global_step"] == 3
    torch.manual_seed(0)  # what L.seed_everything(trainer.seed=0) does before the network is built
    fresh = IRNLightning(load_config(cfg_path)).state_dict()
    for k, v in ckpt["state_dict"].items():
        assert torch.isfinite(v).all(), k
        torch.testing.assert_close(v, fresh[k], rtol=0, atol=0)  # no step was taken
    assert math.isclose(float(ckpt["irn"]["nonfinite_total"]), 3)
    assert any(k.startswith("ema.") for k in ckpt["state_dict"]) and ckpt["irn"]["ema_updates"] == 0


def test_fp16_overflows_are_left_to_the_grad_scaler(tmp_path: Path) -> None:
    """Under 16-mixed, inf gradients are the GradScaler's business (it skips the step and lowers the
    scale); they must not count towards max_nonfinite_steps. Under other precisions they do."""
    from types import SimpleNamespace

    module = IRNLightning(config_from_dict(tiny_config(tmp_path)))
    module.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    for precision, counted in (("16-mixed", 0), ("32-true", 1), ("bf16-mixed", 2)):
        module.trainer = SimpleNamespace(precision=precision, global_step=0)  # type: ignore[assignment]
        for p in module.model.parameters():
            p.grad = torch.full_like(p, float("inf"))
        module.on_before_optimizer_step(None)  # type: ignore[arg-type]
        assert module.nonfinite_in_row == counted
        assert all((p.grad is None) == (precision != "16-mixed") for p in module.model.parameters())
    # under 16-mixed a step with a finite loss (it reached the optimizer) ends a run of NaN losses too
    module.trainer = SimpleNamespace(precision="16-mixed", global_step=0)  # type: ignore[assignment]
    for p in module.model.parameters():
        p.grad = torch.zeros_like(p)
    module.on_before_optimizer_step(None)  # type: ignore[arg-type]
    assert module.nonfinite_in_row == 0


# ---------------------------------------------------------------------- bad configs
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["trainer"].update(max_stepz=3), "unknown key 'trainer.max_stepz'"),
        (lambda r: r.update(trainr={}), "unknown section 'trainr'"),
        (lambda r: r["data"].update(train_dir="no/such/folder"), "data.train_dir: folder 'no/such/folder' does not"),
        (lambda r: r["data"].update(patch_size=15), "data.patch_size 15 is not a positive multiple of model.scale 2"),
        (lambda r: r["model"].update(scale=3), "model.scale must be 2, 4 or 8"),
        (lambda r: r["optim"].update(lr="fast"), "optim.lr: expected a number, got 'fast'"),
        (lambda r: r["optim"].update(lr=float("nan")), "optim.lr: expected a finite number, got nan"),
        (lambda r: r["optim"].update(gamma=float("inf")), "optim.gamma: expected a finite number, got inf"),
        (lambda r: r["loss"].update(charbonnier_eps=float("nan")), "loss.charbonnier_eps: expected a finite number"),
        (lambda r: r["loss"].update(lambda_fit=-1), "loss.lambda_fit must be >= 0, got -1"),
        (lambda r: r["loss"].update(lambda_latent=-0.5), "loss.lambda_latent must be >= 0, got -0.5"),
        (lambda r: r["model"].update(blocks_per_level=[1, 1]), "needs 1 entries for scale 2"),
        (lambda r: r["model"].update(init_log_scale=1.0), "model.init_log_scale must be in (-clamp, clamp)"),
        (lambda r: r["model"].update(init_log_scale=[0.0, 0.9]), "needs one value or 1 (one per Haar level)"),
        (lambda r: r["model"].update(growth=0), "model.growth must be >= 1, got 0"),
        (lambda r: r["model"].update(blocks_per_level=[0]), "model.blocks_per_level entries must be >= 1"),
        (lambda r: r["optim"].update(gamma=-1), "optim.gamma must be > 0"),
        (lambda r: r["optim"].update(weight_decay=-0.1), "optim.weight_decay, optim.warmup_steps and"),
        (lambda r: r["optim"].update(betas=[0.9, 1.5]), "optim.betas must be in [0, 1)"),
        (lambda r: r["data"].update(val_max_images=0), "data.val_max_images must be >= 1 or null"),
        (lambda r: r["trainer"].update(threads=-1), "trainer.threads must be >= 1 or null, got -1"),
        (
            lambda r: r["trainer"].update(compile="fast"),
            "trainer.compile: expected one of 'default', 'reduce-overhead', 'max-autotune' or null, got",
        ),
        (
            lambda r: r["trainer"].update(compile=True),
            "trainer.compile: expected one of 'default', 'reduce-overhead', 'max-autotune' or null, got",
        ),
        # Lightning's own checks, reported as one line before the run folder is made
        (lambda r: r["trainer"].update(precision="64bit"), "trainer: Precision '64bit' is invalid."),
        (lambda r: r["trainer"].update(max_time="tomorrow"), "trainer: `Timer(duration='tomorrow')` is not a valid"),
        (lambda r: r["trainer"].update(strategy="nope"), "trainer: You selected an invalid strategy name"),
        (lambda r: r["trainer"].update(devices=0), "trainer: `Trainer(devices=0)` value is not a valid input"),
        (lambda r: r["trainer"].update(num_nodes=0), "trainer: `num_nodes` must be a positive integer, but got 0"),
    ],
)
def test_bad_configs_fail_with_one_line_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit, message: str
) -> None:
    raw = tiny_config(tmp_path)
    edit(raw)
    cfg_path = write_config(tmp_path, raw)
    assert main(["train", "--config", str(cfg_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("irn: error:") and message in err, err
    assert not (tmp_path / "run").exists()


def test_a_compiled_module_pickles_and_compiles_again_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ddp_spawn pickles the LightningModule: the compiled function is left out and rebuilt."""
    import pickle

    calls: list[str | None] = []
    monkeypatch.setattr(torch, "compile", lambda fn, mode=None, dynamic=None: calls.append(mode) or fn)
    module = IRNLightning(config_from_dict(tiny_config(tmp_path, trainer={"compile": "max-autotune"})))
    clone = pickle.loads(pickle.dumps(module))
    assert calls == ["max-autotune"] and clone._compiled_flow is None
    out, _ = clone.flow(torch.rand(1, 3, 8, 8))
    assert calls == ["max-autotune", "max-autotune"] and out.shape == (1, 12, 4, 4)


def test_compile_on_a_cpu_without_a_compiler_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXX", "no-such-cxx-compiler")
    raw = tiny_config(tmp_path, trainer={"compile": "default"})
    assert main(["train", "--config", str(write_config(tmp_path, raw))]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "irn: error: trainer.compile 'default' on the CPU needs a C++ compiler ('no-such-cxx-compiler' not found; "
        "set CXX, or trainer.compile: null)"
    )
    assert not (tmp_path / "run").exists()


def test_compiled_training_runs_the_compiled_flow_and_matches_eager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``trainer.compile`` routes both passes of the objective through ``torch.compile`` with the
    configured mode, keeps the state dict's keys and trains to the eager run's weights. The
    compiler backend is swapped for ``aot_eager`` (same graphs, dynamo + autograd tracing, no C++
    code generation: inductor takes minutes on a 2-core CPU)."""
    real_compile = torch.compile
    calls: list[dict] = []

    def aot_eager_compile(fn, mode=None, **kwargs):  # noqa: ANN001, ANN202
        compiled = real_compile(fn, backend="aot_eager")

        def counted(*args):  # noqa: ANN002, ANN202
            calls[-1]["runs"] += 1
            return compiled(*args)

        calls.append({"mode": mode, "runs": 0, "dynamic": kwargs.get("dynamic")})
        return counted

    ckpts = {}
    for name, mode in (("eager", None), ("compiled", "reduce-overhead")):
        raw = tiny_config(tmp_path / name, trainer={"max_steps": 3, "compile": mode})
        with monkeypatch.context() as m:
            m.setattr(torch, "compile", aot_eager_compile)
            assert main(["train", "--config", str(write_config(tmp_path, raw, f"{name}.yaml"))]) == 0
        ckpts[name] = torch.load(tmp_path / name / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    # 3 steps x (forward, reverse), static shapes (one graph per pass, no symbolic recompile)
    assert calls == [{"mode": "reduce-overhead", "runs": 6, "dynamic": False}]
    eager, compiled = ckpts["eager"]["state_dict"], ckpts["compiled"]["state_dict"]
    assert list(compiled) == list(eager) and ckpts["compiled"]["global_step"] == 3
    moved = max(float((eager[k] - IRNLightning(config_from_dict(raw)).state_dict()[k]).abs().max()) for k in eager)
    assert moved > 1e-4  # the steps changed the weights
    for k in eager:
        torch.testing.assert_close(compiled[k], eager[k], rtol=1e-4, atol=1e-5)


def test_a_compiler_failure_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """torch.compile's own failures (an inductor bug, e.g. torch 2.14's CPU lowering of symbolic shapes)
    surface at the first step: one line naming trainer.compile and how to train without it."""
    import torch._inductor.exc as inductor_exc

    def failing_compile(fn, mode=None, **kwargs):  # noqa: ANN001, ANN202
        def run(*args):  # noqa: ANN002, ANN202
            raise inductor_exc.InductorError(TypeError("cannot determine truth value of Relational"), "x")

        return run

    monkeypatch.setattr(torch, "compile", failing_compile)
    raw = tiny_config(tmp_path, trainer={"max_steps": 2, "compile": "default"})
    assert main(["train", "--config", str(write_config(tmp_path, raw))]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("irn: error: trainer.compile: torch's compiler failed (")
    assert "trainer.compile: null" in err[-1] and "Traceback" not in "\n".join(err)


def test_validation_images_too_small_are_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    val = tmp_path / "val"
    val.mkdir()
    Image.new("RGB", (40, 40)).save(val / "ok.png")
    Image.new("RGB", (5, 30)).save(val / "thin.png")  # 4 px after the modcrop: under 3 x 2
    raw = tiny_config(tmp_path, data={"val_dir": str(val)})
    assert main(["train", "--config", str(write_config(tmp_path, raw))]) == 2
    assert capsys.readouterr().err.strip() == (
        f"irn: error: data.val_dir: {val / 'thin.png'} is 5x30, too small to validate at scale 2 "
        "(needs at least 6x6: a 2 px border is cropped per side)"
    )
    assert not (tmp_path / "run").exists()
    # only the images validation uses are checked (data.val_max_images, in name order)
    raw["data"]["val_max_images"] = 1
    raw["trainer"]["max_steps"] = 1
    assert main(["train", "--config", str(write_config(tmp_path, raw))]) == 0


def test_a_run_dir_that_is_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken").write_text("not a folder")
    raw = tiny_config(tmp_path, trainer={"run_dir": str(tmp_path / "taken" / "run")})
    assert main(["train", "--config", str(write_config(tmp_path, raw))]) == 2
    err = capsys.readouterr().err.strip()
    run_dir, taken = tmp_path / "taken" / "run", tmp_path / "taken"
    assert err == f"irn: error: trainer.run_dir {run_dir}: {taken} is a file, not a folder"
    assert (
        main(
            [
                "train",
                "--config",
                str(write_config(tmp_path, {**raw, "trainer": {**raw["trainer"], "run_dir": str(taken)}})),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.strip() == f"irn: error: trainer.run_dir {taken}: is a file, expected a folder"
    assert (tmp_path / "taken").read_text() == "not a folder"


def test_resume_and_export_check_their_paths_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tiny_config(tmp_path, trainer={"max_steps": 1})
    cfg_path = write_config(tmp_path, raw)
    assert main(["train", "--config", str(cfg_path)]) == 0
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    config_yaml = (tmp_path / "run" / "config.yaml").read_text()
    capsys.readouterr()
    png = tmp_path / "train" / "img1.png"
    cases = [
        (["--resume", str(png)], f"irn: error: --resume {png}: not a readable training checkpoint ("),
        (
            ["--resume", "--model.growth=4", "--trainer.max_steps=3"],
            f"irn: error: --resume {last}: its network (growth 8) is not the config's (growth 4)",
        ),
        (
            ["--resume", str(last), "--model.blocks_per_level=[2]", "--trainer.max_steps=3"],
            f"irn: error: --resume {last}: its network (blocks_per_level [1]) is not the config's "
            "(blocks_per_level [2])",
        ),
    ]
    for extra, message in cases:
        assert main(["train", "--config", str(cfg_path), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(message) and err.count("\n") == 0, err
    # without --config (the checkpoint's own), an override cannot change the network either
    assert main(["train", "--resume", str(last), "--model.growth=4", "--trainer.max_steps=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"irn: error: --resume {last}: its network (growth 8) is not the config's (growth 4)"
    # resuming into a folder that holds another run's last.ckpt would overwrite it
    other = tmp_path / "other" / "checkpoints"
    other.mkdir(parents=True)
    (other / "last.ckpt").write_bytes(last.read_bytes())
    run_dir_override = f"--trainer.run_dir={tmp_path / 'other'}"
    assert (
        main(["train", "--config", str(cfg_path), "--resume", str(last), run_dir_override, "--trainer.max_steps=3"])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"irn: error: --resume {last}: this run would write into {other}, over the last.ckpt")
    # a run already at max_steps has nothing to do: say so, do not exit 0 silently
    assert main(["train", "--resume", str(last)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"irn: error: --resume {last}: the run is at step 1, trainer.max_steps is 1: nothing to do "
        "(raise --trainer.max_steps to train on)"
    )
    assert (tmp_path / "run" / "config.yaml").read_text() == config_yaml
    assert torch.load(last, weights_only=True)["global_step"] == 1
    # irn export checks its output the same way
    for out, message in ((tmp_path, "is a folder, expected a file"), (png / "m.pt", f"{png} is a file, not a folder")):
        assert main(["export", str(last), "-o", str(out)]) == 2
        assert capsys.readouterr().err.strip() == f"irn: error: -o {out}: {message}"
    assert main(["export", str(last), "-o", str(last)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"irn: error: -o {last} is the training checkpoint: writing it would overwrite it"
    assert torch.load(last, weights_only=True)["global_step"] == 1
    # a training checkpoint where a model file is expected: say to export it
    for command in (["eval", "--model", str(last)], ["rescale", "down", str(png), "--model", str(last)]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert err == (
            f"irn: error: {last}: a training checkpoint (step 1 of irn train), not a model file; "
            f"export it first: irn export {last} -o model.pt"
        ), err


def test_init_from_takes_a_shipped_name_and_export_records_the_data_folder_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from irn.zoo import load_checkpoint, resolve

    shipped, _ = load_checkpoint(resolve("x2"))
    cfg = config_from_dict({"model": {"scale": 2, "blocks_per_level": [8], "init_from": "x2"}})
    started = IRNLightning(cfg).model.state_dict()
    for k, v in shipped.state_dict().items():
        torch.testing.assert_close(started[k], v, rtol=0, atol=0, msg=k)
    # a name that is neither shipped nor a file: one line before anything starts
    raw = tiny_config(tmp_path, model={"init_from": "x5"})
    assert main(["train", "--config", str(write_config(tmp_path, raw))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("irn: error: model.init_from: x5: no such checkpoint file (shipped models: x2, x4")
    # relative data folders: the exported model names the folder the run read, from anywhere
    raw = tiny_config(tmp_path, trainer={"max_steps": 1, "run_dir": "rel_run"})
    raw["data"]["train_dir"] = "train"
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", str(write_config(tmp_path, raw, "rel.yaml"))]) == 0
    monkeypatch.chdir(tmp_path / "rel_run")
    assert main(["export", "checkpoints/last.ckpt", "-o", "m.pt"]) == 0
    assert torch.load("m.pt", weights_only=True)["metadata"]["data"] == str(tmp_path / "train")


def test_bad_overrides_and_missing_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = write_config(tmp_path, tiny_config(tmp_path))
    assert main(["train", "--config", str(cfg_path), "--data.patch_size=9"]) == 2
    assert "not a positive multiple" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg_path), "--resume"]) == 2
    assert "--resume: no checkpoint at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", str(cfg_path), "--trainer.nope=1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "irn: error: irn train: unrecognized arguments: --trainer.nope=1 (see 'irn train --help')"
    assert main(["train", "--config", str(cfg_path), "--optim.lr=.nan"]) == 2
    assert "optim.lr: expected a finite number, got nan" in capsys.readouterr().err
    cfg = load_config(cfg_path, ["--optim.lr=5e-4", "--loss.lambda_fit=16"])  # YAML 1.1 reads 5e-4 as text
    assert cfg.optim.lr == 5e-4 and cfg.loss.lambda_fit == 16.0
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="is a folder, not a config file"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match=r"img1.png: not a YAML config \(not UTF-8 text\)"):
        load_config(tmp_path / "train" / "img1.png")


def test_train_help_documents_every_config_field(capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    from irn.train.config import SECTIONS, field_help

    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f"--{section}.{f.name} V" in out
    trainer = field_help(SECTIONS["trainer"])
    assert trainer["compile"] == (
        "torch.compile the flow of the training step: null (off), default, reduce-overhead (+ CUDA graphs), "
        "max-autotune (+ kernel autotuning and CUDA graphs). one of 'default', 'reduce-overhead', 'max-autotune' "
        "or null; default null"
    )
    assert field_help(SECTIONS["model"])["scale"] == "an integer; default 2"
    assert field_help(SECTIONS["optim"])["betas"] == "a list of numbers; default [0.9, 0.999]"


def test_shipped_configs_parse_and_keep_the_paper_recipe() -> None:
    for scale in (2, 4, 8):
        cfg = load_config(REPO / "configs" / f"x{scale}.yaml")
        assert cfg.model.scale == scale and cfg.lambda_fit == scale**2
        assert cfg.model.blocks_per_level == [8] * int(math.log2(scale))
        assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.betas) == (2e-4, 1e-5, [0.9, 0.999])
        assert cfg.optim.milestones == [100000, 200000, 300000, 400000] and cfg.trainer.max_steps == 500000
        assert (cfg.data.batch_size, cfg.data.patch_size, cfg.trainer.gradient_clip_val) == (16, 144, 10.0)
        assert cfg.loss.rec_sample_fraction == 1.0 and cfg.loss.rec_temperature_ramp_steps == 0
    quick = load_config(REPO / "configs" / "quick.yaml")
    assert quick.data.train_dir == "../shared/datasets/SunHays80" and quick.trainer.accelerator == "cpu"
    assert quick.model.init_log_scale == 0.9 and quick.loss.rec_sample_fraction == 1.0


def test_x3_and_color_configs_parse_with_the_official_recipes() -> None:
    x3 = load_config(REPO / "configs" / "x3.yaml")
    assert (x3.model.kind, x3.model.scale, x3.model.blocks_per_level, x3.lambda_fit) == ("conv", 3, [12], 9.0)
    assert x3.data.patch_size % 3 == 0 and x3.trainer.monitor == "val/psnr_y_z0"
    color = load_config(REPO / "configs" / "color.yaml")
    assert (color.model.kind, color.model.scale, color.model.blocks_per_level) == ("color", 1, [8])
    assert (color.lambda_fit, color.data.batch_size, color.trainer.monitor) == (3.0, 8, "val/psnr_rgb_z0")
    # the official IRN-Color decodes z = 0 in its reconstruction term (gaussian_scale 0), so its export
    # recommends z = 0, as the colour architecture does for an official file
    from irn.train.export import trained_on_zero_latent
    from irn.zoo.registry import get_architecture

    assert color.loss.lambda_latent == 1.0 and trained_on_zero_latent(color)
    assert get_architecture("color").latent == "zero"
    from irn.train.module import network_config

    assert network_config(color).lr_channels == 1


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ({"kind": "haar", "scale": 3}, "model.kind conv"),
        ({"kind": "color", "scale": 2}, "scale must be 1"),
        ({"kind": "conv", "scale": 3, "blocks_per_level": [1, 1]}, "1 entries"),
        ({"kind": "hexagon"}, "model.kind"),
    ],
)
def test_bad_kind_settings_are_one_line(tmp_path: Path, model: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        config_from_dict(tiny_config(tmp_path, model=model))


def test_monitor_must_be_a_figure_of_the_kind(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="val/psnr_rgb_z0 or val/psnr_rgb_sample"):
        config_from_dict(tiny_config(tmp_path, model={"kind": "color", "scale": 1}))
    with pytest.raises(ConfigError, match="val/psnr_y_z0 or val/psnr_y_sample"):
        config_from_dict(tiny_config(tmp_path, trainer={"monitor": "val/psnr_rgb_z0"}))


@pytest.mark.parametrize("kind", ["conv", "color"])
def test_x3_and_color_runs_learn_validate_and_export(tmp_path: Path, kind: str) -> None:
    """A short real run of each other kind: the loss falls, validation logs the kind's figures, the
    export loads as its network, and the colour objective guides the grey image towards the luma."""
    from irn.nn import IRNColor, rgb_to_luma
    from irn.train.run import train

    scale = 3 if kind == "conv" else 1
    monitor = "val/psnr_rgb_sample" if kind == "color" else "val/psnr_y_sample"
    raw = tiny_config(
        tmp_path,
        model={"kind": kind, "scale": scale, "init_log_scale": 0.5},
        data={"patch_size": 18 if kind == "conv" else 16},
        trainer={"max_steps": 30, "checkpoint_every_n_steps": 15, "val_every_n_steps": 15, "monitor": monitor},
    )
    raw["loss"] = {"rec_sample_fraction": 1.0}
    raw["data"]["val_dir"] = str(write_images(tmp_path / "val", n=2, size=(24, 21)))
    cfg = config_from_dict(raw)
    module = IRNLightning(cfg)
    hr = torch.rand(2, 3, 18, 18)
    out, _ = module.model(hr)
    terms = module.losses(hr, step=0, generator=torch.Generator().manual_seed(0))
    c = 1 if kind == "color" else 3
    target = rgb_to_luma(hr) if kind == "color" else None
    if target is not None:  # L_fit is the squared distance of the grey output to the luma
        torch.testing.assert_close(terms["fit"], ((out[:, :1] - target) ** 2).flatten(1).sum(1).mean())
    assert out.shape[1] == c + module.model.latent_channels
    assert train(cfg) == 0
    rows = read_metrics(Path(cfg.trainer.run_dir))
    losses = [float(r["loss"]) for r in rows if r.get("loss")]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    figures = (
        ("val/psnr_rgb_z0", "val/psnr_rgb_sample", "val/grey_psnr")
        if kind == "color"
        else (
            "val/psnr_y_z0",
            "val/psnr_y_sample",
            "val/lr_psnr_y",
        )
    )
    val = [r for r in rows if r.get(figures[0])]
    assert len(val) == 2 and all(math.isfinite(float(r[f])) for r in val for f in figures)
    # the LR (grey) image stays near its target from the start; the decodings of a 30-step model are
    # only finite figures (a sampled z of a colour model is still far off: its z carries the chroma)
    assert all(float(r[figures[2]]) > 20 for r in val), [{k: v for k, v in r.items() if "/" in k} for r in val]
    meta = export_checkpoint(Path(cfg.trainer.run_dir) / "checkpoints" / "best.ckpt", tmp_path / "model.pt")
    assert meta["best_validation"]["monitor"] == monitor
    import irn

    model = irn.load(tmp_path / "model.pt")
    assert model.kind == kind and (isinstance(model, IRNColor) == (kind == "color"))


def test_init_log_scale_makes_the_fresh_decoder_nearly_ignore_z(tmp_path: Path) -> None:
    """s = 0.9 in each of 8 blocks divides the latent by exp(7.2) on the way back: sampled-z and
    z = 0 decodings of a fresh network differ by about 1e-3, against O(1) with the official start."""
    raw = tiny_config(tmp_path)
    raw["model"].update(blocks_per_level=[8])
    hr = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    spread = {}
    for s0 in (0.0, 0.9):
        raw["model"]["init_log_scale"] = s0
        net = IRNLightning(config_from_dict(raw)).model
        with torch.no_grad():
            lr = net.downscale(hr)
            spread[s0] = float((net.upscale(lr, z="sample", seed=1) - net.upscale(lr, z="zero")).abs().max())
    assert spread[0.0] > 0.5 and spread[0.9] < 0.01, spread


def test_init_log_scale_per_level_and_init_from_keeps_trained_levels(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["model"].update(scale=4, blocks_per_level=[1, 2], init_log_scale=[0.0, 0.5])
    raw["data"]["patch_size"] = 16
    net = IRNLightning(config_from_dict(raw)).model
    couplings = [op for op in net.operations if hasattr(op, "H")]
    biases = [float(op.H.conv5.bias.detach().abs().max()) for op in couplings]
    assert biases[0] == 0.0 and all(b == pytest.approx(math.log(0.75 / 0.25)) for b in biases[1:]), biases
    # an x2 model fills level 1 (its trained weights win over the start value), level 2 starts at s = 0.5
    x2_raw = tiny_config(tmp_path)
    x2_raw["model"].update(blocks_per_level=[1], init_log_scale=0.3)
    x2 = IRNLightning(config_from_dict(x2_raw)).model
    from irn.zoo import save

    save(x2, tmp_path / "x2.pt")
    raw["model"].update(init_from=str(tmp_path / "x2.pt"), init_log_scale=0.5)
    net = IRNLightning(config_from_dict(raw)).model
    couplings = [op for op in net.operations if hasattr(op, "H")]
    torch.testing.assert_close(couplings[0].H.conv5.bias, x2.operations[1].H.conv5.bias)
    assert float(couplings[1].H.conv5.bias.detach()[0]) == pytest.approx(math.log(0.75 / 0.25))


# ---------------------------------------------------------------------- distributed
DDP_SCRIPT = textwrap.dedent(
    """
    import sys, torch, lightning as L
    from irn.train.config import load_config
    from irn.train.run import train

    class DumpParams(L.Callback):
        def on_train_end(self, trainer, module):
            torch.save({k: v.detach().clone() for k, v in module.state_dict().items()},
                       sys.argv[2] + f"/params_rank{trainer.global_rank}.pt")

    sys.exit(train(load_config(sys.argv[1]), callbacks=[DumpParams()]))
    """
)


def test_ddp_two_cpu_processes_keep_identical_parameters(tmp_path: Path) -> None:
    """Also in channels-last (the default on a CPU with native bf16): DDP broadcasts the buffers at every
    step, and the channels-last strides of the Haar weights made that fail until they stayed NCHW. With the
    weights' moving average (optim.ema_decay), which every rank keeps for itself: the same on both."""
    trainer = {"max_steps": 4, "devices": 2, "strategy": "ddp", "checkpoint_every_n_steps": 2, "channels_last": True}
    raw = tiny_config(tmp_path, trainer=trainer, optim={"lr": 1e-3, "warmup_steps": 2, "ema_decay": 0.9})
    cfg_path = write_config(tmp_path, raw)
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    # a script's folder, not the cwd, starts sys.path: point it at this checkout's irn (not an installed one)
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, str(script), str(cfg_path), str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    p0 = torch.load(tmp_path / "params_rank0.pt", weights_only=True)
    p1 = torch.load(tmp_path / "params_rank1.pt", weights_only=True)
    torch.manual_seed(0)  # what L.seed_everything(trainer.seed=0) does before the network is built
    fresh = IRNLightning(load_config(cfg_path)).state_dict()
    assert p0.keys() == p1.keys() and any(k.startswith("ema.") for k in p0)
    moved = 0
    for k in p0:
        torch.testing.assert_close(p0[k], p1[k], rtol=0, atol=0, msg=k)
        moved += int(not torch.equal(p0[k], fresh[k]))
    assert moved > 0
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 4


def test_init_from_a_smaller_scale_fills_the_first_levels(tmp_path: Path) -> None:
    from irn.zoo import save

    x2 = random_irn(2, std=0.01, last_std=0.01)
    save(x2, tmp_path / "x2.pt", {})
    raw = {"model": {"scale": 4, "blocks_per_level": [1, 1], "growth": 8, "init_from": str(tmp_path / "x2.pt")}}
    x4 = IRNLightning(config_from_dict(raw)).model
    for k, v in x2.state_dict().items():
        torch.testing.assert_close(x4.state_dict()[k], v, rtol=0, atol=0)
    assert x4.operations[3].F.conv5.weight.abs().sum() == 0  # the second level is still identity
    bad = {"model": {"scale": 4, "blocks_per_level": [2, 1], "growth": 8, "init_from": str(tmp_path / "x2.pt")}}
    with pytest.raises(ValueError, match="does not match"):
        IRNLightning(config_from_dict(bad))


# ---------------------------------------------------------------------- JPEG LR (IRN-Compression)
def test_jpeg_straight_through_and_the_restorer_get_gradients(tmp_path: Path) -> None:
    from irn.imaging.io import jpeg_roundtrip
    from irn.train.module import jpeg_quality_at, jpeg_ste

    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    y = jpeg_ste(x, 50)
    torch.testing.assert_close(y.detach(), jpeg_roundtrip(x.detach(), 50), rtol=0, atol=1e-6)  # what a JPEG holds
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))  # backward: the identity
    cfg = config_from_dict(tiny_config(tmp_path, loss={"jpeg_quality": [40, 60]}, model={"restorer": True}))
    gen = torch.Generator().manual_seed(0)
    assert {jpeg_quality_at(cfg, gen) for _ in range(50)} <= set(range(40, 61))
    module = IRNLightning(cfg)
    lr = torch.rand(2, 3, 8, 8)
    assert torch.equal(module.restorer(lr), lr)  # the CRM starts as the identity: the trained IRN's start
    terms = module.losses(torch.rand(2, 3, 16, 16), step=0, generator=torch.Generator().manual_seed(0))
    assert set(terms) == {"loss", "fit", "rec", "latent", "restore"}
    terms["loss"].backward()
    for name in ("conv_first", "trunk_conv", "conv_last"):  # the RRDB trunk joins once trunk_conv moves
        assert getattr(module.restorer, name).weight.grad.abs().sum() > 0, name
    with torch.no_grad():
        module.restorer.trunk_conv.weight.normal_(0, 1e-3)
    module.zero_grad()
    module.losses(torch.rand(2, 3, 16, 16), step=0, generator=torch.Generator().manual_seed(0))["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.restorer.parameters() if p.dim() > 1)
    assert any(p.grad.abs().sum() > 0 for n, p in module.model.named_parameters() if n.endswith("conv5.weight"))


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"model": {"restorer": True}}, "set loss.jpeg_quality"),
        ({"loss": {"jpeg_quality": 0}}, "loss.jpeg_quality must be"),
        ({"loss": {"jpeg_quality": [80, 40]}}, "loss.jpeg_quality must be"),
    ],
)
def test_bad_jpeg_settings_are_one_line(tmp_path: Path, settings: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        config_from_dict(tiny_config(tmp_path, **settings))


def test_a_jpeg_run_with_its_restorer_exports_one_file_that_eval_uses(tmp_path: Path) -> None:
    from irn.eval.protocol import evaluate
    from irn.train.run import train
    from irn.zoo import restorer_of

    raw = tiny_config(tmp_path, trainer={"max_steps": 6}, loss={"jpeg_quality": 75}, model={"restorer": True})
    raw["data"]["val_dir"] = str(write_images(tmp_path / "val", n=2, size=(24, 20)))
    raw["trainer"]["val_every_n_steps"] = 3
    cfg = config_from_dict(raw)
    assert train(cfg) == 0
    rows = read_metrics(Path(cfg.trainer.run_dir))
    assert any(r.get("train/restore") for r in rows) and any(r.get("val/psnr_y_z0") for r in rows)
    export_checkpoint(Path(cfg.trainer.run_dir) / "checkpoints" / "last.ckpt", tmp_path / "jpeg.pt")
    import irn

    model = irn.load(tmp_path / "jpeg.pt")
    assert restorer_of(model) is not None and not restorer_of(model).training
    data = write_images(tmp_path / "eval", n=2, size=(24, 20))
    data.joinpath("img0.png").unlink()  # the 12-pixel image is too small to score with SSIM
    report = evaluate(tmp_path / "jpeg.pt", [data], jpeg=75, y_only=True, device="cpu", progress=False)
    assert report["restorer"] is True and report["jpeg"] == 75


def test_init_from_a_model_with_its_restorer_trains_that_restorer_on(tmp_path: Path) -> None:
    """model.init_from an IRN file that carries a CRM: training starts from that CRM (not the identity
    start); without model.restorer the run refuses in one line rather than drop it from the model."""
    from irn.nn.restoration import CompressionRestorer, RestorerConfig
    from irn.zoo import attach_restorer, save

    base = IRNLightning(config_from_dict(tiny_config(tmp_path))).model
    crm = CompressionRestorer()
    with torch.no_grad():
        crm.conv_last.bias.fill_(0.3)
    save(attach_restorer(base, crm), tmp_path / "jpeg.pt")
    raw = tiny_config(
        tmp_path, loss={"jpeg_quality": 75}, model={"restorer": True, "init_from": str(tmp_path / "jpeg.pt")}
    )
    module = IRNLightning(config_from_dict(raw))
    assert torch.all(module.restorer.conv_last.bias == 0.3)
    raw["model"]["restorer"] = False
    with pytest.raises(ValueError, match="carries a compression restoration module: set model.restorer: true"):
        IRNLightning(config_from_dict(raw))
    save(attach_restorer(base, CompressionRestorer(RestorerConfig(features=8, blocks=1, growth=4))), tmp_path / "s.pt")
    raw["model"].update(restorer=True, init_from=str(tmp_path / "s.pt"))
    with pytest.raises(ValueError, match="is not the one training builds"):
        IRNLightning(config_from_dict(raw))


# ---------------------------------------------------------------------- moving average of the weights
def test_ema_update_is_the_warmed_up_moving_average(tmp_path: Path) -> None:
    module = IRNLightning(tiny_config(tmp_path, optim={"ema_decay": 0.9}))
    assert module.ema is not None and not any(p.requires_grad for p in module.ema.parameters())
    start = [p.detach().clone() for p in module.model.parameters()]
    with torch.no_grad():
        for p in module.model.parameters():
            p.add_(1.0)
    module.update_ema()  # n = 0: decay min(0.9, 1/10) = 0.1
    for e, s in zip(module.ema.parameters(), start, strict=True):
        torch.testing.assert_close(e, s + 0.9)
    for _ in range(200):
        module.update_ema()
    for e, w in zip(module.ema.parameters(), module.model.parameters(), strict=True):
        torch.testing.assert_close(e, w, rtol=0, atol=1e-6)  # constant weights: the average reaches them
    assert module.ema_updates == 201
    # the optimiser never sees the average
    optimised = {id(p) for g in module.configure_optimizers()["optimizer"].param_groups for p in g["params"]}
    assert not optimised & {id(p) for p in module.ema.parameters()}


def test_ema_run_validates_checkpoints_and_exports_the_average(tmp_path: Path) -> None:
    from irn.train.run import train

    raw = tiny_config(tmp_path, optim={"lr": 1e-3, "warmup_steps": 2, "ema_decay": 0.99}, trainer={"max_steps": 8})
    raw["data"]["val_dir"] = str(write_images(tmp_path / "val", n=2, size=(24, 20)))
    raw["trainer"]["val_every_n_steps"] = 4
    cfg = config_from_dict(raw)
    assert train(cfg) == 0
    last = Path(cfg.trainer.run_dir) / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["irn"]["ema_updates"] == 8
    raw_w = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    ema_w = {k[len("ema.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("ema.")}
    assert raw_w.keys() == ema_w.keys()
    assert any(not torch.equal(raw_w[k], ema_w[k]) for k in raw_w)  # the average lags the trained weights
    export_checkpoint(last, tmp_path / "model.pt")
    import irn

    exported = irn.load(tmp_path / "model.pt")
    assert exported.metadata["weights"] == "average"
    for k, v in exported.state_dict().items():
        torch.testing.assert_close(v, ema_w[k], rtol=0, atol=0)
    # irn export --weights trained: the optimiser's weights
    assert main(["export", str(last), "-o", str(tmp_path / "trained.pt"), "--weights", "trained"]) == 0
    trained = irn.load(tmp_path / "trained.pt")
    assert trained.metadata["weights"] == "trained"
    for k, v in trained.state_dict().items():
        torch.testing.assert_close(v, raw_w[k], rtol=0, atol=0)
    assert main(["export", str(tmp_path / "model.pt"), "-o", str(tmp_path / "again.pt"), "--weights", "trained"]) == 2
    # validation scored the average: the same figure as the exported file on the validation images
    module = IRNLightning(cfg)
    module.on_load_checkpoint(ckpt)
    module.load_state_dict(ckpt["state_dict"])
    assert module.ema is not None
    for k, v in module.ema.state_dict().items():
        torch.testing.assert_close(v, ema_w[k], rtol=0, atol=0)


def test_ema_switched_on_or_off_when_resuming(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path, trainer={"max_steps": 3})
    cfg_path = write_config(tmp_path, raw)
    assert run_cli("train", "--config", str(cfg_path)).returncode == 0
    last = Path(raw["trainer"]["run_dir"]) / "checkpoints" / "last.ckpt"
    plain = torch.load(last, weights_only=True)["state_dict"]
    assert not any(k.startswith("ema.") for k in plain)
    on = run_cli("train", "--config", str(cfg_path), "--resume", "--trainer.max_steps=5", "--optim.ema_decay=0.999")
    assert on.returncode == 0, on.stderr[-2000:]
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["global_step"] == 5 and ckpt["irn"]["ema_updates"] == 2
    assert any(k.startswith("ema.") for k in ckpt["state_dict"])
    off = run_cli("train", "--config", str(cfg_path), "--resume", "--trainer.max_steps=6")
    assert off.returncode == 0, off.stderr[-2000:]
    assert not any(k.startswith("ema.") for k in torch.load(last, weights_only=True)["state_dict"])


@pytest.mark.parametrize(
    ("optim", "model", "message"),
    [
        ({"ema_decay": 1.0}, {}, "optim.ema_decay must be in (0, 1)"),
        ({"ema_decay": 0.0}, {}, "optim.ema_decay must be in (0, 1)"),
        ({"ema_decay": 0.999}, {"restorer": True}, "not with model.restorer"),
        ({"ema_decay": 0.999, "precision": "bf16-true"}, {}, "with trainer.precision bf16-true"),
    ],
)
def test_ema_config_errors(tmp_path: Path, optim: dict, model: dict, message: str) -> None:
    precision = optim.pop("precision", None)
    raw = tiny_config(tmp_path, optim=optim, model=model)
    if precision is not None:
        raw["trainer"]["precision"] = precision
    if model.get("restorer"):
        raw["loss"]["jpeg_quality"] = 90  # a valid CRM setting otherwise
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict(raw)


def test_validation_scores_the_moving_average_not_the_trained_weights(tmp_path: Path) -> None:
    from irn.train.module import psnr_y

    module = IRNLightning(config_from_dict(tiny_config(tmp_path, optim={"ema_decay": 0.99})))
    assert module.ema is not None
    logged: dict[str, float] = {}
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, float(value))  # type: ignore[method-assign]
    module._log_grid = lambda *args: None  # type: ignore[method-assign]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # the trained weights move away from their average
        for p in module.model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    hr = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=gen), size=(32, 32), mode="bilinear")
    module.validation_step((hr, ["img"]), 0)

    def score(net: IRN) -> float:
        with torch.no_grad():
            return float(psnr_y(net.upscale(net.downscale(hr), z="zero"), hr, 2).mean())

    assert logged["val/psnr_y_z0"] == pytest.approx(score(module.ema), abs=1e-3)
    assert abs(score(module.model) - score(module.ema)) > 0.1


def test_the_trainer_drops_lightnings_litlogger_advert(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Lightning logs "💡 Tip: ... try installing litlogger" when a Trainer is made: not about the run."""
    import logging

    from irn.train.run import build_trainer

    cfg = config_from_dict(tiny_config(tmp_path))
    with caplog.at_level(logging.INFO):
        build_trainer(cfg, [])
        logging.getLogger("lightning.pytorch.utilities.rank_zero").info("kept: a line about the run")
    messages = [r.getMessage() for r in caplog.records]
    assert not any("litlogger" in m for m in messages) and "kept: a line about the run" in messages


def test_a_data_folder_that_is_a_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    raw = tiny_config(tmp_path, data={"train_dir": str(tmp_path / "empty.pt")})
    assert main(["train", "--config", str(write_config(tmp_path, raw))]) == 2
    err = capsys.readouterr().err
    assert f"data.train_dir: '{tmp_path / 'empty.pt'}' is a file; give the folder of training images" in err
    assert not (tmp_path / "run").exists()
