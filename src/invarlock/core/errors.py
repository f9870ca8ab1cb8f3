"""Errors with the exit code the CLI returns for them.

Exit codes (documented in docs/cli.md and the README):

====  ==============================================================
0     the edit was kept (with or without warnings)
1     a guard aborted: the edit was rolled back and the model restored
2     usage or configuration error (nothing was loaded or changed)
3     plugin error (broken, clashing or misbehaving plugin)
4     model or data error (missing files, unloadable model)
130   interrupted (Ctrl-C); the model was restored
====  ==============================================================
"""

from __future__ import annotations

EXIT_KEPT = 0
EXIT_ROLLED_BACK = 1
EXIT_USAGE = 2
EXIT_PLUGIN = 3
EXIT_MODEL = 4
EXIT_INTERRUPTED = 130


class InvarlockError(Exception):
    """Base class: one readable message and the exit code that goes with it."""

    exit_code = EXIT_USAGE


class ConfigError(InvarlockError):
    """A configuration file, key or value is wrong; the message names the key path."""

    exit_code = EXIT_USAGE


class PluginError(InvarlockError):
    """A plugin failed to load, clashed with another, or broke the hook contract."""

    exit_code = EXIT_PLUGIN


class ModelLoadError(InvarlockError):
    """A model could not be found or loaded."""

    exit_code = EXIT_MODEL


class DataError(InvarlockError):
    """A dataset or calibration source could not be read."""

    exit_code = EXIT_MODEL


class RestoreError(InvarlockError):
    """The model could not be restored bit-exactly from its snapshot."""

    exit_code = EXIT_MODEL
