"""Argument types and the option groups several commands share (declared once, here)."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
from typing import Any

from taskspace.errors import TaskspaceError, did_you_mean

__all__ = [
    "check_execution_flags",
    "Parser",
    "positive_int",
    "nonnegative_int",
    "finite_float",
    "comma_ints",
    "key_number",
    "add_train_options",
    "train_options",
    "add_run_folder",
    "run_folder",
    "add_grid_options",
    "add_data_root",
    "comma_list",
]


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, name the option and suggest a close match."""

    def error(self, message: str) -> Any:  # argparse's signature: it never returns
        self.exit(2, f"taskspace: error: {rephrase(message)} (see `{self.prog} --help`)\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        arguments, extras = self.parse_known_args(args, namespace)
        if extras:
            known = _option_strings(self, getattr(arguments, "command", None))
            unknown = extras[0]
            hint = _closest_option(unknown, known) if unknown.startswith("-") else ""
            self.error(f"unrecognized argument '{unknown}'{hint}")
        return arguments


def _closest_option(unknown: str, known: list[str]) -> str:
    """``; did you mean '--x'?`` with the one option that shares the longest prefix with ``unknown``, else
    the closest spelling."""
    name = unknown.split("=", 1)[0]
    for length in range(len(name), 4, -1):
        matches = sorted({option for option in known if option.startswith(name[:length])})
        if len(matches) == 1:
            return f"; did you mean '{matches[0]}'?"
        if matches:
            break
    return did_you_mean(name, known)


def _option_strings(parser: argparse.ArgumentParser, command: str | None) -> list[str]:
    options = [option for action in parser._actions for option in action.option_strings]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            options += [o for sub in action.choices[command]._actions for o in sub.option_strings]
    return options


def rephrase(message: str) -> str:
    """argparse's ``argument --k: invalid choice: 'x' (choose from ...)`` as ``--k: 'x' is not ...; did you mean``."""
    match = re.fullmatch(r"argument ([^:]+): (.*)", message, flags=re.DOTALL)
    if match is None:
        return message
    flag, detail = match.group(1).split("/")[-1], match.group(2)
    choice = re.fullmatch(r"invalid choice: '([^']*)' \(choose from (.*)\)", detail)
    if choice is not None:
        options = re.findall(r"'([^']*)'", choice.group(2))
        typed = choice.group(1)
        return f"{flag}: unknown '{typed}'{did_you_mean(typed, options)} (choose from {', '.join(options)})"
    return f"{flag} {detail}" if not detail.startswith("expected") else f"{flag}: {detail}"


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got '{text}'") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got '{text}'") from None


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got '{text}'") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got '{text}'")
    return value


def comma_ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 2,3, got '{text}'") from None


def comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def strict_comma_list(text: str) -> list[str]:
    """A comma list where an empty entry is a mistake (``0,,1`` for a module order), not something to skip."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"expected numbers separated by single commas like 0,2,1, got '{text}'")
    return parts


def key_number(text: str) -> tuple[str, float]:
    name, equals, value = text.partition("=")
    try:
        if not equals or not name.strip():
            raise ValueError
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER like temperature=0.05, got '{text}'") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected a finite number in '{text}'")
    return name.strip(), number


# Training options: one flag per TrainConfig field, with the field's own documentation ---------------------


def _field_docs(cls: type) -> dict[str, str]:
    """``{field: first sentence}`` from the ``Attributes:`` section of ``cls``'s docstring."""
    docs: dict[str, str] = {}
    text = (cls.__doc__ or "").split("Attributes:", 1)[-1]
    current = None
    for line in text.splitlines():
        match = re.match(r"\s{8}(\w+): (.*)", line)
        if match:
            current = match.group(1)
            docs[current] = match.group(2).strip()
        elif current and line.startswith(" " * 12):
            docs[current] += " " + line.strip()
    sentence_end = r"(?<!e\.g)(?<!i\.e)\. "
    return {name: re.split(sentence_end, doc.replace("``", ""), maxsplit=1)[0].rstrip(".")
            for name, doc in docs.items()}


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`~taskspace.config.TrainConfig` field but ``task`` (given on its own)."""
    from taskspace.config import TrainConfig

    docs = _field_docs(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        if field.name == "task":
            continue
        flag, kind = "--" + field.name.replace("_", "-"), str(field.type)
        default = field.default_factory() if callable(field.default_factory) else field.default
        shown = "chosen by the dataset" if field.name in _BY_DATASET else _shown(default)
        help_text = f"{docs.get(field.name, field.name)} (default: {shown})"
        if kind == "bool":
            help_text = ("turn off: " if default else "") + help_text
            parser.add_argument(("--no-" + flag[2:]) if default else flag, dest=field.name, default=None,
                                action="store_const", const=not default, help=help_text.replace("%", "%%"))
        elif kind.startswith("dict"):
            parser.add_argument(flag.removesuffix("s"), dest=field.name, action="append", type=key_number,
                                metavar="NAME=VALUE", help=help_text.replace("%", "%%") + "; repeatable")
        else:
            types = {"int": integer, "float": finite_float, "tuple": comma_ints}
            convert = next((value for key, value in types.items() if kind.startswith(key)), str)
            parser.add_argument(flag, dest=field.name, default=None, type=convert, help=help_text.replace("%", "%%"))


def integer(text: str) -> int:
    """An integer as typed; the config it goes into checks its range, naming the option."""
    return _int(text)


#: Options whose default depends on the dataset (``None`` in the config).
_BY_DATASET = ("architecture", "batch_size")


def _shown(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value) or "none"
    if isinstance(value, dict):
        return "none" if not value else ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def train_options(arguments: argparse.Namespace) -> dict[str, Any]:
    """The training options of a ``train`` command: its TOML file's, overridden by its flags."""
    from taskspace.config import TrainConfig, load_toml_options

    options: dict[str, Any] = load_toml_options(arguments.config) if arguments.config else {}
    for field in dataclasses.fields(TrainConfig):
        value = getattr(arguments, field.name, None)
        if value is None:
            continue
        if isinstance(value, list):  # NAME=VALUE pairs
            options[field.name] = {**options.get(field.name, {}), **dict(value)}
        else:
            options[field.name] = value
    return options


