"""ganforge's own exception: a message a user can act on, printed by the CLI without a traceback."""


class GanforgeError(Exception):
    """A user-facing error: bad option, bad file, unknown name."""
