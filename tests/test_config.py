"""Configuration: the redis.conf and YAML loaders, precedence, CONFIG GET/SET/RESETSTAT/REWRITE.

Unit tests drive :mod:`kvcluster.common.config` directly; the rest run real
``kvcluster node`` processes (and a real redis-server where we compare parsing).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers import KVCLUSTER, NodeProcess, free_port, wait_until
from kvcluster.common.config import (
    REWRITE_SIGNATURE,
    Config,
    ConfigError,
    Setting,
    parse_memory,
    quote_arg,
    read_redis_conf,
    split_args,
)
from kvcluster.node.settings import node_config

DEBIAN_REDIS_CONF = Path("/etc/redis/redis.conf")

# -- sdssplitargs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("port 6379", ["port", "6379"]),
        ("  bind\t127.0.0.1   ::1  ", ["bind", "127.0.0.1", "::1"]),
        ('requirepass "a b"', ["requirepass", "a b"]),
        (r'x "\n\r\t\b\a\\\""', ["x", '\n\r\t\b\a\\"']),
        (r'x "\x41\x7a"', ["x", "Az"]),
        (r'x "\xzz"', ["x", "xzz"]),  # not hex: the backslash escapes the 'x'
        (r"x 'it\'s'", ["x", "it's"]),
        (r"x 'a\nb'", ["x", r"a\nb"]),  # single quotes: no escapes but \'
        ('x foo"bar"', ["x", "foobar"]),  # a quote may open mid-word, like sdssplitargs
        ('x ""', ["x", ""]),
        ("x ''", ["x", ""]),
        (r"x a\b", ["x", r"a\b"]),  # outside quotes a backslash is literal
        ("", []),
        ("   ", []),
    ],
)
def test_split_args(line: str, expected: list[str]) -> None:
    assert split_args(line) == expected


@pytest.mark.parametrize("line", ['x "abc', "x 'abc", 'x "a"b', "x 'a'b", 'x "a\\"'])
def test_split_args_unbalanced(line: str) -> None:
    with pytest.raises(ConfigError, match="unbalanced quotes"):
        split_args(line)


def test_split_args_high_bytes_round_trip() -> None:
    (value,) = split_args(r'"\xff\x80ok"')
    assert value.encode("utf-8", "surrogateescape") == b"\xff\x80ok"
    assert split_args(quote_arg(value)) == [value]


@pytest.mark.parametrize("arg", ["plain", "", "two words", 'q"uote', "back\\slash", "tab\there", "new\nline", "it's"])
def test_quote_arg_round_trips(arg: str) -> None:
    assert split_args("x " + quote_arg(arg)) == ["x", arg]
    assert split_args("x " + quote_arg(arg, always=True)) == ["x", arg]


def _redis_server_or_fail() -> str:
    path = shutil.which("redis-server")
    if path is None:
        pytest.fail("redis-server is not installed: `make test` installs Debian's redis-server")
    return path


# String settings both servers echo back unchanged, and that Redis does not otherwise act on.
_ECHO_SETTINGS = ("syslog-ident", "dbfilename", "appendfilename", "appenddirname")


def test_quoting_matches_real_redis(tmp_path: Path) -> None:
    """The same tricky lines give the same values in redis-server and in kvcluster."""
    values = [r'"a\tb\x41\\\"c"', r"'it\'s'", 'foo"bar baz"', r'"\xffbyte"', "'sq \\n'", "plain"]
    conf = tmp_path / "quotes.conf"
    port = free_port()
    results: dict[str, list[bytes]] = {"redis": [], "kvcluster": []}
    for i in range(0, len(values), len(_ECHO_SETTINGS)):
        lines = [f"{name} {value}" for name, value in zip(_ECHO_SETTINGS, values[i:], strict=False)]
        names = _ECHO_SETTINGS[: len(lines)]
        conf.write_text(f"port {port}\nsave ''\nappendonly no\n" + "\n".join(lines) + "\n")
        proc = subprocess.Popen(
            [_redis_server_or_fail(), str(conf)], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            client = redis.Redis(port=port, protocol=2)
            wait_until(client.ping, what="redis-server")
            flat = _raw(port, "CONFIG", "GET", *names)
            got = dict(zip(flat[::2], flat[1::2], strict=True))
            results["redis"] += [got[name.encode()] for name in names]
            client.close()
        finally:
            proc.kill()  # nothing to save
            proc.wait(10)
        config = node_config()
        config.load_file(str(conf))
        results["kvcluster"] += [config[name].encode("utf-8", "surrogateescape") for name in names]
    assert results["kvcluster"] == results["redis"]
    assert results["redis"][:4] == [b'a\tbA\\"c', b"it's", b"foobar baz", b"\xffbyte"]


# -- redis.conf loading ------------------------------------------------------------------------


def _load(tmp_path: Path, text: str, name: str = "node.conf") -> Config:
    path = tmp_path / name
    path.write_text(text)
    config = node_config()
    config.load_file(str(path))
    return config


def _load_error(tmp_path: Path, text: str, name: str = "node.conf") -> str:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, text, name)
    return e.value.message


def test_redis_conf_basics(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "# a comment\n"
        "   # an indented comment\n"
        "\n"
        "PORT 7000\n"  # directive names are case-insensitive
        "bind 127.0.0.1 ::1\n"
        "Timeout 30\n"
        "requirepass 'se cret'\n"
        "loglevel WARNING\n",
    )
    assert config["port"] == 7000
    assert config["bind"] == ["127.0.0.1", "::1"]
    assert config["timeout"] == 30
    assert config["requirepass"] == "se cret"
    assert config["loglevel"] == "warning"
    assert config.sources["port"] == "file"
    assert config.sources["hz"] == "default"
    assert config.config_file == str(tmp_path / "node.conf")


def test_redis_conf_crlf_lines(tmp_path: Path) -> None:
    (tmp_path / "crlf.conf").write_bytes(b"port 7001\r\ntimeout 5\r\n")
    config = node_config()
    config.load_file(str(tmp_path / "crlf.conf"))
    assert (config["port"], config["timeout"]) == (7001, 5)
    # Only "\n" ends a line, as in Redis: a form feed inside a value is part of it.
    (tmp_path / "ff.conf").write_bytes(b'requirepass "a\x0cb"\n')
    config.load_file(str(tmp_path / "ff.conf"))
    assert config["requirepass"] == "a\x0cb"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1gb", 1024**3), ("1g", 1000**3), ("100mb", 100 * 1024**2), ("100MB", 100 * 1024**2), ("1k", 1000)]
    + [("1kb", 1024), ("5000000", 5_000_000), ("2m", 2_000_000), ("0", 0)],
)
def test_memory_units(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


def test_memory_units_in_files(tmp_path: Path) -> None:
    config = _load(tmp_path, "proto-max-bulk-len 1gb\nclient-query-buffer-limit 2000m\n")
    assert config["proto-max-bulk-len"] == 1024**3
    assert config["client-query-buffer-limit"] == 2_000_000_000


@pytest.mark.parametrize("text", ["1xb", "gb", "", "1.5gb", "one"])
def test_memory_units_invalid(text: str) -> None:
    with pytest.raises(ConfigError, match="argument must be a memory value"):
        parse_memory(text)


def test_last_directive_wins(tmp_path: Path) -> None:
    config = _load(tmp_path, "timeout 1\nhz 20\ntimeout 2\n")
    assert config["timeout"] == 2
    assert config["hz"] == 20


def test_repeatable_directives_accumulate() -> None:
    config = Config([Setting("save", "args", ["3600", "1"], "", repeatable=True), Setting("hz", "int", 10, "")])
    config.apply_directives(read_redis_conf("/x.conf", "save 900 1\nsave 300 10\nhz 5\nsave 60 10000\n"))
    # The first line replaces the default, the others add to it (Redis's rule).
    assert config["save"] == ["900", "1", "300", "10", "60", "10000"]
    config.apply_directives(read_redis_conf("/x.conf", 'save 900 1\nsave ""\nsave 60 1\n'))
    assert config["save"] == ["900", "1", "60", "1"]
    # A new source (another load, or CONFIG SET) starts from scratch.
    config.set("save", "10 1")
    assert config["save"] == ["10", "1"]


def test_client_output_buffer_limit_lines_set_one_class_each(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "client-output-buffer-limit pubsub 1mb 512kb 30\nclient-output-buffer-limit replica 64mb 16mb 120\n",
    )
    # Classes not named keep their defaults; "replica" is Redis's "slave" class.
    assert config["client-output-buffer-limit"] == [
        *("normal", "0", "0", "0"),
        *("slave", str(64 * 1024**2), str(16 * 1024**2), "120"),
        *("pubsub", str(1024**2), str(512 * 1024), "30"),
    ]
    message = _load_error(tmp_path, "client-output-buffer-limit nosuch 1 1 1\n")
    assert message.endswith(
        "node.conf:1: invalid value for 'client-output-buffer-limit': "
        "Invalid client class specified in buffer limit configuration. (got nosuch 1 1 1)"
    )


def test_redis_aliases(tmp_path: Path) -> None:
    config = _load(tmp_path, "slave-priority 7\nhash-max-ziplist-entries 99\nslave-read-only yes\n")
    assert config["replica-priority"] == 7
    assert config["hash-max-listpack-entries"] == 99
    assert config.lookup("slave-priority") is config.lookup("replica-priority")
    if config.lookup("replicaof") is not None:
        assert config.lookup("slaveof") is config.lookup("replicaof")


def test_include_relative_to_including_file(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "net.conf").write_text("port 7002\ninclude ../extra/more.conf\n")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "more.conf").write_text("timeout 42\n")
    (tmp_path / "conf.d" / "a.conf").write_text("hz 11\n")
    (tmp_path / "conf.d" / "b.conf").write_text("hz 12\n")
    config = _load(tmp_path, "port 1\ninclude conf.d/net.conf\ninclude conf.d/?.conf\nmaxclients 5\n")
    assert config["port"] == 7002  # the include comes after "port 1"
    assert config["timeout"] == 42
    assert config["hz"] == 12  # wildcards: every match, alphabetically
    assert config["maxclients"] == 5
    assert config.config_file == str(tmp_path / "node.conf")  # the main file, not an include


def test_include_cycle_is_refused(tmp_path: Path) -> None:
    (tmp_path / "b.conf").write_text("timeout 1\ninclude a.conf\n")
    message = _load_error(tmp_path, "port 7000\ninclude b.conf\n", name="a.conf")
    assert message == f"{tmp_path}/b.conf:2: include cycle: {tmp_path}/a.conf -> {tmp_path}/b.conf -> {tmp_path}/a.conf"
    message = _load_error(tmp_path, "include self.conf\n", name="self.conf")
    assert message == f"{tmp_path}/self.conf:1: include cycle: {tmp_path}/self.conf -> {tmp_path}/self.conf"


def test_same_file_included_twice_is_not_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "common.conf").write_text("hz 15\n")
    config = _load(tmp_path, "include common.conf\nhz 1\ninclude common.conf\n")
    assert config["hz"] == 15


def test_include_missing_file(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "port 7000\n\ninclude nope.conf\n")
    missing = tmp_path / "nope.conf"
    assert message == f"{tmp_path}/node.conf:3: cannot open config file '{missing}': No such file or directory"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("port 7000\n# c\nfoo bar\n", "node.conf:3: unknown directive 'foo'"),
        ("port abc\n", "node.conf:1: invalid value for 'port': argument couldn't be parsed into an integer (got abc)"),
        ("port 70000\n", "node.conf:1: invalid value for 'port': argument must be between 0 and 65535 inclusive "
         "(got 70000)"),
        ("port 1 2\n", "node.conf:1: wrong number of arguments for 'port' (expected 1, got 2)"),
        ("port\n", "node.conf:1: wrong number of arguments for 'port' (expected 1, got 0)"),
        ("bind\n", "node.conf:1: wrong number of arguments for 'bind' (expected at least 1, got 0)"),
        ('\n\nrequirepass "oops\n', "node.conf:3: unbalanced quotes in configuration line"),
        ("loglevel loud\n", "node.conf:1: invalid value for 'loglevel': argument(s) must be one of the following: "
         "debug, verbose, notice, warning, nothing (got loud)"),
        ("daemonize maybe\n", "node.conf:1: invalid value for 'daemonize': argument must be 'yes' or 'no' (got maybe)"),
        ("aof-timestamp-enabled yes\n", "node.conf:1: invalid value for 'aof-timestamp-enabled': AOF timestamp "
         "annotations are not written by kvcluster: refusing 'yes' (got yes)"),
        ("maxmemory 1gb\n", "node.conf:1: invalid value for 'maxmemory': maxmemory is not enforced in this build: "
         "refusing a limit that would not be honoured (got 1gb)"),
        ("rename-command FLUSHALL \"\"\n", "node.conf:1: invalid value for 'rename-command': renaming or disabling "
         'commands is not supported (refusing rather than leaving it enabled) (got FLUSHALL "")'),
        ("include\n", "node.conf:1: wrong number of arguments for 'include' (expected 1, got 0)"),
    ],
)  # fmt: skip
def test_redis_conf_errors_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    assert _load_error(tmp_path, text) == f"{tmp_path}/{expected}"


def test_honest_values_of_unimplemented_features_load(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        'save ""\nrdbcompression no\nmaxmemory 0\nmaxmemory-policy allkeys-lru\nnotify-keyspace-events ""\n'
        "user default on nopass ~* &* +@all\n",
    )
    assert config["save"] == []
    assert config["maxmemory-policy"] == "allkeys-lru"
    warned = "\n".join(config.warnings)
    # maxmemory-policy picks LRU or LFU access tracking (OBJECT IDLETIME/FREQ): used, so no warning.
    assert "'maxmemory-policy' is accepted but ignored" not in warned
    assert "node.conf:2: 'rdbcompression' is accepted but ignored: snapshots use plain, uncompressed" in warned
    message = _load_error(tmp_path, "user alice on >pw ~* +@all\n")
    assert message.endswith("invalid value for 'user': ACL users are not supported: use requirepass "
                            "(only an unrestricted default user is) (got alice on >pw ~* +@all)")  # fmt: skip


# -- YAML ---------------------------------------------------------------------------------------------


def test_yaml_config(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "port: 7003\n"
        "bind: [127.0.0.1, '::1']\n"
        "proto_max_bulk_len: 2mb\n"  # underscores are accepted too
        "daemonize: no\n"  # YAML 1.1 booleans
        "requirepass:\n"  # null: empty
        "client-output-buffer-limit: pubsub 1mb 1mb 0\n"
        "save: ''\n",
        name="node.yaml",
    )
    assert config["port"] == 7003
    assert config["bind"] == ["127.0.0.1", "::1"]
    assert config["proto-max-bulk-len"] == 2 * 1024**2
    assert config["daemonize"] is False
    assert config["requirepass"] == ""
    assert config["client-output-buffer-limit"][-4:] == ["pubsub", "1048576", "1048576", "0"]
    assert config["save"] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("port: 7000\nnosuch: 1\n", "node.yml:2: unknown setting 'nosuch'"),
        ("port: [1, 2]\n", "node.yml:1: invalid value for 'port': expected a single value, not a list (got [1, 2])"),
        ("timeout: {a: 1}\n", "node.yml:1: invalid value for 'timeout': expected a value or a list, not a mapping "
         "(got {'a': 1})"),
        ("- port\n", "node.yml:1: expected a mapping of setting names to values"),
    ],
)  # fmt: skip
def test_yaml_errors(tmp_path: Path, text: str, expected: str) -> None:
    assert _load_error(tmp_path, text, name="node.yml") == f"{tmp_path}/{expected}"


def test_yaml_syntax_error(tmp_path: Path) -> None:
    assert _load_error(tmp_path, "port: [7000\n", name="node.yaml").startswith(f"{tmp_path}/node.yaml: invalid YAML:")


def test_empty_yaml_is_fine(tmp_path: Path) -> None:
    assert _load(tmp_path, "# nothing yet\n", name="node.yaml")["port"] == 6379


# -- precedence (Config API; real processes below) -----------------------------------------------


def test_env_overrides_file_and_names_the_variable(tmp_path: Path) -> None:
    config = _load(tmp_path, "port 7000\nproto-max-bulk-len 2mb\ntimeout 5\n")
    config.load_env({"KVCLUSTER_PORT": "7100", "KVCLUSTER_PROTO_MAX_BULK_LEN": "4mb", "KVCLUSTER_BIND": "a b"})
    assert config["port"] == 7100
    assert config["proto-max-bulk-len"] == 4 * 1024**2
    assert config["bind"] == ["a", "b"]
    assert config["timeout"] == 5
    assert config.sources["port"] == "env"
    with pytest.raises(ConfigError) as e:
        config.load_env({"KVCLUSTER_PORT": "tcp://10.0.0.1:6379"})
    assert e.value.message == (
        "environment variable KVCLUSTER_PORT: invalid value for 'port': argument couldn't be parsed into an integer "
        "(got 'tcp://10.0.0.1:6379') (a Kubernetes service link? set enableServiceLinks: false on the pod)"
    )
    assert config.unknown_env({"KVCLUSTER_PORT": "1", "KVCLUSTER_PROT": "1", "HOME": "/"}) == ["KVCLUSTER_PROT"]
    with pytest.raises(ConfigError) as e:
        config.load_env({"KVCLUSTER_BIND": '"127.0.0.1'})
    assert e.value.message == (
        "environment variable KVCLUSTER_BIND: invalid value for 'bind': unbalanced quotes in configuration line "
        "(got '\"127.0.0.1')"
    )


# -- CONFIG SET atomicity (Config API) -------------------------------------------------------------


def test_set_many_is_all_or_nothing() -> None:
    config = node_config()
    seen: list[Any] = []
    config.on_change("timeout", seen.append)

    def refuse(value: int) -> None:
        if value == 13:
            raise ConfigError("unlucky")

    config.on_change("hz", refuse)
    with pytest.raises(ConfigError) as e:
        config.set_many([("timeout", "5"), ("HZ", "13")])
    assert (e.value.name, e.value.message) == ("HZ", "unlucky")
    # The first change was rolled back, and its hook told so.
    assert config["timeout"] == 0
    assert config["hz"] == 10
    assert seen == [5, 0]
    assert config.sources["timeout"] == "default"
    config.set_many([("timeout", "5"), ("hz", "14")])
    assert (config["timeout"], config["hz"], config.sources["hz"]) == (5, 14, "runtime")


@pytest.mark.parametrize(
    ("pairs", "name", "message"),
    [
        ([("timeout", "1"), ("nosuch", "1")], "nosuch", "unknown"),
        ([("timeout", "x"), ("port", "1")], "port", "can't set immutable config"),  # names are checked first
        ([("replica-priority", "1"), ("slave-priority", "2")], "slave-priority", "duplicate parameter"),
        ([("timeout", "x")], "timeout", "argument couldn't be parsed into an integer"),
    ],
)
def test_set_many_errors(pairs: list[tuple[str, str]], name: str, message: str) -> None:
    config = node_config()
    with pytest.raises(ConfigError) as e:
        config.set_many(pairs)
    assert (e.value.name, e.value.message) == (name, message)
    assert config["timeout"] == 0


# -- CONFIG REWRITE (Config API) -----------------------------------------------------------------


def test_rewrite_redis_conf_keeps_comments_and_order(tmp_path: Path) -> None:
    path = tmp_path / "node.conf"
    path.write_text(
        "# My server\nport 7000\n\n# idle clients\nTimeout   0\ndbfilename dump.rdb\nslave-priority 7\n"
        "# trailing comment\n"
    )
    config = node_config()
    config.load_file(str(path))
    config.set("timeout", "30")
    config.set("slave-priority", "9")
    config.set("maxclients", "77")
    config.set("requirepass", 'p"w d')
    config.set("proto-max-bulk-len", "64mb")
    config.rewrite()
    assert path.read_text() == (
        "# My server\n"
        "port 7000\n"
        "\n"
        "# idle clients\n"
        "timeout 30\n"
        "dbfilename dump.rdb\n"  # unchanged lines keep their spelling
        "replica-priority 9\n"
        "# trailing comment\n"
        "\n"
        f"{REWRITE_SIGNATURE}\n"
        "maxclients 77\n"
        "proto-max-bulk-len 64mb\n"
        'requirepass "p\\"w d"\n'
    )
    # A second rewrite changes lines in place and appends below the same signature.
    config.set("maxclients", "78")
    config.set("hz", "20")
    config.rewrite()
    text = path.read_text()
    assert text.count(REWRITE_SIGNATURE) == 1
    assert text.endswith(f'{REWRITE_SIGNATURE}\nmaxclients 78\nproto-max-bulk-len 64mb\nrequirepass "p\\"w d"\nhz 20\n')
    # What was written loads back to the same values.
    again = node_config()
    again.load_file(str(path))
    for name in ("timeout", "replica-priority", "maxclients", "requirepass", "proto-max-bulk-len", "hz", "port"):
        assert again[name] == config[name], name
    assert [p.name for p in tmp_path.iterdir()] == ["node.conf"]  # no temporary file left behind


def test_rewrite_repeated_directives(tmp_path: Path) -> None:
    path = tmp_path / "node.conf"
    path.write_text("client-output-buffer-limit pubsub 1mb 1mb 0\n# keep\nclient-output-buffer-limit normal 1mb 0 0\n")
    config = node_config()
    config.load_file(str(path))
    config.set("client-output-buffer-limit", "normal 0 0 0 replica 1gb 1gb 0")
    config.rewrite()
    # One line per class that differs from the default, in place of the old lines.
    assert (
        path.read_text()
        == "client-output-buffer-limit slave 1gb 1gb 0\n# keep\nclient-output-buffer-limit pubsub 1mb 1mb 0\n"
    )
    again = node_config()
    again.load_file(str(path))
    assert again["client-output-buffer-limit"] == config["client-output-buffer-limit"]


def test_rewrite_accumulating_directive_one_line_each(tmp_path: Path) -> None:
    def pairs(words: list[str]) -> list[list[str]]:
        return [words[i : i + 2] for i in range(0, len(words), 2)]

    save = Setting("save", "args", ["3600", "1"], "", repeatable=True, rewrite_lines=pairs)
    settings = [save, Setting("hz", "int", 10, "")]
    path = tmp_path / "x.conf"
    path.write_text("save 900 1\nhz 5\n")
    config = Config(settings)
    config.load_file(str(path))
    config.set("save", "100 1 200 2 300 3")
    config.rewrite()
    assert path.read_text() == f"save 100 1\nhz 5\n\n{REWRITE_SIGNATURE}\nsave 200 2\nsave 300 3\n"
    config.set("save", "")
    config.rewrite()
    assert path.read_text() == f'save ""\nhz 5\n\n{REWRITE_SIGNATURE}\n'
    config.set("save", "3600 1")  # back to the default: the line says so
    config.rewrite()
    assert path.read_text() == f"save 3600 1\nhz 5\n\n{REWRITE_SIGNATURE}\n"


def test_rewrite_yaml(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text("# my node\nport: 7000\ntimeout: 0\nbind: [127.0.0.1]\n")
    config = node_config()
    config.load_file(str(path))
    config.set("timeout", "30")
    config.set("proto-max-bulk-len", "8mb")
    config.set("loglevel", "warning")
    config.rewrite()
    text = path.read_text()
    assert text.startswith(f"# my node\n{REWRITE_SIGNATURE}\n")
    again = node_config()
    again.load_file(str(path))
    assert (again["port"], again["timeout"], again["proto-max-bulk-len"], again["loglevel"]) == (
        7000,
        30,
        8 * 1024**2,
        "warning",
    )
    assert "proto-max-bulk-len: 8mb" in text
    assert "hz" not in text  # defaults the file never mentioned stay out


def test_rewrite_without_config_file() -> None:
    with pytest.raises(ConfigError, match=r"^The server is running without a config file$"):
        node_config().rewrite()


def test_rewrite_keeps_mode_and_follows_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "real.conf"
    real.write_text("port 7000\n")
    real.chmod(0o640)
    link = tmp_path / "link.conf"
    link.symlink_to(real)
    config = node_config()
    config.load_file(str(link))
    config.set("timeout", "3")
    config.rewrite()
    assert link.is_symlink()
    assert real.stat().st_mode & 0o777 == 0o640
    assert real.read_text().endswith("timeout 3\n")


# -- against real processes ------------------------------------------------------------------------------


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KVCLUSTER_")}
    env.update(extra)
    return env


@contextlib.contextmanager
def _node(cwd: Path, *args: str, port: int, env: dict[str, str] | None = None) -> Iterator[redis.Redis]:
    """A ``kvcluster node`` started with exactly these arguments (no --port added), listening on ``port``."""
    log = open(cwd / f"node-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*KVCLUSTER, "node", *args], cwd=cwd, env=env or _clean_env(), stdout=log, stderr=subprocess.STDOUT
    )
    client = redis.Redis(port=port, protocol=2, socket_timeout=10)
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"node exited: {(cwd / f'node-{port}.log').read_text()}")
            return bool(client.ping())

        try:
            wait_until(ready, 15, what=f"node on {port}")
        except RuntimeError as e:
            pytest.fail(str(e))
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_precedence_flags_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    file_port, env_port, flag_port = free_port(), free_port(), free_port()
    conf = tmp_path / "node.conf"
    conf.write_text(f"port {file_port}\ntimeout 10\nmaxclients 100\nhz 11\ndir {tmp_path}\n")
    env = _clean_env(KVCLUSTER_PORT=str(env_port), KVCLUSTER_MAXCLIENTS="200", KVCLUSTER_HZ="12")
    with _node(tmp_path, str(conf), "--hz", "13", port=env_port, env=env) as c:
        got = c.config_get("port", "timeout", "maxclients", "hz", "tcp-backlog")
        assert got == {
            "port": str(env_port),  # env over file
            "timeout": "10",  # file over default
            "maxclients": "200",  # env over file
            "hz": "13",  # flag over env
            "tcp-backlog": "511",  # default
        }
    with _node(tmp_path, "--config", str(conf), "--port", str(flag_port), port=flag_port, env=env) as c:
        assert c.config_get("port") == {"port": str(flag_port)}
    with _node(tmp_path, port=file_port, env=_clean_env(KVCLUSTER_CONFIG=str(conf))) as c:
        assert c.config_get("port", "hz") == {"port": str(file_port), "hz": "11"}


def test_redis_server_style_arguments(tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "node.conf"
    conf.write_text("timeout 9\n")
    args = [str(conf), "--port", str(port), "--save", "", "--appendonly", "no", "--daemonize", "no"]
    with _node(
        tmp_path, *args, "--bind", "127.0.0.1", "--client-output-buffer-limit", "pubsub 1mb 1mb 0", port=port
    ) as c:
        assert c.config_get("save", "appendonly", "timeout") == {"save": "", "appendonly": "no", "timeout": "9"}
        assert c.config_get("client-output-buffer-limit") == {
            "client-output-buffer-limit": "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 1048576 0"
        }


def test_config_rewrite_round_trip(tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "node.conf"
    conf.write_text(f"# kept\nport {port}\ntimeout 0\ndir {tmp_path}\n")
    with _node(tmp_path, str(conf), port=port) as c:
        assert c.config_set("timeout", "77") is True
        assert c.execute_command("CONFIG", "SET", "maxclients", "1234", "slowlog-max-len", "5") == b"OK"
        assert c.config_rewrite() == b"OK"
    text = conf.read_text()
    assert text.startswith(f"# kept\nport {port}\ntimeout 77\ndir {tmp_path}\n\n{REWRITE_SIGNATURE}\n")
    assert "maxclients 1234\n" in text and "slowlog-max-len 5\n" in text
    with _node(tmp_path, str(conf), port=port) as c:
        assert c.config_get("timeout", "maxclients", "slowlog-max-len") == {
            "timeout": "77",
            "maxclients": "1234",
            "slowlog-max-len": "5",
        }


def test_config_rewrite_round_trip_yaml(tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "node.yaml"
    conf.write_text(f"port: {port}\ndir: {tmp_path}\n")
    with _node(tmp_path, str(conf), port=port) as c:
        c.config_set("timeout", "66")
        c.config_set("client-output-buffer-limit", "pubsub 2mb 1mb 5")
        assert c.config_rewrite() == b"OK"
    with _node(tmp_path, str(conf), port=port) as c:
        assert c.config_get("timeout") == {"timeout": "66"}
        assert c.config_get("client-output-buffer-limit")["client-output-buffer-limit"].endswith(
            "pubsub 2097152 1048576 5"
        )


def test_config_rewrite_failure_is_reported(tmp_path: Path) -> None:
    port = free_port()
    confdir = tmp_path / "conf"
    confdir.mkdir()
    conf = confdir / "node.conf"
    conf.write_text(f"port {port}\n")
    with _node(tmp_path, str(conf), "--dir", str(tmp_path), port=port) as c:
        c.config_set("timeout", "5")
        # The directory is gone (an unmounted volume, say): the error says why, the node carries on.
        shutil.rmtree(confdir)
        with pytest.raises(redis.ResponseError, match=r"^Rewriting config file: No such file or directory$"):
            c.config_rewrite()
        assert c.ping() is True
    assert not confdir.exists()


def _ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_debian_redis_conf_loads_and_serves(tmp_path: Path) -> None:
    """Debian's stock redis.conf (redis-server package) starts a node; only paths and port are overridden."""
    if not DEBIAN_REDIS_CONF.exists():
        pytest.skip(f"{DEBIAN_REDIS_CONF} is absent (Debian's redis-server package is not installed)")
    # Work on a copy: CONFIG REWRITE must never touch the system's file.
    conf = tmp_path / "redis.conf"
    shutil.copyfile(DEBIAN_REDIS_CONF, conf)
    original = conf.read_text()
    # The file's daemon paths (/run/redis, /var/log/redis, /var/lib/redis) belong to the system service.
    overrides = ["--logfile", "", "--pidfile", str(tmp_path / "node.pid")]
    if not _ipv6_loopback_available():
        overrides += ["--bind", "127.0.0.1"]  # its "bind 127.0.0.1 -::1" needs IPv6 loopback
    node = NodeProcess(tmp_path, str(conf), *overrides)
    node.start()
    try:
        c = node.client(protocol=2)
        got = c.config_get("databases", "tcp-backlog", "tcp-keepalive", "appendfsync", "dbfilename", "slowlog-max-len")
        assert got == {
            "databases": "16",
            "tcp-backlog": "511",
            "tcp-keepalive": "300",
            "appendfsync": "everysec",
            "dbfilename": "dump.rdb",
            "slowlog-max-len": "128",
        }
        assert c.set("k", "v") is True and c.get("k") == b"v"
        assert (tmp_path / "node.pid").read_text().strip() == str(node.proc.pid)  # type: ignore[union-attr]
        # Ignored directives are logged with their reason.
        warning = "'daemonize' is accepted but ignored: kvcluster always runs in the foreground"
        assert warning in node.log_path.read_text()  # logged before "ready"
        # CONFIG REWRITE changes exactly the lines of changed settings.
        c.config_set("timeout", "12")
        assert c.config_rewrite() == b"OK"
        c.close()
    finally:
        node.stop()
    old_lines, new_lines = original.splitlines(), conf.read_text().splitlines()
    changed = {(a, b) for a, b in zip(old_lines, new_lines, strict=False) if a != b}
    assert ("timeout 0", "timeout 12") in changed
    assert all(a.split()[0] in ("port", "dir", "logfile", "pidfile", "timeout", "bind") for a, _ in changed), changed


