"""The error type for a user's mistake: the CLI prints its message as one line and exits non-zero."""


class IRNError(Exception):
    """A problem the user can fix (bad file, bad option); its message is the whole story."""
