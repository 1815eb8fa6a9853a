"""The ``bmcnn-hw`` command line. User errors print one line and exit with status 2."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from . import __version__
from . import commands as cmd
from .errors import BmcnnError
from .options import COMMANDS
from .options.commands import GROUPS
from .options.fields import add_arguments, from_namespace


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand, built from the commands' options classes
    (:data:`bmcnn_hw.options.COMMANDS`)."""
    parser = argparse.ArgumentParser(prog="bmcnn-hw", description=(
        "Binarized Memristive CNN -> crossbar netlists (ngspice), Amaranth RTL, and co-simulation "
        "against one NumPy golden model."))
    parser.add_argument("--version", action="version", version=f"bmcnn-hw {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for command in COMMANDS:
        group, _, name = command.name.rpartition(" ")
        if group and group not in groups:
            groups[group] = sub.add_parser(group, help=GROUPS[group]).add_subparsers(
                dest=f"{group}_command", required=True)
        parent = groups[group] if group else sub
        p = parent.add_parser(name, help=command.help, description=command.description)
        add_arguments(p, command.options)
        p.set_defaults(command_spec=command)
    return parser


def parse_command(argv=None) -> tuple[str, object]:
    """The command a ``bmcnn-hw`` argument list names and its options (argparse exits on bad input)."""
    namespace = build_parser().parse_args(argv)
    command = namespace.command_spec
    return command.name, from_namespace(command.options, namespace)


def main(argv=None, *, ending_process: bool = False) -> int:
    """Run one ``bmcnn-hw`` command line; returns the exit code.

    SIGTERM ends the command like Ctrl-C (cleanups run, exit 143). Afterwards the previous SIGTERM
    handler is restored, or (``ending_process``: the console script, which exits next) SIGTERM is
    ignored, so a signal arriving after the command has ended cannot kill the exiting process.
    """
    name, options = parse_command(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()  # signal.signal needs it
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        code = cmd.run_command(name, options)
        sys.stdout.flush()  # a closed pipe surfaces here, not at interpreter exit
        return code
    except BmcnnError as exc:
        print(f"bmcnn-hw: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("bmcnn-hw: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("bmcnn-hw: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a path the user named: unwritable, a directory where a file goes, ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"bmcnn-hw: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_IGN if ending_process else previous)
            if ending_process:  # the work is done or reported: a Ctrl-C during interpreter shutdown killed the
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # process by signal with nothing said (exit -2)


def console_main() -> None:
    """Entry point of the ``bmcnn-hw`` console script and of ``python -m bmcnn_hw.cli``."""
    sys.exit(main(ending_process=True))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every cleanup (temp directories, worker pools) runs."""


def _raise_terminated(signum, frame):
    """The SIGTERM handler of :func:`main`."""
    raise Terminated()


if __name__ == "__main__":
    console_main()
