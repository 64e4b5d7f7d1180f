"""The command line of the local stack: `python -m infra.local <command> [options]`.

Only the standard library is imported before a command runs, so `./setup.sh --help` or a mistyped
option answers without installing or starting anything.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

# command -> (one-line help, adds its options)
_Options = Callable[[argparse.ArgumentParser], None]


def _none(parser: argparse.ArgumentParser) -> None:
    pass


def _down(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wipe", action="store_true", help="also delete the stack's data (database, secrets, logs)")


def _migrate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", action="store_true", help="list applied and pending migrations; apply nothing")


def _restore(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a backup written by `make backup`")
    parser.add_argument("--yes", action="store_true", help="confirm: the current data is replaced")


def _logs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="start from the beginning of the log")


COMMANDS: dict[str, tuple[str, _Options]] = {
    "dev": ("the whole stack in the foreground until Ctrl-C (make dev)", _none),
    "up": ("the stack in the background; returns once /health answers (./setup.sh)", _none),
    "down": ("stop the background stack (./teardown.sh)", _down),
    "migrate": ("apply pending migrations (DATABASE_URL, else the stack's database)", _migrate),
    "seed": ("load the demo data (refused on a production database)", _none),
    "env": ("print the running stack's URLs as shell exports", _none),
    "backup": ("pg_dump + plugin bundles + attachments into backups/ (a tar archive)", _none),
    "restore": ("replace the database with a backup (destructive: needs --yes)", _restore),
    "rotate-jwt-secret": ("a new JWT signing secret for the local stack; restarts it", _none),
    "logs": ("follow the stack's log in a readable form", _logs),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m infra.local", description="Run and operate the local stack.")
    top.add_argument("--parse-only", action="store_true", help=argparse.SUPPRESS)  # setup.sh checks its arguments
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (summary, add_options) in COMMANDS.items():
        add_options(commands.add_parser(name, help=summary, description=summary))
    return top


def _run(command: str, args: argparse.Namespace) -> int:
    from infra.local import commands, stack

    if command == "dev":
        return stack.dev()
    if command == "up":
        return commands.up()
    if command == "down":
        return commands.down(wipe=args.wipe)
    if command == "migrate":
        return commands.migrate(status=args.status)
    if command == "restore":
        return commands.restore_command(args.file, confirmed=args.yes)
    if command == "logs":
        return commands.logs(from_start=args.all)
    simple: dict[str, Callable[[], int]] = {
        "seed": commands.seed,
        "env": commands.env,
        "backup": commands.backup_command,
        "rotate-jwt-secret": commands.rotate_jwt_secret,
    }
    return simple[command]()


# `--parse-only` answers this when --help was printed, so that the scripts stop there too.
HELP_SHOWN = 10


def main(argv: list[str]) -> int:
    try:
        args = parser().parse_args(argv)  # --help exits 0, an unknown option exits 2 naming it
    except SystemExit as exc:
        if argv[:1] == ["--parse-only"] and exc.code == 0:
            return HELP_SHOWN
        raise
    if args.parse_only:
        return 0
    return _run(args.command, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
