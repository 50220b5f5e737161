"""irn: Invertible Image Rescaling (Xiao et al., ECCV 2020) as a toolkit."""

__version__ = "0.1.0"

from irn.api import downscale_image, roundtrip_image, upscale_image  # noqa: E402
from irn.errors import InputError, IRNError  # noqa: E402
from irn.nn.network import IRN, IRNConfig  # noqa: E402
from irn.zoo import CheckpointError, load, save  # noqa: E402

__all__ = [
    "IRN",
    "CheckpointError",
    "IRNConfig",
    "IRNError",
    "InputError",
    "__version__",
    "downscale_image",
    "load",
    "roundtrip_image",
    "save",
    "upscale_image",
]

_SUBMODULES = {
    "chart",
    "config",
    "craft",
    "data",
    "decay",
    "download",
    "hybrid",
    "inference",
    "metrics",
    "plotting",
    "tiling",
    "training",
}


def __getattr__(name: str) -> object:
    """``irn.metrics.psnr(...)`` after a plain ``import irn``: submodules import on first use."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"irn.{name}")
    raise AttributeError(f"module 'irn' has no attribute {name!r}")
