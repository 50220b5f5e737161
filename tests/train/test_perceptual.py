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
