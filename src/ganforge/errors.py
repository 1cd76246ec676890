"""ganforge's own exception: a message a user can act on, printed by the CLI without a traceback."""

import reprlib

MAX_MESSAGE_CHARS = 600


class GanforgeError(Exception):
    """A user-facing error: bad option, bad file, unknown name.

    The message is always one line of bounded length, whatever it quotes: names, values and
    file names from hostile input may hold newlines or be huge (a YAML alias bomb).
    """

    def __init__(self, message: object = ""):
        text = str(message).replace("\r", "\\r").replace("\n", "\\n")
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[: MAX_MESSAGE_CHARS - 25] + f" ... ({len(text)} chars)"
        super().__init__(text)


class TrainingStopped(GanforgeError):
    """A stop that was asked for (Ctrl-C, SIGTERM) and done cleanly: the run folder holds a
    checkpoint, the curves and the final grid of the step it names. Not a failure: the CLI
    says so without "error" (exit status 130, as for any interrupted command)."""


class _Brief(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 256:  # repr() of a 5,000-digit int raises; a 100-digit one is noise
            return f"<an integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_BRIEF = _Brief()
_BRIEF.maxlevel, _BRIEF.maxdict, _BRIEF.maxlist, _BRIEF.maxtuple = 2, 4, 4, 4
_BRIEF.maxstring, _BRIEF.maxother, _BRIEF.maxlong = 40, 40, 40


def brief(value: object) -> str:
    """A short repr of a value from hostile input, for an error message: bounded in time and
    length whatever the value (a list nine levels deep with 10^9 leaves, all shared, has a full
    repr that would never finish)."""
    return _BRIEF.repr(value)
