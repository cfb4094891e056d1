"""``mmla train``: run ``training/sft.py`` in-process, launch it with accelerate, or print that command.

One device: the training runs in this process. ``--accelerate CONFIG`` / ``--num-processes N``: accelerate's
launcher runs here (as ``accelerate launch --quiet`` would) and a failing training ends in one line, not in
accelerate's ``CalledProcessError`` or torch's ``ChildFailedError`` traceback.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
from pathlib import Path

import mmla.training

TRAINING_DIR = Path(mmla.training.__file__).parent  # the recipes and the script ship with the training package
ACCELERATE_DIR = TRAINING_DIR / "recipes" / "accelerate"
SFT_SCRIPT = TRAINING_DIR / "sft.py"
OWN_OPTIONS = ("--print-command", "--accelerate", "--num-processes")


def accelerate_config(name: str) -> Path:
    """Path of a bundled accelerate config (``single_gpu``, ``ddp``, ``zero2``, ``zero3``, ``zero3_offload``)."""
    path = ACCELERATE_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in ACCELERATE_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no accelerate config {name!r}; bundled: {', '.join(known)}")
    return path


def _launch_argv(sft_args: list[str], *, accelerate: str, num_processes: int | None) -> list[str]:
    """Arguments of ``accelerate launch``; ``--quiet``: a failing run ends without accelerate's own traceback."""
    argv = ["--config_file", str(accelerate_config(accelerate)), "--quiet"]
    if num_processes:
        argv += ["--num_processes", str(num_processes)]
    return [*argv, str(SFT_SCRIPT), *sft_args]


def launch_command(sft_args: list[str], *, accelerate: str = "single_gpu", num_processes: int | None = None) -> str:
    """The ``accelerate launch`` line that runs the same training on one or more GPUs."""
    return shlex.join(["accelerate", "launch", *_launch_argv(sft_args, accelerate=accelerate,
                                                                num_processes=num_processes)])  # fmt: skip


def launch(sft_args: list[str], *, accelerate: str = "single_gpu", num_processes: int | None = None) -> None:
    """Run accelerate's launcher in this process; a failed training raises ``RuntimeError`` (one line).

    The failing process has printed its own one-line error (``training/sft.py: error: ...``) above.
    """
    from accelerate.commands.launch import launch_command as accelerate_launch
    from accelerate.commands.launch import launch_command_parser

    argv = _launch_argv(sft_args, accelerate=accelerate, num_processes=num_processes)
    args = launch_command_parser().parse_args(argv)
    code: int | str | None = 0
    try:
        accelerate_launch(args)
    except SystemExit as err:  # accelerate --quiet: sys.exit(1) after a failed single-process/DeepSpeed run
        code = err.code
    except subprocess.CalledProcessError as err:
        code = err.returncode
    except ImportError as err:  # e.g. a DeepSpeed config without deepspeed installed
        raise RuntimeError(f"accelerate launch --config_file {accelerate_config(accelerate)}: {err}") from None
    except Exception as err:
        from mmla.cli.main import process_failures

        code = process_failures(err)  # the multi-GPU launcher's ChildFailedError: one line per failed process
        if not code:
            raise
    if code not in (0, None):
        raise RuntimeError(f"training failed ({code if isinstance(code, str) else f'exit code {code}'}); "
                           "the failing process printed its error above")  # fmt: skip


def _check_own_options(sft_args: list[str]) -> None:
    """argparse here passes unknown options on to sft.py: catch abbreviations of this command's own options."""
    for arg in sft_args:
        flag = arg.split("=", 1)[0]
        if flag.startswith("--") and flag not in OWN_OPTIONS:
            close = [o for o in OWN_OPTIONS if o.startswith(flag)]
            if close:
                raise ValueError(
                    f"unknown option {flag} (did you mean {close[0]}?); options must be spelled out in full"
                )


def _handle(args: argparse.Namespace) -> int:
    sft_args = [a for a in args.sft_args if a != "--"]
    _check_own_options(sft_args)
    if args.num_processes is not None and args.num_processes < 1:
        raise ValueError(f"--num-processes must be >= 1 (got {args.num_processes})")
    if args.print_command:
        print(launch_command(sft_args, accelerate=args.accelerate or "single_gpu", num_processes=args.num_processes))
        return 0
    if args.accelerate is not None or args.num_processes is not None:
        launch(sft_args, accelerate=args.accelerate or "single_gpu", num_processes=args.num_processes)
        return 0
    from mmla.training.sft import run

    run(sft_args)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        allow_abbrev=False,
        help="LoRA SFT (one task) or instruction tuning (several tasks) with TRL",
        description="Runs training/sft.py in this process (one device), or under accelerate with --accelerate "
        "ddp|zero2|zero3|zero3_offload and/or --num-processes N. Every option after the ones below is passed to "
        "it: --recipe paper/sft/<task>/<model> | paper/it/<model>, --config FILE, --tasks, --data, --output_dir "
        "--modalities text,video,audio (a subset the model takes; recorded in the results), --allow_silent "
        "and any SFTConfig/ModelConfig field. --print-command prints the accelerate launch line instead.",
    )
    p.add_argument("--print-command", action="store_true", help="print the accelerate launch command and exit")
    p.add_argument("--accelerate", default=None, help="bundled accelerate config: launch under accelerate with it")
    p.add_argument("--num-processes", type=int, default=None, help="processes (GPUs) for accelerate")
    p.set_defaults(func=_handle, sft_args=[])
    parse_known = p.parse_known_args

    def parse_known_args(args=None, namespace=None):  # type: ignore[no-untyped-def]
        # Every option this subcommand does not define belongs to training/sft.py (which validates them).
        ns, extra = parse_known(args, namespace)
        ns.sft_args = [*ns.sft_args, *extra]
        return ns, []

    p.parse_known_args = parse_known_args  # type: ignore[method-assign]
