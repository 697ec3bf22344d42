"""Command line: ``taskspace <command> ...``. The only place that parses strings.

``main(argv)`` returns an exit code. Bad input prints one line that names the problem and a fix, and
returns 2; so does any other error, with ``--debug`` showing its traceback instead.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Sequence

from taskspace.cli._commands import COMMANDS
from taskspace.cli._parsers import PLOT_KINDS, build_parser
from taskspace.errors import TaskspaceError

__all__ = ["main", "console_entry", "build_parser", "PLOT_KINDS"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    arguments = build_parser().parse_args(argv)
    try:
        return COMMANDS[arguments.command](arguments)
    except TaskspaceError as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        print("taskspace: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except OSError as error:
        if arguments.debug:
            raise
        return _fail(describe_os_error(error))
    except Exception as error:  # one line for anything unforeseen; the traceback with --debug
        if arguments.debug:
            raise
        detail = str(error).strip().splitlines()[0][:300] if str(error).strip() else "no detail"
        return _fail(f"unexpected {type(error).__name__}: {detail}; rerun with `taskspace --debug "
                     f"{arguments.command} ...` to see where, and report it")


def _fail(message: str) -> int:
    print(f"taskspace: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def describe_os_error(error: OSError) -> str:
    """An operating-system error as one line naming the file and a fix."""
    name = f"'{error.filename}'" if error.filename else "a file"
    reason = error.strerror or type(error).__name__
    if isinstance(error, PermissionError):
        return f"cannot access {name} ({reason}); choose a folder you can write to, or fix its permissions"
    if isinstance(error, IsADirectoryError):
        return f"{name} is a folder where a file was expected; pass the file's path"
    if isinstance(error, NotADirectoryError):
        return f"{name} is a file where a folder was expected; pass a folder"
    if isinstance(error, FileNotFoundError):
        return f"{name} does not exist; check the path"
    if error.errno == errno.ENOSPC:
        return f"no space left on the disk writing {name}; free some space and rerun the same command to resume"
    if error.errno == errno.EROFS:
        return f"{name} is on a read-only file system; choose a folder you can write to"
    return f"{reason} ({name}); check the path and rerun"


def console_entry() -> None:
    sys.exit(main())
