"""Errors with the exit code the CLI returns for them, and the one table of exit codes.

:data:`EXIT_CODES` is the only place the meaning of each code is written down;
``scripts/gen_exit_codes.py`` copies it into docs/cli.md and docs/hooks.md (a test fails
when they drift). One code per cause, so that CI can tell a quality verdict (1) from a bug
in a plugin (3).
"""

from __future__ import annotations

from typing import NamedTuple

EXIT_KEPT = 0
EXIT_ROLLED_BACK = 1
EXIT_USAGE = 2
EXIT_PLUGIN = 3
EXIT_MODEL = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class ExitCode(NamedTuple):
    code: int
    cause: str
    meaning: str


EXIT_CODES: tuple[ExitCode, ...] = (
    ExitCode(EXIT_KEPT, "kept", "the edit was kept, with or without warnings"),
    ExitCode(
        EXIT_ROLLED_BACK,
        "rolled back",
        "a guard's verdict (or the evaluation gate's) rejected the edit; the model was "
        "restored, and `report.json` `integrity.verified` says whether the whole model "
        "was verified",
    ),
    ExitCode(
        EXIT_USAGE,
        "usage or config",
        "bad command line, config file, `--set` value or plan, found before any run "
        "directory exists; or a plugin's `invarlock_configure` rejected the config. Nothing "
        "was loaded",
    ),
    ExitCode(
        EXIT_PLUGIN,
        "plugin failure",
        "a hook or guard raised, called `sys.exit()`, returned a malformed result or changed "
        "tensors it must not touch, or a plugin providing a needed component is broken; a "
        "loaded model was restored",
    ),
    ExitCode(
        EXIT_MODEL,
        "model or data",
        "missing or unloadable model, unreadable data, failed export, or a restore that "
        "could not be verified",
    ),
    ExitCode(
        EXIT_INTERRUPTED,
        "interrupted (SIGINT)",
        "Ctrl-C: a loaded model was restored, `report.json` says `interrupted`, the finish "
        "hooks ran",
    ),
    ExitCode(
        EXIT_TERMINATED,
        "terminated (SIGTERM)",
        "as for Ctrl-C, and snapshot files were removed",
    ),
)


def exit_code_table() -> str:
    """:data:`EXIT_CODES` as the Markdown table the docs embed."""
    rows = ["| code | cause | meaning |", "|---|---|---|"]
    rows += [f"| {e.code} | {e.cause} | {e.meaning} |" for e in EXIT_CODES]
    return "\n".join(rows) + "\n"


class InvarlockError(Exception):
    """Base class: one readable message and the exit code that goes with it."""

    exit_code = EXIT_USAGE


class ConfigError(InvarlockError):
    """A configuration file, key or value is wrong.

    ``key_path`` (``guards.spectral.max_rel_change``) and ``where`` (``config.yaml:7`` or
    ``--set 'ARG'``) are kept as data when known; the message reads
    ``WHERE: KEY.PATH: PROBLEM``. ``problem`` is the message without them.
    """

    exit_code = EXIT_USAGE

    def __init__(self, problem: str, *, key_path: str | None = None, where: str | None = None):
        self.problem = problem
        self.key_path = key_path
        self.where = where
        super().__init__(": ".join(part for part in (where, key_path, problem) if part))

    def located(self, where: str | None) -> ConfigError:
        """The same error (same class and key path) placed at ``where``."""
        return type(self)(self.problem, key_path=self.key_path, where=where)


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
