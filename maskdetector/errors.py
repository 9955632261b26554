"""Errors a user can fix (bad path, wrong file): shown as one line, never as a traceback."""

import argparse
from typing import NoReturn


class UserError(Exception):
    """Bad input from the user; command-line tools print it on one line and exit with code 2."""


class ModelError(UserError):
    """The model file or its labels are missing or unreadable."""


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end like every other bad input: one `error:` line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")
