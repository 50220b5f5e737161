"""The line plot's legend never hides the data it labels (the shipped models' curves use it)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from irn.experiments.plotting import _legend_corner, line_plot

BOUNDS, PLOT, BOX = (0.0, 10.0, 0.0, 10.0), (100.0, 100.0), (30.0, 20.0)


def test_the_legend_takes_the_first_free_corner() -> None:
    assert _legend_corner({"a": ([0, 5], [0, 5])}, BOUNDS, PLOT, BOX) == (True, True)  # rising, below the top right
    assert _legend_corner({"a": ([0, 10], [9, 9])}, BOUNDS, PLOT, BOX) == (True, False)  # a line along the top
    # a segment crossing the top-right box with no vertex inside it still counts
    assert _legend_corner({"a": ([5, 10], [9.5, 8.5]), "b": ([0, 3], [0, 9.5])}, BOUNDS, PLOT, BOX) == (True, False)
    everywhere = {"a": ([0, 10], [9.5, 9.5]), "b": ([0, 10], [0.5, 0.5])}
    assert _legend_corner(everywhere, BOUNDS, PLOT, BOX) is None


def test_a_legend_with_no_free_corner_goes_below_the_plot(tmp_path: Path) -> None:
    free = line_plot({"a": ([0, 1], [0, 1])}, tmp_path / "free.png", size=(300, 200), supersample=1)
    full = {"a": ([0, 1], [1, 1]), "b": ([0, 1], [0, 0])}
    below = line_plot(full, tmp_path / "below.png", size=(300, 200), supersample=1)
    assert Image.open(free).size == (300, 200) and Image.open(below).size[1] > 200
