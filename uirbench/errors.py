"""One error base for everything a user can get wrong: the CLI catches it once and prints one line.

A :class:`UserError` names the file, argument or parameter at fault and, where there is a choice,
the valid values; ``uirbench`` prints it as ``uirbench <command>: error: <message>`` and exits with
status 2. Any other exception is a bug in uirbench: the CLI prints one line asking for a bug
report and shows the traceback only with ``--debug`` (or ``UIRBENCH_DEBUG=1``).
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input, argument, parameter or file; the message says what and where (and the valid choices)."""


class ParameterError(UserError):
    """A degradation parameter outside its documented valid range, or of the wrong type."""


class CheckpointError(UserError):
    """A checkpoint or training state that is missing, truncated or corrupt; the message names the file and the way out."""


class UnknownNameError(UserError, KeyError):
    """A name that is not registered (degradation, model, metric, ...); the message lists close matches and the valid names."""
