"""The ``mmla`` command (console script ``mmla = mmla.cli.main:main``; also ``python -m mmla.cli``).

Each module below contributes its subcommands through a ``register(subparsers)`` function. They live in
this package, on top of the library packages, which import no command line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# torch.cuda.is_available() through NVML, so that nothing before `mmla eval --num-processes N` forks its
# workers initialises CUDA (a forked process cannot use a CUDA runtime its parent initialised).
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")

# Modules that contribute subcommands; each exposes register(subparsers).
COMMAND_MODULES = (
    "mmla.cli.data",  # mmla data build|sample|info|fetch
    "mmla.cli.eval",  # mmla eval, mmla report
    "mmla.cli.train",  # mmla train (wraps training/sft.py)
    "mmla.cli.hub",  # mmla push, mmla leaderboard, mmla card
)


USER_ERRORS = (ValueError, KeyError, FileNotFoundError, RuntimeError)
"""What a command reports as one line (bad input, a refused option); anything else keeps its traceback."""


def error_line(command: str, err: BaseException, *, process: str | None = None) -> str:
    """``mmla <command>: error: [process <rank>: ]<message>`` (a KeyError without its quotes)."""
    msg = err.args[0] if isinstance(err, KeyError) and err.args else err
    where = f"process {process}: " if process is not None else ""
    return f"mmla {command}: error: {where}{msg}"


def process_failures(err: BaseException) -> str | None:
    """``process 1: exit code 1; ...`` for torch.distributed.elastic's ChildFailedError (itself or as the cause of
    ``err``), else None: a launcher's failure told in one line (each failed process printed its own error)."""
    failures = getattr(err, "failures", None) or getattr(err.__cause__, "failures", None)
    if not failures:
        return None
    return "; ".join(f"process {rank}: exit code {f.exitcode}" for rank, f in sorted(failures.items()))


def _no_abbreviations(parser: argparse.ArgumentParser) -> None:
    """``allow_abbrev=False`` on ``parser`` and every (nested) subcommand parser.

    argparse accepts any unique prefix of an option by default (``--learning_rat`` for ``--learning_rate``), so a
    typo can silently set another option. Subcommand modules create their own parsers; this covers them all.
    """
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _no_abbreviations(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmla", description="Multimodal language analysis with LLMs (MMLA).", allow_abbrev=False
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # Subcommand parsers are HfArgumentParsers (as in TRL's CLI): a subcommand may declare its options as dataclasses.
    from transformers import HfArgumentParser

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=HfArgumentParser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _no_abbreviations(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.cli_argv = argv  # as typed: a launcher runs the same command line in each process
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        # Expected user errors: one clear line, no traceback (use -v for it).
        if args.verbose:
            raise
        print(error_line(args.command, err), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
