"""The ``data`` section of ``benchmarks/run.py``: training patches per second from a folder of
2040x1356 PNGs, by :class:`irn.train.data.PatchDataset` through a DataLoader, with and without the
decoded-image cache."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import Row, write_pngs


def bench_data(args: argparse.Namespace) -> list[Row]:
    from torch.utils.data import DataLoader

    from irn.train.data import PatchDataset, StepBatchSampler

    folder = Path(args.data_dir)
    count, size = (2, (256, 384)) if args.quick else (8, (1356, 2040))
    write_pngs(folder, count, size)
    batches = 3 if args.quick else 12
    rows = []
    for cache in (False, True):
        for workers in (0, 2):
            t0 = time.perf_counter()
            dataset = PatchDataset(folder, 144, seed=0, augment=True, cache=cache)
            setup = time.perf_counter() - t0
            loader = DataLoader(dataset, batch_sampler=StepBatchSampler(16, 0, batches + 1), num_workers=workers)
            it = iter(loader)
            next(it)  # workers started, first batch
            t1 = time.perf_counter()
            n = sum(b.shape[0] for b in it)
            dt = time.perf_counter() - t1
            rows.append(
                Row(
                    "data",
                    f"{count} PNGs {size[1]}x{size[0]}, batch 16, 144x144",
                    f"cache={cache}, workers={workers}",
                    "cpu",
                    f"{n / dt:.0f} patches/s",
                    note=f"cache fill {setup:.1f} s" if cache else "",
                )
            )
    return rows
