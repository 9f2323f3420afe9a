"""The ``kvcluster`` command: one entry point, a subcommand per component.

Each subcommand is a function ``main(argv) -> exit code`` named in
:data:`SUBCOMMANDS` and imported only when run, so ``kvcluster --help`` stays
fast and components do not import each other. Components with settings build
their parser with :func:`settings_parser` and load their configuration with
:func:`load_config`: flags > ``KVCLUSTER_*`` environment > config file > defaults.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Mapping

from kvcluster.common.config import ENV_PREFIX, Config, ConfigError

log = logging.getLogger("kvcluster")

# name -> ("module:function", one-line help). A component adds its own line here.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "node": ("kvcluster.cli:node_main", "run a data node: a Redis-compatible server"),
    "sentinel": ("kvcluster.cli:sentinel_main", "run a sentinel: health checks, quorum, failover (Redis Sentinel)"),
    "config-reference": ("kvcluster.cli:config_reference_main", "print the settings reference as Markdown"),
    "check-aof": ("kvcluster.node.persistence_cli:check_aof_main", "check or repair an append-only file (AOF)"),
    "import": ("kvcluster.node.persistence_cli:import_main", "load an RDB snapshot (ours or Redis's) into a node"),
    "up": ("kvcluster.local.commands:up_main", "run a local HA cluster (leader, replicas, sentinels) with a live view"),
    "status": ("kvcluster.local.commands:status_main", "print a cluster's status once (or --json) via its sentinels"),
    "failover": ("kvcluster.local.commands:failover_main", "a planned failover (SENTINEL FAILOVER)"),
    "chaos": ("kvcluster.local.commands:chaos_main", "chaos kill-leader: kill -9 the leader, watch the failover"),
    "cli": ("kvcluster.tools.cli:main", "an interactive prompt like redis-cli, following the leader via sentinels"),
    "bench": ("kvcluster.tools.bench:main", "a load generator: ops/s and latency percentiles, --plot over time"),
    "operator": ("kvcluster.operator.main:main", "run the Kubernetes operator (kopf) for KVCluster resources"),
}

CONFIG_ENV = ENV_PREFIX + "CONFIG"


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("kvcluster")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "unknown"


# -- shared by every component with settings --------------------------------------------


def settings_parser(prog: str, description: str, config: Config) -> argparse.ArgumentParser:
    """``prog [CONFIG_FILE] [--config FILE] [--<setting> VALUE ...]`` plus --list-settings/--check-config."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=(
            f"Every setting can also be set as {ENV_PREFIX}<NAME> (upper case, dashes as underscores) or in the "
            "config file. Precedence: flags > environment > config file > defaults. Run with --list-settings for "
            "all settings, including the redis.conf directives accepted for compatibility."
        ),
        allow_abbrev=False,
    )
    parser.add_argument(
        "config_file",
        nargs="?",
        metavar="CONFIG_FILE",
        help="config file: YAML if it ends in .yaml/.yml, else redis.conf syntax",
    )
    parser.add_argument("--config", dest="config_flag", metavar="FILE", help=f"config file (also {CONFIG_ENV})")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument(
        "--list-settings",
        action="store_true",
        help="print every setting (name, type, default, CONFIG SET-able, ignored and why) and exit",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="load the configuration from all sources, print warnings, and exit (status 1 on errors)",
    )
    group = parser.add_argument_group("settings (redis.conf names)")
    aliases: dict[str, list[str]] = {}
    for name, s in config.by_name.items():  # declared and Redis's generic old names (--slaveof)
        if name != s.name:
            aliases.setdefault(s.name, []).append(name)
    for s in config.settings:
        nargs = "+" if s.kind == "args" else None
        metavar = s.kind.upper() if s.kind != "enum" else "{" + ",".join(s.choices) + "}"
        help_text = s.help + ("" if s.mutable else " [fixed at start-up]")
        group.add_argument(
            f"--{s.name}",
            *[f"--{alias}" for alias in aliases.get(s.name, ())],
            dest=f"setting:{s.name}",
            metavar=metavar,
            nargs=nargs,
            # Ignored redis.conf directives are accepted as flags, like redis-server, but not listed.
            help=help_text if s.flag and not s.ignored_reason and not s.hidden else argparse.SUPPRESS,
        )
    return parser


