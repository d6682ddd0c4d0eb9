"""The one exception type that reaches the user as a one-line message (exit code 2)."""


class SeEdgeError(ValueError):
    """Bad input or an unusable artifact: the message names the problem and what is valid."""


def one_line(e: BaseException) -> str:
    """The first line of an exception's message (a library's paragraph cut to what a user needs)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
