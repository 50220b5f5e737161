"""The error type for a user's mistake: the CLI prints its message as one line and exits non-zero."""


class IRNError(Exception):
    """A problem the user can fix (bad file, bad option); its message is the whole story."""


class InputError(IRNError, ValueError):
    """A bad argument to the Python API (a tensor's shape, a size, an option's value): an
    :class:`IRNError` that is also the ``ValueError`` such a mistake has always been."""