def test_debian_redis_conf_check_config(tmp_path: Path) -> None:
    if not DEBIAN_REDIS_CONF.exists():
        pytest.skip(f"{DEBIAN_REDIS_CONF} is absent (Debian's redis-server package is not installed)")
    out = subprocess.run(
        [*KVCLUSTER, "node", str(DEBIAN_REDIS_CONF), "--check-config"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_clean_env(),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"configuration OK ({DEBIAN_REDIS_CONF})\n"
    assert "'maxmemory-policy'" not in out.stderr  # commented out in Debian's file
    assert re.search(
        rf"^kvcluster node: warning: {DEBIAN_REDIS_CONF}:\d+: 'daemonize' is accepted but ignored: "
        "kvcluster always runs in the foreground$",
        out.stderr,
        re.MULTILINE,
    )


# -- CONFIG GET / SET / RESETSTAT / HELP on the shared node --------------------------------------------------


@pytest.fixture
def restore_settings(node: NodeProcess) -> Iterator[redis.Redis]:
    """A RESP2 client; the settings the test touches are put back afterwards."""
    c = node.client(protocol=2)
    names = ["timeout", "maxclients", "hz", "replica-priority", "client-output-buffer-limit", "loglevel"]
    before = c.config_get(*names)
    yield c
    for name, value in before.items():
        c.config_set(name, value)
    c.close()


def _raw(node: NodeProcess | int, *args: str, protocol: int = 2) -> Any:
    """The reply as parsed off the wire (bytes), without redis-py's per-command callbacks."""
    port = node if isinstance(node, int) else node.port
    conn = redis.Connection(host="127.0.0.1", port=port, protocol=protocol, socket_timeout=10)
    try:
        conn.send_command(*args)
        return conn.read_response()
    finally:
        conn.disconnect()


def test_config_get_resp2_flat_array(node: NodeProcess) -> None:
    reply = _raw(node, "CONFIG", "GET", "maxclients", "maxc*", "timeout", "MAXCLIENTS", "nosuch", "nosuch*")
    # Each name once, in the order of the patterns.
    assert reply == [b"maxclients", b"10000", b"timeout", b"0"]
    assert _raw(node, "CONFIG", "GET", "nosuch") == []


def test_config_get_resp3_map(node: NodeProcess) -> None:
    assert _raw(node, "CONFIG", "GET", "tcp-backlog", "time*", protocol=3) == {b"tcp-backlog": b"511", b"timeout": b"0"}


def test_config_get_literal_names_echo_the_spelling(node: NodeProcess) -> None:
    assert _raw(node, "CONFIG", "GET", "PORT") == [b"PORT", str(node.port).encode()]
    assert _raw(node, "CONFIG", "GET", "slave-priority") == [b"slave-priority", b"100"]


def test_config_get_glob_includes_aliases_each_once(node: NodeProcess) -> None:
    c = node.client(protocol=2)
    got = c.config_get("*priority*", "replica-priority", "slave-*")
    assert got["replica-priority"] == got["slave-priority"] == "100"
    names = _raw(node, "CONFIG", "GET", "*")[::2]
    assert len(names) == len(set(names))
    assert {b"port", b"bind", b"save", b"appendonly", b"maxmemory", b"slave-read-only"} <= set(names)
    assert b"rename-command" not in names  # hidden
    assert _raw(node, "CONFIG", "GET", "[pt]ort") == [b"port", str(node.port).encode()]
    c.close()


def test_config_set_and_get(restore_settings: redis.Redis) -> None:
    c = restore_settings
    assert c.execute_command("CONFIG", "SET", "timeout", "30", "MaxClients", "500") == b"OK"
    assert c.config_get("timeout", "maxclients") == {"timeout": "30", "maxclients": "500"}
    assert c.config_set("slave-priority", "5") is True
    assert c.config_get("replica-priority") == {"replica-priority": "5"}
    assert c.config_set("client-output-buffer-limit", "pubsub 1mb 1mb 0") is True
    assert c.config_get("client-output-buffer-limit") == {
        "client-output-buffer-limit": "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 1048576 0"
    }


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["foo", "1"], "Unknown option or number of arguments for CONFIG SET - 'foo'"),
        (["port", "1"], "CONFIG SET failed (possibly related to argument 'port') - can't set immutable config"),
        (["databases", "1"], "CONFIG SET failed (possibly related to argument 'databases') - can't set immutable "
         "config"),
        (["maxclients", "abc"], "CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be "
         "parsed into an integer"),
        (["maxclients", "10", "maxclients", "20"], "CONFIG SET failed (possibly related to argument 'maxclients') - "
         "duplicate parameter"),
        (["maxclients", "10", "timeout"], "syntax error"),
        (["loglevel", "foo"], "CONFIG SET failed (possibly related to argument 'loglevel') - argument(s) must be one "
         "of the following: debug, verbose, notice, warning, nothing"),
        (["appendonly", "maybe"], "CONFIG SET failed (possibly related to argument 'appendonly') - argument must be "
         "'yes' or 'no'"),
        (["client-output-buffer-limit", "foo 1 1 1"], "CONFIG SET failed (possibly related to argument "
         "'client-output-buffer-limit') - Invalid client class specified in buffer limit configuration."),
        (["maxmemory", "1gb"], "CONFIG SET failed (possibly related to argument 'maxmemory') - maxmemory is not "
         "enforced in this build: refusing a limit that would not be honoured"),
        (["timeout", "5", "hz", "x"], "CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be "
         "parsed into an integer"),
    ],
)  # fmt: skip
def test_config_set_errors(restore_settings: redis.Redis, args: list[str], error: str) -> None:
    c = restore_settings
    with pytest.raises(redis.ResponseError) as e:
        c.execute_command("CONFIG", "SET", *args)
    assert str(e.value) == error
    assert c.config_get("timeout", "maxclients") == {"timeout": "0", "maxclients": "10000"}  # all or nothing


