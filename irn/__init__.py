"""irn: Invertible Image Rescaling (Xiao et al., ECCV 2020) as a toolkit."""

__version__ = "0.1.0"

from irn.api import downscale_image, roundtrip_image, upscale_image  # noqa: E402
from irn.errors import IRNError  # noqa: E402
from irn.nn.network import IRN, IRNConfig  # noqa: E402
from irn.zoo import CheckpointError, load, save  # noqa: E402

__all__ = [
    "IRN",
    "CheckpointError",
    "IRNConfig",
    "IRNError",
    "__version__",
    "downscale_image",
    "load",
    "roundtrip_image",
    "save",
    "upscale_image",
]
