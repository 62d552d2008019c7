"""Errors of the server layer: configuration that cannot be used."""

from __future__ import annotations


class ServerError(Exception):
    pass


class SettingsError(ServerError):
    """A setting or the chat apps file is wrong; the message names which and why."""
