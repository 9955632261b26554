"""Errors a user can fix (bad path, wrong file): shown as one line, never as a traceback."""


class UserError(Exception):
    """Bad input from the user; command-line tools print it on one line and exit with code 2."""


class ModelError(UserError):
    """The model file or its labels are missing or unreadable."""