def load_config(config: Config, ns: argparse.Namespace, environ: Mapping[str, str]) -> None:
    """Apply the config file, then the environment, then the flags. Raises ConfigError."""
    if ns.config_flag and ns.config_file and os.path.abspath(ns.config_flag) != os.path.abspath(ns.config_file):
        raise ConfigError(f"two config files given: {ns.config_file!r} and --config {ns.config_flag!r}")
    path = ns.config_flag or ns.config_file or environ.get(CONFIG_ENV)
    if path:
        config.load_file(path)
    config.load_env(environ)
    for var in config.unknown_env(environ, allowed=[CONFIG_ENV]):
        config.warnings.append(f"environment variable {var} names no setting; ignored")
    for key, value in vars(ns).items():
        if not key.startswith("setting:") or value is None:
            continue
        name = key.split(":", 1)[1]
        try:
            config.set(name, value, source="flag")
        except ConfigError as e:
            shown = " ".join(value) if isinstance(value, list) else value
            raise ConfigError(f"--{name}: invalid value for '{name}': {e.message} (got {shown!r})", name) from None
        config.note_ignored(config.setting(name), f"--{name}", name)


def settings_table(config: Config) -> str:
    """Plain-text table for ``--list-settings``."""
    rows = config.describe()
    headers = {"name": "NAME", "type": "TYPE", "default": "DEFAULT", "mutable": "CONFIG SET", "notes": "NOTES"}
    for row in rows:
        if row["ignored"]:
            accepts = "" if row["accepts"] == "any value" else f" ({row['accepts']})"
            row["notes"] = f"ignored{accepts}: {row['ignored']}"
        else:
            row["notes"] = row["help"]
        row["default"] = row["default"] if row["default"] != "" else '""'
        if len(row["default"]) > 40:
            row["default"] = row["default"][:37] + "..."
        if len(row["type"]) > 24:
            row["type"] = "enum"
    widths = {k: max(len(headers[k]), *(len(r[k]) for r in rows)) for k in ("name", "type", "default", "mutable")}
    lines = []
    for row in [headers, *rows]:
        cells = [row[k].ljust(widths[k]) for k in ("name", "type", "default", "mutable")]
        lines.append("  ".join([*cells, row["notes"]]).rstrip())
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def config_reference(config: Config, component: str = "node") -> str:
    """The README's configuration reference, as Markdown, generated from the settings."""
    rows = config.describe()
    out = [
        f"### `kvcluster {component}` settings",
        "",
        f"Generated by `kvcluster config-reference {component}`; do not edit by hand. Every setting can be given as a",
        f"flag (`--name value`), as an environment variable (`{ENV_PREFIX}NAME`: upper case, dashes as",
        "underscores) or in the config file (redis.conf syntax, or YAML for `.yaml`/`.yml`); flags win over the",
        "environment, which wins over the file. *Runtime* says whether `CONFIG SET` can change it.",
        "",
        "| Setting | Type | Default | Runtime | Description |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        if row["ignored"]:
            continue
        default = f"`{row['default']}`" if row["default"] != "" else '`""`'
        out.append(f"| `{row['name']}` | {_md(row['type'])} | {_md(default)} | {row['mutable']} | {_md(row['help'])} |")
    ignored = [row for row in rows if row["ignored"]]
    if ignored:
        out += [
            "",
            "#### redis.conf directives accepted for compatibility",
            "",
            "These are accepted (from a file, the environment, flags or `CONFIG SET`) so existing redis.conf",
            "files load, and a warning with the reason is logged. Where a value would promise behaviour kvcluster",
            "does not have (persistence, a memory limit, notifications...), only the value matching what",
            "kvcluster does is accepted and anything else fails with the reason.",
            "",
            "| Directive | Default | Accepted | Why it is ignored |",
            "|---|---|---|---|",
        ]
        for row in ignored:
            default = f"`{row['default']}`" if row["default"] != "" else '`""`'
            out.append(f"| `{row['name']}` | {_md(default)} | {_md(row['accepts'])} | {_md(row['ignored'])} |")
    return "\n".join(out) + "\n"


# -- subcommands ----------------------------------------------------------------------------


def _component_configs() -> dict[str, Callable[[], Config]]:
    from kvcluster.node.settings import node_config
    from kvcluster.sentinel.settings import sentinel_config

    return {"node": node_config, "sentinel": sentinel_config}


def config_reference_main(argv: list[str]) -> int:
    components = _component_configs()
    parser = argparse.ArgumentParser(
        prog="kvcluster config-reference",
        description="Print the configuration reference (Markdown tables generated from the settings).",
        allow_abbrev=False,
    )
    parser.add_argument(
        "component",
        nargs="?",
        default="node",
        choices=[*sorted(components), "all"],
        help="default: node; all = docs/configuration.md (node and sentinel)",
    )
    ns = parser.parse_args(argv)
    if ns.component == "all":
        from kvcluster.tools.config_reference import document

        sys.stdout.write(document())
        return 0
    sys.stdout.write(config_reference(components[ns.component](), ns.component))
    return 0


def report_config_check(prog: str, config: Config) -> int:
    """``--check-config``: the warnings, then OK (the errors were raised while loading)."""
    for warning in config.warnings:
        print(f"{prog}: warning: {warning}", file=sys.stderr)
    print(f"configuration OK{f' ({config.config_file})' if config.config_file else ''}")
    return 0


def start_logging(config: Config, role: str = "M") -> None:
    """Log as configured, flush the warnings gathered while loading, follow CONFIG SET loglevel."""
    from kvcluster.common.logs import LEVELS, setup_logging

    setup_logging(config["loglevel"], config["log-format"], config["logfile"], role=role)
    for warning in config.warnings:
        log.warning(warning)
    config.warnings.clear()
    config.on_change("loglevel", lambda level: logging.getLogger().setLevel(LEVELS.get(level, logging.INFO)))


def node_main(argv: list[str]) -> int:
    from kvcluster.common.logs import setup_logging
    from kvcluster.node.settings import node_config

    config = node_config()
    parser = settings_parser(
        "kvcluster node",
        "Run a Redis-compatible data node. Accepts redis-server style arguments: "
        "kvcluster node /etc/redis/redis.conf --port 7000.",
        config,
    )
    ns = parser.parse_args(argv)
    if ns.list_settings:
        print(settings_table(config))
        return 0
    try:
        load_config(config, ns, os.environ)
    except ConfigError as e:
        print(f"kvcluster node: {e.message}", file=sys.stderr)
        return 1
    if ns.check_config:
        return report_config_check("kvcluster node", config)
    start_logging(config)
    config.on_change("log-format", lambda fmt: setup_logging(config["loglevel"], fmt, config["logfile"]))

    from kvcluster.node.server import run_node

    return run_node(config)


def sentinel_main(argv: list[str]) -> int:
    from kvcluster.sentinel import state
    from kvcluster.sentinel.settings import sentinel_config

    config = sentinel_config()
    directives = state.install(config)
    parser = settings_parser(
        "kvcluster sentinel",
        "Run a sentinel (Redis Sentinel compatible). Accepts redis-sentinel style arguments: "
        "kvcluster sentinel /etc/redis/sentinel.conf, or flags: --monitor mymaster 127.0.0.1 6379 2.",
        config,
    )
    ns = parser.parse_args(argv)
    if ns.list_settings:
        print(settings_table(config))
        return 0
    try:
        load_config(config, ns, os.environ)
        from kvcluster.sentinel.server import build_core

        core = build_core(config, directives)  # the sentinel lines, with file:line errors
    except ConfigError as e:
        print(f"kvcluster sentinel: {e.message}", file=sys.stderr)
        return 1
    if ns.check_config:
        return report_config_check("kvcluster sentinel", config)
    start_logging(config, role="X")

    from kvcluster.sentinel.server import run_sentinel

    return run_sentinel(config, core, version())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        target, _ = SUBCOMMANDS[argv[0]]
        module, func = target.split(":")
        try:
            return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)
        except BrokenPipeError:
            # Output piped into `head` and friends: not an error. Keep the interpreter's
            # final flush from complaining about the closed pipe too.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    parser = argparse.ArgumentParser(
        prog="kvcluster",
        description="kvcluster: a Redis-compatible, highly available key-value store.",
        epilog="Run 'kvcluster COMMAND --help' for the options of a command.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"kvcluster {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (_, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    parser.parse_args(argv)  # --help, --version or an error (exit 2)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
