"""The zoo's error (torch-free): a model file or name that cannot be loaded, in one line."""

from __future__ import annotations

from irn.errors import IRNError


class CheckpointError(IRNError):
    """A file that cannot be loaded as an IRN model (or a model name that names none)."""
