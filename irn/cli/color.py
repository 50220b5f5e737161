"""``irn color down|up|roundtrip``: invertible decolorization of image files with an IRN-Color model.

* ``down``: colour image -> 1-channel grey image of the same size (``NAME_grey.png``), from which
  the model restores the colours (the latent z it drops is drawn again by ``up``).
* ``up``: grey image -> colour image (``NAME_color.png``); a colour file is read as its BT.601 luma.
* ``roundtrip``: down then up (``NAME_grey.png``, ``NAME_rt.png``); prints PSNR-Y and PSNR-RGB of the
  restored image against the input, and with ``--baseline`` those of the grey image copied to RGB.

The same machinery as ``irn rescale`` (:mod:`irn.cli.rescale`): inputs, ``-o``, atomic writes, alpha,
``--skip-existing``, bad inputs skipped on one line, the ``--json`` summary (outputs named ``grey`` and
``color``, sizes ``grey_size`` and ``color_size``, the baseline's figures ``baseline_psnr_*``).
"""

from __future__ import annotations

import argparse

from irn.cli import rescale

HELP = "Decolorize and colorize images with an IRN-Color model: down (colour -> grey), up, roundtrip."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    rescale.add_arguments(parser, task=rescale.COLOR)


def run(args: argparse.Namespace) -> int:
    return rescale.run(args)
