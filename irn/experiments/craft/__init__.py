"""Images whose thumbnail shows something else ("image-scaling attacks"), crafted fast.

Given a COVER image A (H x W) and a TARGET B (h x w), find x close to A whose downscale
D(x) by a named resizer equals B. The parts, bottom up:

- :mod:`.resizers`: the resizer names, each library's own resize (:func:`library_resize`),
  and the exact separable operator D(X) = Dh X Dw^T extracted from the library
  (:func:`resize_matrices`, :class:`SeparableOperator`); the shared image helpers
  (:func:`as_uint8`, :func:`psnr`)
- :mod:`.solver`: the least-change step x* = A + D^+ (B - D A) (:func:`least_change`, whose
  PSNR bounds what any method reaches) and the exact projection onto {x : D x = B} within
  [0, 255] (:func:`solve_boxed`, semismooth Newton with preconditioned conjugate gradients)
- :mod:`.attack`: crafting against a linear resizer (:func:`craft`, :func:`verify`), against an
  IRN's downscale (:func:`craft_irn`, :func:`irn_tradeoff`) and the reverse direction, an LR
  image whose IRN upscale shows TARGET (:func:`craft_reverse`); their ``progress`` hooks
  (:data:`Progress`, :func:`craft_irn_units`)
- :mod:`.detect`: a detector, downscales of a crafted image by different resizers disagree
  strongly (:func:`check_image`)

Every public name of the four is importable from here (``from irn.experiments.craft import craft``).
Images are uint8 arrays (H, W, 3) (or (3, H, W) float tensors in [0, 1], converted).
PSNR is on the 0-255 scale over all channels.
"""

from irn.experiments.craft.attack import (
    CraftResult,
    Progress,
    ReverseResult,
    Verification,
    craft,
    craft_irn,
    craft_irn_units,
    craft_reverse,
    fit_target,
    irn_tradeoff,
    png_roundtrip,
    verify,
)
from irn.experiments.craft.detect import (
    CHECK_FACTORS,
    CHECK_METHODS,
    CHECK_SQUARE_SIDES,
    CHECK_THRESHOLD_DB,
    CheckReport,
    check_image,
    check_sizes,
)
from irn.experiments.craft.resizers import (
    LINEAR_RESIZERS,
    ImageLike,
    SeparableOperator,
    Size,
    as_uint8,
    box_operator,
    check_resizer,
    library_resize,
    psnr,
    resize_matrices,
    resizer_names,
)
from irn.experiments.craft.solver import SolveInfo, least_change, solve_boxed

__all__ = [
    "CHECK_FACTORS",
    "CHECK_METHODS",
    "CHECK_SQUARE_SIDES",
    "CHECK_THRESHOLD_DB",
    "LINEAR_RESIZERS",
    "CheckReport",
    "CraftResult",
    "ImageLike",
    "Progress",
    "ReverseResult",
    "SeparableOperator",
    "Size",
    "SolveInfo",
    "Verification",
    "as_uint8",
    "box_operator",
    "check_image",
    "check_resizer",
    "check_sizes",
    "craft",
    "craft_irn",
    "craft_irn_units",
    "craft_reverse",
    "fit_target",
    "irn_tradeoff",
    "least_change",
    "library_resize",
    "png_roundtrip",
    "psnr",
    "resize_matrices",
    "resizer_names",
    "solve_boxed",
    "verify",
]
