"""The ``dltune`` command line: tune a config, look at studies, delete them, run workers.

Only :mod:`click` is imported up front; the storage, samplers and execution load inside the
command that needs them, so ``dltune --help`` stays fast and works on a bare core install.

Every error caused by what the user typed (a ``DLTuneError``, ``ValueError`` or ``TypeError``)
ends the command with exit code 2 and one ``Error: ...`` line on stderr; ``-v`` adds the
traceback. Ctrl-C in ``dltune worker`` exits with code 130.
"""

from __future__ import annotations

from collections.abc import Sequence

from dltune.cli import _dashboard  # noqa: F401 - registers `dltune dashboard`
from dltune.cli import _report  # noqa: F401 - registers `dltune report`
from dltune.cli import _tune  # noqa: F401 - registers `dltune tune` and `dltune lr-find`
from dltune.cli import _worker  # noqa: F401 - registers `dltune worker`
from dltune.cli._commands import cli

__all__ = ["cli", "main"]


def main(args: Sequence[str] | None = None) -> None:
    """Run the command line (the ``dltune`` script and ``python -m dltune``)."""
    cli.main(args=list(args) if args is not None else None, prog_name="dltune")
