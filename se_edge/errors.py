"""The one exception type that reaches the user as a one-line message (exit code 2)."""


class SeEdgeError(Exception):
    """Bad input or an unusable artifact: the message names the problem and what is valid."""
