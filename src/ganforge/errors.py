"""ganforge's own exception: a message a user can act on, printed by the CLI without a traceback."""

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
