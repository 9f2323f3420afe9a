"""The ``kvcluster`` command line: help, version, settings listings and start-up errors."""

from __future__ import annotations

import os
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
from helpers import KVCLUSTER
from kvcluster.cli import SUBCOMMANDS, config_reference, main
from kvcluster.node.settings import node_config


@pytest.fixture(autouse=True)
def _no_kvcluster_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("KVCLUSTER_"):
            monkeypatch.delenv(var)


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KVCLUSTER_")}
    return subprocess.run([*KVCLUSTER, *args], capture_output=True, text=True, timeout=30, env={**base, **(env or {})})


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse: --help, --version, usage errors
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# -- help and version ----------------------------------------------------------------------------


def test_version_real_process() -> None:
    out = _run("--version")
    assert (out.returncode, out.stdout) == (0, f"kvcluster {version('kvcluster')}\n")


def test_node_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(capsys, "node", "--version") == (0, f"kvcluster node {version('kvcluster')}\n", "")


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "--help")
    assert code == 0
    assert out.startswith("usage: kvcluster [-h] [--version] COMMAND ...")
    for name, (_, help_text) in SUBCOMMANDS.items():
        assert name in out
        assert help_text.split()[0] in out


def test_no_command_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _main(capsys)
    assert code == 2 and out == ""
    assert err.startswith("usage: kvcluster")


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _main(capsys, "frobnicate")
    assert code == 2
    assert "invalid choice: 'frobnicate'" in err


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = _main(capsys, command, "--help")
    assert code == 0
    assert out.startswith(f"usage: kvcluster {command}")


def test_node_help_lists_settings_but_not_ignored_directives(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _main(capsys, "node", "--help")
    assert "CONFIG_FILE" in out and "--config FILE" in out
    assert "--port INT" in out and "TCP port for clients [fixed at start-up]" in out
    assert "--proto-max-bulk-len MEMORY" in out
    assert "KVCLUSTER_<NAME>" in out
    assert "--daemonize" not in out  # accepted (redis-server style) but not advertised
    assert "--list-settings" in out and "--check-config" in out


# -- settings listings ---------------------------------------------------------------------------------


def test_list_settings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "node", "--list-settings")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "DEFAULT", "CONFIG", "SET", "NOTES"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {s.name for s in node_config().settings if not s.hidden or s.ignored_reason}
    assert "rename-command" in rows  # refused, and the listing says why
    assert rows["port"].split()[:4] == ["port", "int", "6379", "no"]
    assert rows["timeout"].split()[:4] == ["timeout", "int", "0", "yes"]
    assert "ignored: kvcluster always runs in the foreground" in rows["daemonize"]
    assert "ignored (only 'no'): timestamp annotations are not written" in rows["aof-timestamp-enabled"]
    assert rows["appendonly"].split()[:4] == ["appendonly", "bool", "no", "yes"]
    assert "ignored (refused): commands cannot be renamed" in rows["rename-command"]


def test_config_reference_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "config-reference")
    assert code == 0
    assert out == config_reference(node_config())
    assert out.startswith("### `kvcluster node` settings\n")
    assert "| Setting | Type | Default | Runtime | Description |" in out
    assert "| `port` | int | `6379` | no | TCP port for clients |" in out
    assert "| `proto-max-bulk-len` | memory | `512mb` | yes |" in out
    assert "| `log-format` | text\\|json | `text` | yes |" in out  # pipes escaped inside cells
    assert "| `aof-timestamp-enabled` | `no` | only 'no' | timestamp annotations are not written |" in out
    assert "| `appendonly` | bool | `no` | yes |" in out
    assert "| `daemonize` | `no` | any value | kvcluster always runs in the foreground |" in out
    for s in node_config().settings:
        if not s.hidden or s.ignored_reason:
            assert f"| `{s.name}` |" in out, s.name
    assert "| `rename-command` |" in out


