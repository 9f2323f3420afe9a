"""The ``kvcluster`` command: one entry point, a subcommand per component."""

from __future__ import annotations

import argparse
import sys

from kvcluster.common.config import Config, ConfigError


def _add_setting_flags(parser: argparse.ArgumentParser, config: Config) -> None:
    for s in config.settings:
        if not s.flag or s.ignored_reason:
            continue
        nargs = "+" if s.kind == "args" else None
        parser.add_argument(f"--{s.name}", dest=f"setting:{s.name}", metavar=s.kind.upper(), nargs=nargs, help=s.help)


def _apply_flags(config: Config, ns: argparse.Namespace) -> None:
    for key, value in vars(ns).items():
        if key.startswith("setting:") and value is not None:
            config.set(key.split(":", 1)[1], value, source="flag")


def node_main(argv: list[str]) -> int:
    from kvcluster.common.logs import setup_logging
    from kvcluster.node.server import run_node
    from kvcluster.node.settings import node_config

    config = node_config()
    parser = argparse.ArgumentParser(
        prog="kvcluster node",
        description="Run a Redis-compatible data node. Settings: flags > KVCLUSTER_* env > config file > defaults.",
    )
    parser.add_argument("config_file", nargs="?", help="config file: redis.conf syntax, or YAML (.yaml/.yml)")
    parser.add_argument("--config", dest="config_flag", help="config file (same as the positional argument)")
    _add_setting_flags(parser, config)
    ns = parser.parse_args(argv)
    try:
        _apply_flags(config, ns)
    except ConfigError as e:
        print(f"kvcluster node: {e}", file=sys.stderr)
        return 2
    setup_logging(config["loglevel"], config["log-format"], config["logfile"])
    return run_node(config)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="kvcluster", description="kvcluster: Redis-compatible HA key-value store")
    parser.add_argument("command", choices=["node"], help="node: run a data node")
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "node":
        return node_main(rest)
    parser.parse_args(argv)
    return 2


if __name__ == "__main__":
    sys.exit(main())