# The run folder: the first positional argument of every command that works on a run --------------------


def add_run_folder(parser: argparse.ArgumentParser, *, old_flag: str | None, help_text: str) -> None:
    """``RUN`` as the first positional argument; ``old_flag`` (``--out`` or ``--run``) still works, with a notice."""
    parser.add_argument("run", nargs="?", metavar="RUN", help=help_text)
    if old_flag is not None:
        parser.add_argument(old_flag, dest="run_flag", metavar="RUN", help=argparse.SUPPRESS)


def run_folder(arguments: argparse.Namespace, command: str) -> str:
    """The run folder a command was given, from ``RUN`` or (deprecated) its old flag."""
    flag = getattr(arguments, "run_flag", None)
    if flag is not None:
        if arguments.run is not None and arguments.run != flag:
            raise TaskspaceError(f"two run folders given ('{arguments.run}' and '{flag}'); give one, as RUN")
        print(f"taskspace: note: the run folder's flag is deprecated; write `taskspace {command} {flag} ...`",
              file=sys.stderr)
        return str(flag)
    if arguments.run is None:
        raise TaskspaceError(f"no run folder given; write `taskspace {command} RUN ...`")
    return str(arguments.run)


def add_data_root(parser: argparse.ArgumentParser, *, of_run: bool) -> None:
    """``--data-root``: the folder holding the datasets (for a run, overriding the one it recorded)."""
    default = "the run's, else $TASKSPACE_DATA" if of_run else "$TASKSPACE_DATA"
    parser.add_argument("--data-root", help=f"folder holding cifar-10-batches-py (default: {default})")


def add_grid_options(parser: argparse.ArgumentParser) -> None:
    """The options of the commands that fill a run: its grid, its data and how its cells run."""
    parser.add_argument("--space", default=None, help="default (default), digits or a TOML file")
    add_data_root(parser, of_run=True)
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="epochs of each source network (default: 10)")
    parser.add_argument("--seed", type=nonnegative_int, default=None, help="root seed (default: 0)")
    parser.add_argument("--train-config", default=None, metavar="TOML",
                        help="training options of every source network, as for `taskspace train --config` "
                             "(e.g. architecture = \"resnet18\", precision = \"bf16\")")
    parser.add_argument("--score-samples", type=positive_int, default=None,
                        help="target training images the estimators see (default: all)")
    parser.add_argument("--finetune-epochs", type=positive_int, default=None,
                        help="epochs of the fine-tuning ground truth (default: 2)")
    parser.add_argument("--finetune-lr", type=positive_float, default=None,
                        help="peak learning rate of the fine-tuning ground truth (default: 0.1 on a trained run, "
                             "0.01 on a zoo run)")
    parser.add_argument("--executor", default="serial", help="serial (default), process or ray")
    parser.add_argument("--ray-address", default=None,
                        help="with --executor ray: an existing Ray cluster, e.g. 10.0.0.1:6379 (default: $RAY_ADDRESS, "
                             "else a Ray started here)")
    parser.add_argument("--workers", type=positive_int, default=None, help="parallel workers (default: CPU count)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch threads per cell; equal values give bit-identical results across executors")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def check_execution_flags(arguments: argparse.Namespace) -> None:
    """``--executor``, ``--workers``, ``--threads`` and ``--ray-address`` of a command that fills a run,
    checked before anything runs."""
    from taskspace.runner.executors import check_execution

    check_execution(arguments.executor, arguments.workers, arguments.threads)
    if arguments.ray_address is not None and arguments.executor != "ray":
        raise TaskspaceError(f"--ray-address names a Ray cluster, which only --executor ray uses (not "
                             f"'{arguments.executor}'); add --executor ray")
