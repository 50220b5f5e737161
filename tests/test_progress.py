"""The one progress bar: drawn on a terminal, silent in a pipe or a log file."""

from __future__ import annotations

import io

import pytest

from irn.progress import byte_bar, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_draws_on_a_terminal_and_not_in_a_log(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    assert list(progress_bar(range(3), desc="eval", unit="img")) == [0, 1, 2]
    assert "eval:" in screen.getvalue() and "0/3" in screen.getvalue()  # drawn, then cleared (leave=False)
    log = io.StringIO()  # a file or a pipe: no \r redraws
    monkeypatch.setattr("sys.stderr", log)
    assert list(progress_bar(range(3), desc="eval")) == [0, 1, 2]
    with byte_bar(10, "download", enabled=True) as bar:
        bar.update(10)
    assert log.getvalue() == ""


def test_a_bar_turned_off_stays_off_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    assert list(progress_bar(range(2), desc="eval", enabled=False)) == [0, 1]
    with byte_bar(10, "download", enabled=False) as bar:
        bar.update(10)
    assert screen.getvalue() == ""
    with byte_bar(2000, "download", enabled=True) as bar:  # a byte bar stays on screen when done
        bar.update(2000)
    assert "2.00k" in screen.getvalue()
