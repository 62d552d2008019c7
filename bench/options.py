"""Command-line options that several benchmarks take, named, typed and defaulted alike."""

from __future__ import annotations

import argparse
from pathlib import Path

SEED = 20261125


def add_seed(parser: argparse.ArgumentParser, default: int = SEED) -> None:
    parser.add_argument("--seed", type=int, default=default, help=f"random seed [{default}]")


def add_output(parser: argparse.ArgumentParser, default: Path) -> None:
    parser.add_argument(
        "--output", type=Path, default=default, help=f"where the JSON report goes [{default}]"
    )


def add_requests(
    parser: argparse.ArgumentParser, each: str, requests: int = 2000, warmup: int = 200
) -> None:
    """How many requests are measured for `each` (a scenario, a target ...), after how
    many unmeasured ones."""
    parser.add_argument(
        "--requests", type=int, default=requests, help=f"measured requests per {each} [{requests}]"
    )
    parser.add_argument(
        "--warmup", type=int, default=warmup, help=f"unmeasured requests before them [{warmup}]"
    )


def add_concurrency_levels(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 8],
        help="concurrency levels, each measured in turn [1 8]",
    )


def add_server_settings(parser: argparse.ArgumentParser, flag: str) -> None:
    """`flag SESSIONHUB_X=VALUE`, repeatable: settings for the measured server, as
    `args.server_env`, a list of (name, value)."""
    parser.add_argument(
        flag,
        dest="server_env",
        type=server_setting,
        action="append",
        default=[],
        metavar="SESSIONHUB_X=VALUE",
        help="a setting for the server, to compare (repeat for several)",
    )


def server_setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.startswith("SESSIONHUB_"):
        raise argparse.ArgumentTypeError(f"{text!r}: give SESSIONHUB_NAME=value")
    return key, value
