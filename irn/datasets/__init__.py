"""Datasets: the registry of benchmark/training sets and resumable, verified downloads
(:mod:`.download`)."""
