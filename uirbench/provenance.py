"""The command line recorded beside every artefact (dataset card, checkpoint, evaluation, entry).

One helper, so every record quotes the same way: the words given to ``uirbench``'s ``main(argv)``,
shell-quoted, so that pasting the recorded line into a POSIX shell runs the same command.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable


def command_line(argv: Iterable[object]) -> str:
    """``uirbench`` followed by ``argv`` (the arguments after the program name), each shell-quoted.

    >>> command_line(["generate", "--out", "my data"])
    "uirbench generate --out 'my data'"
    """
    return shlex.join(["uirbench", *(str(word) for word in argv)])