def test_config_reference_via_python_m() -> None:
    out = subprocess.run(
        [*KVCLUSTER, "config-reference", "node"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert out == config_reference(node_config())


# -- loading the configuration ------------------------------------------------------------------------


def test_startup_error_real_process(tmp_path: Path) -> None:
    conf = tmp_path / "redis.conf"
    conf.write_text("port 7000\n# comment\nfoo bar\n")
    out = _run("node", str(conf))
    assert out.returncode == 1
    assert out.stderr == f"kvcluster node: {conf}:3: unknown directive 'foo'\n"
    assert out.stdout == ""


@pytest.mark.parametrize(
    ("files", "argv", "env", "expected"),
    [
        ({"a.conf": "port x\n"}, ["a.conf"], {}, "{dir}/a.conf:1: invalid value for 'port': argument couldn't be "
         "parsed into an integer (got x)"),
        ({}, ["missing.conf"], {}, "cannot open config file '{dir}/missing.conf': No such file or directory"),
        ({"a.conf": "", "b.conf": ""}, ["a.conf", "--config", "b.conf"], {}, "two config files given: 'a.conf' and "
         "--config 'b.conf'"),
        ({}, ["--timeout", "soon"], {}, "--timeout: invalid value for 'timeout': argument couldn't be parsed into an "
         "integer (got 'soon')"),
        ({}, ["--aof-timestamp-enabled", "yes"], {}, "--aof-timestamp-enabled: invalid value for "
         "'aof-timestamp-enabled': AOF timestamp annotations are not written by kvcluster: refusing 'yes' (got 'yes')"),
        ({}, [], {"KVCLUSTER_HZ": "fast"}, "environment variable KVCLUSTER_HZ: invalid value for 'hz': argument "
         "couldn't be parsed into an integer (got 'fast')"),
        ({}, [], {"KVCLUSTER_CONFIG": "{dir}/nope.yaml"}, "cannot open config file '{dir}/nope.yaml': No such file or "
         "directory"),
    ],
)  # fmt: skip
def test_startup_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    argv: list[str],
    env: dict[str, str],
    expected: str,
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for var, value in env.items():
        monkeypatch.setenv(var, value.format(dir=tmp_path))
    monkeypatch.chdir(tmp_path)
    code, out, err = _main(capsys, "node", *argv)
    assert (code, out) == (1, "")
    assert err == f"kvcluster node: {expected.format(dir=tmp_path)}\n"


def test_unknown_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _main(capsys, "node", "--no-such-setting", "1")
    assert code == 2
    assert "unrecognized arguments: --no-such-setting" in err
    code, _, err = _main(capsys, "node", "--por", "1")  # no abbreviations: --por is not --port
    assert code == 2


def test_check_config_applies_every_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "node.conf"
    conf.write_text("port 7000\ndaemonize yes\n")
    monkeypatch.setenv("KVCLUSTER_PROT", "7001")  # a typo
    monkeypatch.setenv("KVCLUSTER_ADMIN_PORT", "-1")
    code, out, err = _main(capsys, "node", str(conf), "--check-config", "--bind", "127.0.0.1", "::1", "--hz", "20")
    assert (code, out) == (0, f"configuration OK ({conf})\n")
    assert err.splitlines() == [
        f"kvcluster node: warning: {conf}:2: 'daemonize' is accepted but ignored: kvcluster always runs in the "
        "foreground",
        "kvcluster node: warning: environment variable KVCLUSTER_PROT names no setting; ignored",
    ]


def test_flags_parse_like_redis_server(tmp_path: Path) -> None:
    """Multi-word values, negative numbers and redis-server style quoting of a whole value."""
    from kvcluster.cli import load_config, settings_parser

    config = node_config()
    parser = settings_parser("kvcluster node", "", config)
    ns = parser.parse_args(
        [
            "--bind",
            "127.0.0.1",
            "::1",
            "--admin-port",
            "-1",
            "--save",
            "",
            "--client-output-buffer-limit",
            "pubsub 0 0 0",
        ]
        + ["--slave-priority", "3"]
    )
    load_config(config, ns, {})
    assert config["bind"] == ["127.0.0.1", "::1"]
    assert config["admin-port"] == -1
    assert config["save"] == []
    assert config["client-output-buffer-limit"][-4:] == ["pubsub", "0", "0", "0"]
    assert config["replica-priority"] == 3
    assert config.sources["bind"] == "flag"
