"""Faults at chosen moments (issue 19): the short, seeded version of ``benchmarks/soak.py``.

Each test runs one campaign of the harness: a tiny training run started, interrupted by a planned
series of real signals (SIGTERM, Ctrl+C, SIGKILL) at chosen moments, resumed after each, and finished.
The harness checks each exit (within 60 s, the code for the signal, ``last.ckpt`` loading) and then that
the run's weights, optimizer state, step, validation scores and ``best.ckpt`` equal those of an
uninterrupted run. Before issue 19, a SIGTERM between two validation batches left a checkpoint of a
half-done validation and the resumed run logged a partial score (caught here as "validation scores at
steps ..."); a DDP run signalled while rank 0 waited in the checkpoint barrier could hang.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from benchmarks import soak


def run_campaign(tmp_path: Path, mode: str, plan: list[tuple[str, str, str, int]]) -> list[soak.Interruption]:
    reference = soak.reference(tmp_path, mode)
    items = soak.campaign(0, mode, tmp_path, random.Random(0), len(plan), reference, plan=plan)
    report = {"interruptions": [soak.asdict(i) for i in items], "campaigns": 1, "seconds": 0}
    log = (tmp_path / "children.log").read_text(errors="replace")[-3000:]
    assert not any(i.problems for i in items), "\n".join(soak.report_lines(report)) + "\n" + log
    return items


def test_single_process_survives_signals_at_every_moment(tmp_path: Path) -> None:
    plan = [
        ("SIGTERM", "validation", "self", 0),  # between two validation batches
        ("SIGKILL", "validation", "self", 0),  # the validation must be scored by the resumed run
        ("SIGINT", "checkpoint", "self", 0),  # in the middle of writing last.ckpt
        ("SIGKILL", "step", "self", 0),
        ("SIGKILL", "checkpoint", "self", 0),  # a temporary file is left mid-write
        ("SIGTERM", "first", "self", 0),
        ("SIGINT", "last", "self", 0),  # the run then ends as complete (exit 0)
    ]
    items = run_campaign(tmp_path, "single", plan)
    fired = [(i.signal, i.moment) for i in items if i.fired]
    assert ("SIGTERM", "validation") in fired and ("SIGINT", "checkpoint") in fired and ("SIGKILL", "step") in fired
    assert ("SIGKILL", "checkpoint") in fired
    codes = {(i.signal, i.moment): i.returncode for i in items}
    assert codes[("SIGTERM", "validation")] == 143 and codes[("SIGKILL", "step")] == -9
    assert all(i.exit_seconds is not None and i.exit_seconds < soak.HANG_SECONDS for i in items if i.fired)
    # the SIGKILL left no temporary file behind once the run resumed (stale ones are removed)
    assert not list((tmp_path / "single_0" / "checkpoints").glob(".*.tmp"))
    last = torch.load(tmp_path / "single_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == soak.MAX_STEPS


def test_ddp_survives_sigterm_in_the_checkpoint_barrier_and_a_lost_rank(tmp_path: Path) -> None:
    plan = [
        ("SIGTERM", "barrier", "self", 0),  # rank 0 alone, while it waits for a late rank 1
        ("SIGKILL", "step", "self", 1),  # rank 1's node is gone: rank 0 must not wait for it forever
        ("SIGKILL", "step", "self", 0),  # rank 0 is gone: rank 1 must notice and exit (within the 60 s)
        ("SIGINT", "validation", "group", 0),  # Ctrl+C in the terminal reaches every rank
    ]
    items = run_campaign(tmp_path, "ddp", plan)
    assert [i.fired for i in items] == [True, True, True, True]
    assert items[0].returncode == 143 and items[2].returncode == -9 and items[3].returncode == 130
