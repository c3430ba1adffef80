"""What both command-line tools share: one-line errors with exit status 2."""

from __future__ import annotations

import argparse


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """``argparse`` that raises :class:`CliError` instead of printing usage and exiting."""

    def error(self, message: str):  # one clear line instead of usage + traceback
        raise CliError(message)