def test_config_arity_and_help(node: NodeProcess) -> None:
    c = node.client(protocol=2)
    cases = [(["GET"], "config|get"), (["SET", "x"], "config|set")]
    cases += [(["RESETSTAT", "x"], "config|resetstat"), (["REWRITE", "x"], "config|rewrite"), ([], "config")]
    for args, name in cases:
        with pytest.raises(redis.ResponseError) as e:
            c.execute_command("CONFIG", *args)
        assert str(e.value) == f"wrong number of arguments for '{name}' command"
    with pytest.raises(redis.ResponseError) as e:
        c.execute_command("CONFIG", "NOSUCH")
    assert str(e.value) == "unknown subcommand 'NOSUCH'. Try CONFIG HELP."
    help_lines = c.execute_command("CONFIG", "HELP")
    assert help_lines[0] == b"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    assert b"REWRITE" in help_lines and len(help_lines) == 11
    with pytest.raises(redis.ResponseError, match=r"^The server is running without a config file$"):
        c.config_rewrite()
    c.close()


def test_config_resetstat(node: NodeProcess) -> None:
    c = node.client(protocol=2)
    c.set("a", "1")
    c.get("a")
    c.get("missing")
    with contextlib.suppress(redis.ResponseError):
        c.execute_command("NOSUCHCOMMAND")
    c.execute_command("CONFIG", "SET", "slowlog-log-slower-than", "0")
    try:
        c.get("a")  # slow by a threshold of 0 microseconds
        slowlog_before = c.slowlog_len()
        assert slowlog_before > 0
        assert c.info("stats")["keyspace_hits"] > 0
        assert c.config_resetstat() is True
        stats = c.info("stats")
        assert stats["keyspace_hits"] == stats["keyspace_misses"] == stats["total_error_replies"] == 0
        assert stats["total_commands_processed"] <= 2  # the INFO itself, give or take
        commandstats = c.info("commandstats")
        assert "cmdstat_get" not in commandstats and "cmdstat_set" not in commandstats
        assert c.info("errorstats") == {}
        assert c.slowlog_len() >= slowlog_before  # like Redis: RESETSTAT leaves the slow log alone
    finally:
        c.execute_command("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        c.slowlog_reset()
        c.close()


def test_config_set_loglevel_takes_effect(tmp_path: Path) -> None:
    port = free_port()
    with _node(tmp_path, "--port", str(port), "--dir", str(tmp_path), "--loglevel", "nothing", port=port) as c:
        log_path = tmp_path / f"node-{port}.log"
        # Setting an ignored directive logs a warning -- not at level "nothing".
        c.config_set("always-show-logo", "yes")
        c.config_set("loglevel", "warning")
        c.config_set("daemonize", "yes")
        wait_until(lambda: "CONFIG SET daemonize: accepted but ignored" in log_path.read_text())
        assert "always-show-logo" not in log_path.read_text()
