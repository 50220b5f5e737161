"""The package version (no imports: ``irn --version`` and the checkpoint writer read it)."""

__version__ = "0.1.0"
