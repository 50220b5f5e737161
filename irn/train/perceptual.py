"""The networks of IRN+'s perceptual stage (the official IRN+ recipe for x4, after ESRGAN): a VGG19
feature extractor for the feature loss and the official VGG-style discriminator
(``discriminator_vgg_128``).

The VGG19 ImageNet weights are torchvision's file ``vgg19-dcbb9e9d.pth``, read from the torch hub
cache (``$TORCH_HOME/hub/checkpoints/``, as for LPIPS's AlexNet) with ``weights_only=True``; irn never
downloads them and never runs a random backbone: a missing or wrong file is one :class:`IRNError`
naming the file expected and where to put it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from irn.errors import IRNError
from irn.zoo import read_hub_weights

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILE}"
#: the official feature layer: conv5_4 of VGG19, before its ReLU (torchvision features[34])
VGG19_FEATURE_LAYER = 34
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_weights_path() -> Path:
    """Where the VGG19 weights are expected: ``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def _vgg19_layers(last: int) -> nn.Sequential:
    """torchvision's VGG19 ``features[: last + 1]``, built without weights (no download)."""
    from torchvision.models import vgg19

    return vgg19(weights=None).features[: last + 1]


class VGGFeatures(nn.Module):
    """VGG19 features of an RGB batch in [0, 1] (ImageNet-normalised inside), frozen, for the feature loss."""

    def __init__(self, layer: int = VGG19_FEATURE_LAYER, path: Path | None = None) -> None:
        super().__init__()
        path = vgg19_weights_path() if path is None else path
        state = read_hub_weights(path, VGG19_URL, "IRN+'s feature loss", "VGG19")
        self.features = _vgg19_layers(layer)
        target = self.features.state_dict()
        wanted = {k: state.get(f"features.{k}") if isinstance(state, dict) else None for k in target}
        bad = [k for k, v in wanted.items() if not isinstance(v, Tensor) or v.shape != target[k].shape]
        if bad:
            raise IRNError(f"{path}: not the torchvision VGG19 weights (no matching 'features.{bad[0]}')")
        self.features.load_state_dict(wanted, strict=True)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> VGGFeatures:  # always in eval mode: a fixed feature space
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.features((x - self.mean.to(x)) / self.std.to(x))


class DiscriminatorVGG128(nn.Module):
    """The official ``discriminator_vgg_128``: ten 3x3/4x4 convolutions (five halve the size, batch
    norm after all but the first), then two linear layers to one logit per image. The official one
    takes 128 (or 144) px patches, whose features are 4 x 4 after the five halvings; an adaptive
    average pool to 4 x 4 (the identity at those sizes) lets smaller CPU patches through."""

    def __init__(self, in_channels: int = 3, features: int = 64) -> None:
        super().__init__()
        nf = features
        widths = [(in_channels, nf), (nf, 2 * nf), (2 * nf, 4 * nf), (4 * nf, 8 * nf), (8 * nf, 8 * nf)]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(widths):
            layers.append(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=i == 0))
            if i:
                layers.append(nn.BatchNorm2d(c_out, affine=True))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            layers += [nn.Conv2d(c_out, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out, affine=True)]
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4))
        self.classifier = nn.Sequential(nn.Linear(8 * nf * 16, 100), nn.LeakyReLU(0.2, inplace=True), nn.Linear(100, 1))

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> one real/fake logit per image, (B, 1)."""
        return self.classifier(self.features(x).flatten(1))
