"""IRN+'s perceptual networks (irn.train.perceptual): the VGG19 backbone is read from the torch hub
cache only (a missing or wrong file is one clear error, never a random backbone), and the official
discriminator's shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from irn.errors import IRNError
from irn.train.perceptual import VGG19_FILE, DiscriminatorVGG128, VGGFeatures, _vgg19_layers, vgg19_weights_path


def _write_vgg19(path: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """A weights file in torchvision's layout (random values: only the loading path is under test)."""
    torch.manual_seed(seed)
    state = {f"features.{k}": v for k, v in _vgg19_layers(34).state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # the rest of the real file, ignored
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_vgg19_weights_come_from_the_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = vgg19_weights_path()
    assert path == tmp_path / "hub" / "checkpoints" / VGG19_FILE
    state = _write_vgg19(path)
    net = VGGFeatures()
    assert torch.equal(net.features[34].weight, state["features.34.weight"])
    net.train()
    assert not net.training and all(not p.requires_grad for p in net.parameters())
    x = torch.rand(1, 3, 32, 32)
    out = net(x)
    assert out.shape == (1, 512, 2, 2)
    mean, std = (
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
    )
    torch.testing.assert_close(out, net.features((x - mean) / std))


def test_missing_or_wrong_vgg19_file_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(IRNError) as exc:
        VGGFeatures()
    message = str(exc.value)
    assert "\n" not in message and str(vgg19_weights_path()) in message and "download.pytorch.org" in message
    vgg19_weights_path().parent.mkdir(parents=True)
    torch.save({"features.0.weight": torch.zeros(1)}, vgg19_weights_path())
    with pytest.raises(IRNError, match="not the torchvision VGG19 weights"):
        VGGFeatures()
    vgg19_weights_path().write_bytes(b"not a weights file")
    with pytest.raises(IRNError, match="cannot read the VGG19 weights"):
        VGGFeatures()


@pytest.mark.parametrize("side", [128, 144, 48])
def test_discriminator_gives_one_logit_per_image(side: int) -> None:
    d = DiscriminatorVGG128()
    assert d(torch.rand(2, 3, side, side)).shape == (2, 1)
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 10 and sum(m.stride == (2, 2) for m in convs) == 5
    assert d.classifier[0].in_features == 512 * 4 * 4  # the official linear1


def test_irn_plus_objective_updates_the_irn_and_the_discriminator_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feature and adversarial terms enter the loss; the IRN's adversarial term gives the
    discriminator no gradient, the discriminator's term gives the IRN none; a short run of the stage
    learns and exports an x4 IRN (the generator) that irn.load reads."""
    from test_training import read_metrics, tiny_config  # the training tests' helpers (tests/train)

    import irn
    from irn.train.config import config_from_dict
    from irn.train.export import export_checkpoint
    from irn.train.module import IRNLightning
    from irn.train.run import train

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _write_vgg19(vgg19_weights_path())
    loss = {"lambda_feature": 0.01, "lambda_gan": 0.5, "lambda_rec": 0.01, "rec_sample_fraction": 1.0}
    raw = tiny_config(tmp_path, model={"scale": 4, "blocks_per_level": [1, 1]}, loss=loss)
    raw["data"]["patch_size"] = 32
    module = IRNLightning(config_from_dict(raw))
    terms = module.losses(torch.rand(2, 3, 32, 32), step=0, generator=torch.Generator().manual_seed(0))
    assert {"feature", "gan", "discriminator"} <= set(terms)
    d_params = list(module.discriminator.parameters())
    d_grad = torch.autograd.grad(terms["gan"], d_params, allow_unused=True)
    assert all(g is None for g in d_grad)  # the IRN's term never trains the discriminator
    g_params = [p for p in module.model.parameters() if p.requires_grad]
    g_grad = torch.autograd.grad(terms["discriminator"], g_params, allow_unused=True)
    assert all(g is None for g in g_grad)  # nor the discriminator's term the IRN
    optimizer = module.configure_optimizers()["optimizer"]
    assert [g["initial_lr"] for g in optimizer.param_groups] == [1e-3, 1e-4]  # before the warm-up factor
    assert optimizer.param_groups[1]["betas"] == (0.9, 0.99)

    raw["trainer"]["max_steps"] = 4
    cfg = config_from_dict(raw)
    assert train(cfg) == 0
    rows = read_metrics(Path(cfg.trainer.run_dir))
    assert all(any(r.get(f"train/{k}") for r in rows) for k in ("feature", "gan", "discriminator"))
    export_checkpoint(Path(cfg.trainer.run_dir) / "checkpoints" / "last.ckpt", tmp_path / "plus.pt")
    model = irn.load(tmp_path / "plus.pt")
    assert model.scale == 4 and not any(k.startswith("discriminator") for k in model.state_dict())


def test_an_official_irn_plus_generator_loads_as_an_x4_model(tmp_path: Path) -> None:
    """The IRN+ generator has the IRN x4 architecture: its official file (a state dict with the IRN's
    keys) loads as an x4 IRN."""
    from helpers import random_irn

    import irn

    generator = random_irn(4, (8, 8), growth=32, std=0.02, last_std=0.02)
    torch.save(generator.state_dict(), tmp_path / "IRN+_x4.pth")
    loaded = irn.load(tmp_path / "IRN+_x4.pth")
    assert loaded.scale == 4 and loaded.num_parameters() == 4_355_136
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert (loaded(x)[0] - generator(x)[0]).abs().max() < 1e-5


def _irn_plus_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **loss: object):  # noqa: ANN202
    from test_training import tiny_config  # the training tests' helpers (tests/train)

    from irn.train.config import config_from_dict
    from irn.train.module import IRNLightning

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _write_vgg19(vgg19_weights_path())
    raw = tiny_config(tmp_path, model={"scale": 4, "blocks_per_level": [1, 1]}, loss=loss)
    raw["data"]["patch_size"] = 32
    return IRNLightning(config_from_dict(raw))


def test_the_feature_term_is_the_official_per_image_sum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Official IRN+ (ReconstructionLoss 'l1'): per image the sum of sqrt(d^2 + 1e-6) over the features,
    averaged over the batch. With the identity in place of VGG19 it is the reconstruction term."""
    module = _irn_plus_module(tmp_path, monkeypatch, lambda_feature=0.01, lambda_rec=0.01)
    module.__dict__["vgg"] = torch.nn.Identity()
    terms = module.losses(torch.rand(3, 3, 32, 32), step=0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(terms["feature"], terms["rec"])
    assert terms["feature"] > 3 * 32 * 32 * 1e-3  # a sum over (C, H, W): the eps alone gives 3072 x 1e-3


def test_the_discriminator_warms_up_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Official D_init_iters: during gan_warmup_steps the IRN does not move at all (no weight decay
    drift either); the discriminator does; then both learn. Clipping reaches the IRN only."""
    module = _irn_plus_module(tmp_path, monkeypatch, lambda_gan=1.0, gan_warmup_steps=2)
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    irn_before = [p.detach().clone() for p in module.model.parameters()]
    for step in range(3):
        d_before = [p.detach().clone() for p in module.discriminator.parameters()]
        irn_at_step = [p.detach().clone() for p in module.model.parameters()]
        optimizer.zero_grad()
        terms = module.losses(torch.rand(2, 3, 32, 32), step=step, generator=torch.Generator().manual_seed(step))
        terms["loss"].backward()
        optimizer.step()
        scheduler.step()
        assert any(not torch.equal(a, b) for a, b in zip(d_before, module.discriminator.parameters(), strict=True))
        moved = any(not torch.equal(a, b) for a, b in zip(irn_at_step, module.model.parameters(), strict=True))
        assert moved == (step >= 2), step
    assert any(not torch.equal(a, b) for a, b in zip(irn_before, module.model.parameters(), strict=True))

    for p in module.parameters():
        p.grad = torch.full_like(p, 100.0)
    module.configure_gradient_clipping(optimizer, 10.0, "norm")
    irn_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in optimizer.param_groups[0]["params"]]))
    assert irn_norm == pytest.approx(10.0, rel=1e-4)
    assert all(torch.all(p.grad == 100.0) for p in module.discriminator.parameters())
