"""Errors a user can act on: the CLI prints them as one line, without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (a file, a flag, a model): message names what and where."""


class NetworkFormatError(UserError):
    """A deployable network file that fails validation; names the file, layer and field."""


class CheckpointError(UserError):
    """A checkpoint that is missing, unreadable or not a dsatgo-deploy model."""
