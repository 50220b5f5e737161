"""The error type for a user's mistake: the CLI prints its message as one line and exits non-zero."""


class IRNError(Exception):
    """A problem the user can fix (bad file, bad option); its message is the whole story."""


class InputError(IRNError, ValueError):
    """A bad argument to the Python API (a tensor's shape, a size, an option's value): an
    :class:`IRNError` that is also the ``ValueError`` such a mistake has always been.

    ``param`` names the parameter at fault when there is one; the message then starts with that
    name (``temperature must be ...``), and the CLI rewrites it to the flag the user typed
    (``--temperature must be ...``)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param

    def with_name(self, name: str) -> str:
        """The message with its leading parameter name replaced by ``name`` (e.g. a flag)."""
        text = str(self)
        if self.param and text.startswith(self.param):
            return name + text[len(self.param) :]
        return text
