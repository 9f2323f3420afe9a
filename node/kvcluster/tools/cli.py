"""``kvcluster cli``: an interactive prompt like redis-cli, that can follow a group's leader.

The shell around :mod:`kvcluster.tools.cli_format` (parsing, printing, help, completion): a
:class:`Session` owns the connection and, given sentinels, keeps it pointed at the group's leader
(asking the sentinels at most once a second, and whenever the connection breaks or a write is
refused with READONLY/FENCED); :func:`repl` reads lines with readline (history, Tab completion).

A command is re-sent after a reconnection only when that cannot run it twice: when the old
connection was found dead before the command went out, when the server refused it without running
it (READONLY, FENCED), or when the command only reads. A write whose reply was lost with the
connection is reported as such instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from kvcluster.node.commands.table import Command
from kvcluster.tools.cli_format import (
    CommandLineError,
    complete,
    format_raw,
    format_tty,
    help_for,
    is_sensitive,
    parse_repeat,
    prompt,
    split_command_line,
)
from kvcluster.tools.resp import Connection, Error, ProtocolError, Status, as_bytes, format_address, parse_address
from kvcluster.tools.sentinels import Address, NoLeader, ask_leader

HISTORY_ENV = "KVCLUSTER_CLI_HISTFILE"
DEFAULT_HISTORY = "~/.kvcluster_cli_history"
# Replies that say "not here, and not run": safe to re-send to the new leader.
_MOVED_ERRORS = ("READONLY", "FENCED")
_SUBSCRIBE = {b"subscribe", b"psubscribe", b"ssubscribe", b"monitor"}
_LEADER_RECHECK_SECONDS = 1.0


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = 6379
    sentinels: list[Address] = field(default_factory=list)
    group: str = "mymaster"
    password: str | None = None
    user: str | None = None
    db: int = 0
    resp3: bool = False
    timeout: float | None = None
    failover_wait: float = 30.0


class CliError(Exception):
    """Something to tell the user instead of a reply (connection refused, reply lost...)."""


class Session:
    """The connection the cli talks through: a fixed address, or the leader of a sentinel group."""

    def __init__(
        self,
        options: Options,
        table: Mapping[str, Command],
        notify: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ):
        self.options = options
        self.table = table
        self.notify = notify
        self.clock = clock
        self.conn: Connection | None = None
        self.db = options.db
        self.resp3 = options.resp3
        self.credentials: list[str] | None = None
        if options.password is not None:
            self.credentials = [options.user, options.password] if options.user else [options.password]
        self.leader: Address | None = None if options.sentinels else (options.host, options.port)
        self._leader_checked = float("-inf")

    @property
    def following(self) -> bool:
        return bool(self.options.sentinels)

    @property
    def address(self) -> str | None:
        return self.conn.address if self.conn is not None else None

    # -- connecting -------------------------------------------------------------------------

    def _ask_sentinels(self) -> Address:
        opts = self.options
        address = ask_leader(opts.sentinels, opts.group, opts.password, opts.user)
        self._leader_checked = self.clock()
        return address

    def connect(self, wait: float = 0.0) -> None:
        """Connect (to the group's leader when following); keep trying for ``wait`` seconds."""
        deadline = self.clock() + wait
        said_waiting = False
        while True:
            try:
                self._connect_once()
                return
            except NoLeader as e:  # no sentinel reachable, or none knows the group: a wrong address
                raise CliError(str(e)) from None
            except OSError as e:  # the named leader is down: the sentinels will name another
                if self.clock() >= deadline:
                    raise CliError(self._describe_failure(e)) from None
                if not said_waiting:
                    where = format_address(*self.leader) if self.leader else "the leader"
                    self.notify(
                        f"{where} is unreachable; waiting up to {wait:.0f} s for the sentinels to name a "
                        "reachable leader (Ctrl-C to stop)"
                    )
                    said_waiting = True
                time.sleep(0.2)

    def _describe_failure(self, error: OSError) -> str:
        host, port = self.leader or (self.options.host, self.options.port)
        reason = getattr(error, "strerror", None) or str(error)
        return f"Could not connect to Redis at {format_address(host, port)}: {reason}"

    def _connect_once(self) -> None:
        if self.following:
            previous = self.leader
            self.leader = self._ask_sentinels()
            if previous is not None and previous != self.leader:
                self.notify(
                    f"the leader of {self.options.group} is now {format_address(*self.leader)} "
                    f"(was {format_address(*previous)}); reconnected"
                )
        assert self.leader is not None
        self.close()
        conn = Connection(*self.leader, timeout=self.options.timeout)
        try:
            self._handshake(conn)
        except BaseException:
            conn.close()
            raise
        self.conn = conn

    def _handshake(self, conn: Connection) -> None:
        if self.resp3:
            hello: list[str | bytes | int] = ["HELLO", "3"]
            if self.credentials:
                hello += ["AUTH", self.options.user or "default", self.credentials[-1]]
            reply = conn.call(*hello)
            if isinstance(reply, Error):
                self.notify(f"HELLO failed: {reply}")
        elif self.credentials:
            reply = conn.call("AUTH", *self.credentials)
            if isinstance(reply, Error):
                self.notify(f"AUTH failed: {reply}")
        if self.db:
            reply = conn.call("SELECT", self.db)
            if isinstance(reply, Error):
                self.notify(f"SELECT {self.db} failed: {reply}")
                self.db = 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _ensure_connected(self) -> bool:
        """Connected to the right server; True when that needed a new connection."""
        if self.conn is not None and self.following and self.clock() - self._leader_checked >= _LEADER_RECHECK_SECONDS:
            try:
                leader = self._ask_sentinels()
            except NoLeader:
                leader = self.leader  # sentinels unreachable: keep the connection we have
            if leader != self.leader:
                self.close()
        if self.conn is not None and self.conn.peer_closed():
            self.close()
        if self.conn is None:
            self.connect(self.options.failover_wait if self.following else 0.0)
            return True
        return False

    # -- running commands ---------------------------------------------------------------------

    def _only_reads(self, args: list[bytes]) -> bool:
        cmd = self.table.get(args[0].decode("utf-8", "replace").lower())
        # EXEC runs whatever was queued: treated as a write.
        return cmd is not None and not cmd.is_write and cmd.name != "exec"

    def execute(self, args: list[bytes]) -> Any:
        """Send one command and return its typed reply; raises CliError instead of a reply."""
        self._ensure_connected()
        assert self.conn is not None
        try:
            reply = self.conn.call(*args)
        except ProtocolError as e:
            where = self.address
            self.close()
            raise CliError(f"Protocol error from {where}: {e}") from None
        except OSError as e:
            self.close()
            if not self._only_reads(args):
                raise CliError(
                    f"the connection to {format_address(*self.leader) if self.leader else 'the server'} was lost "
                    f"before the reply ({e.strerror or e}): the command may or may not have run"
                ) from None
            self._ensure_connected()
            assert self.conn is not None
            reply = self.conn.call(*args)
        if self.following and isinstance(reply, Error) and reply.code in _MOVED_ERRORS:
            before = self.leader
            self.close()
            self.connect(self.options.failover_wait)
            if self.leader != before and self.conn is not None:
                reply = self.conn.call(*args)
        self._track(args, reply)
        return reply

    def _track(self, args: list[bytes], reply: Any) -> None:
        """Remember what a reconnection must restore: the database, the protocol, the credentials."""
        if isinstance(reply, Error):
            return
        name = args[0].lower()
        if name == b"select" and len(args) == 2 and args[1].isdigit():
            self.db = int(args[1])
        elif name == b"hello" and len(args) >= 2 and args[1].isdigit():
            self.resp3 = args[1] == b"3"
        elif name == b"auth" and len(args) in (2, 3):
            self.credentials = [a.decode("utf-8", "surrogateescape") for a in args[1:]]
        elif name in (b"reset",):
            self.db, self.resp3 = 0, False

    def stream(self, args: list[bytes], show: Callable[[Any], None]) -> None:
        """SUBSCRIBE/MONITOR: print every message until Ctrl-C, then start a fresh connection."""
        self._ensure_connected()
        assert self.conn is not None
        self.conn.settimeout(None)
        try:
            self.conn.send(args)
            while True:
                show(self.conn.read_reply())
        except KeyboardInterrupt:
            pass
        except OSError as e:
            self.notify(f"connection lost: {e.strerror or e}")
        finally:
            self.close()


# -- the shell ------------------------------------------------------------------------------------


class Printer:
    """Replies to stdout: redis-cli's terminal format, or raw values when not a terminal."""

    def __init__(self, tty_format: bool, out: TextIO = sys.stdout):
        self.tty_format = tty_format
        self.out = out

    def reply(self, reply: Any) -> None:
        if self.tty_format:
            self.out.write(format_tty(reply))
        else:
            self.out.flush()
            self.out.buffer.write(format_raw(reply))
        self.out.flush()

    def text(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


def _notify(message: str) -> None:
    print(f"kvcluster cli: {message}", file=sys.stderr, flush=True)


def run_line(session: Session, printer: Printer, line: str, table: Mapping[str, Command], version: str) -> bool:
    """Run one typed line; False when the user asked to quit. Never raises for bad input or errors."""
    try:
        args = split_command_line(line)
    except CommandLineError as e:
        printer.text(f"{e}\n")
        return True
    if not args:
        return True
    repeat, args = parse_repeat(args)
    if not args:
        return True
    name = args[0].lower()
    if name in (b"quit", b"exit"):
        return False
    if name == b"help" or name == b"?":
        topic = [a.decode("utf-8", "replace") for a in args[1:]]
        printer.text(help_for(topic, table, color=printer.tty_format and sys.stdout.isatty(), version=version))
        return True
    if name == b"clear":
        printer.text("\x1b[H\x1b[2J")
        return True
    for _ in range(repeat):
        try:
            if name in _SUBSCRIBE:
                if printer.tty_format:
                    printer.text("Reading messages... (press Ctrl-C to quit)\n")
                session.stream(args, printer.reply)
                return True
            printer.reply(session.execute(args))
        except CliError as e:
            printer.text(f"{e}\n")
            return True
        except KeyboardInterrupt:
            session.close()
            printer.text("(interrupted)\n")
            return True
    return True


def _setup_readline(table: Mapping[str, Command]) -> str | None:
    try:
        import readline
    except ImportError:  # pragma: no cover - Python built without readline
        return None
    history = os.path.expanduser(os.environ.get(HISTORY_ENV) or DEFAULT_HISTORY)
    with contextlib.suppress(OSError):
        readline.read_history_file(history)
    readline.set_history_length(1000)
    matches: list[str] = []

    def completer(text: str, state: int) -> str | None:
        if state == 0:
            line = readline.get_line_buffer()[: readline.get_endidx()]
            matches[:] = complete(line, table)
        return matches[state] if state < len(matches) else None

    readline.set_completer(completer)
    readline.set_completer_delims(" \t")
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    return history


def _forget_last_history_line() -> None:
    import readline

    length = readline.get_current_history_length()
    if length:
        readline.remove_history_item(length - 1)


def repl(session: Session, printer: Printer, table: Mapping[str, Command], version: str) -> int:
    interactive = sys.stdin.isatty()
    history = _setup_readline(table) if interactive else None
    if interactive:
        try:
            session.connect(session.options.failover_wait if session.following else 0.0)
        except CliError as e:
            printer.text(f"{e}\n")
        except KeyboardInterrupt:
            return 130
    try:
        while True:
            try:
                if interactive:
                    group = session.options.group if session.following else None
                    line = input(prompt(session.address, session.db, group))
                else:
                    line = sys.stdin.readline()
                    if not line:
                        break
            except EOFError:
                break
            except KeyboardInterrupt:
                printer.text("\n")
                continue
            line = line.rstrip("\r\n")
            if interactive and history is not None:
                with contextlib.suppress(CommandLineError):
                    if is_sensitive(split_command_line(line)):
                        _forget_last_history_line()
            if not run_line(session, printer, line, table, version):
                break
    finally:
        if history is not None:
            import readline

            with contextlib.suppress(OSError):
                readline.write_history_file(history)
        session.close()
    return 0


# -- command line ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kvcluster cli",
        description=(
            "An interactive prompt for kvcluster (or any Redis-compatible server), like redis-cli: history, "
            "Tab completion, 'help CMD'. With --sentinel it follows the group's leader through failovers. "
            "Give a command to run just that one (its reply printed raw when stdout is not a terminal)."
        ),
        epilog="Examples: kvcluster cli -p 7000 | kvcluster cli --sentinel 127.0.0.1:26379 --name mymaster | "
        "kvcluster cli -p 7000 GET greeting",
        add_help=False,
        allow_abbrev=False,
    )
    parser.add_argument("--help", action="help", help="show this help message and exit")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("-h", dest="host", default="127.0.0.1", metavar="HOST", help="server host (127.0.0.1)")
    parser.add_argument("-p", dest="port", type=int, default=6379, metavar="PORT", help="server port (6379)")
    parser.add_argument(
        "--sentinel",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="a sentinel to ask for the leader (repeat, or comma-separate); the cli then follows the leader",
    )
    parser.add_argument("--name", default="mymaster", help="the sentinel group to follow (mymaster)")
    parser.add_argument(
        "-a", dest="password", metavar="PASSWORD", help="password (also REDISCLI_AUTH); sentinels get it if they ask"
    )
    parser.add_argument("--user", help="user name for AUTH")
    parser.add_argument("-n", dest="db", type=int, default=0, metavar="DB", help="database number (0)")
    parser.add_argument("-3", "--resp3", action="store_true", help="speak RESP3 (HELLO 3)")
    raw = parser.add_mutually_exclusive_group()
    raw.add_argument("--raw", action="store_true", default=None, help="print raw replies even on a terminal")
    raw.add_argument("--no-raw", dest="raw", action="store_false", help="print formatted replies even when piped")
    parser.add_argument("-t", "--timeout", type=float, default=None, help="seconds to wait for a reply (no limit)")
    parser.add_argument(
        "--failover-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="with --sentinel: how long to wait for a reachable leader during a failover (30)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD ...", help="a command to run, then exit")
    return parser


def main(argv: list[str]) -> int:
    from kvcluster.cli import version
    from kvcluster.node.commands import load_command_table

    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.version:
        print(f"kvcluster cli {version()}")
        return 0
    sentinels: list[Address] = []
    try:
        for item in ns.sentinel:
            sentinels += [parse_address(part, 26379) for part in item.replace(",", " ").split()]
    except ValueError as e:
        parser.error(f"--sentinel: {e}")
    options = Options(
        host=ns.host,
        port=ns.port,
        sentinels=sentinels,
        group=ns.name,
        password=ns.password if ns.password is not None else os.environ.get("REDISCLI_AUTH"),
        user=ns.user,
        db=ns.db,
        resp3=ns.resp3,
        timeout=ns.timeout,
        failover_wait=ns.failover_wait,
    )
    table = load_command_table()
    tty_format = sys.stdout.isatty() if ns.raw is None else not ns.raw
    printer = Printer(tty_format)
    session = Session(options, table, _notify)
    if ns.command:
        args = [as_bytes(a) for a in ns.command]
        try:
            if args[0].lower() in _SUBSCRIBE:
                session.stream(args, printer.reply)
                return 0
            reply = session.execute(args)
        except CliError as e:
            print(e, file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        finally:
            session.close()
        printer.reply(reply)
        return 1 if isinstance(reply, Error) else 0
    return repl(session, printer, table, version())


__all__ = ["CliError", "Options", "Session", "Status", "main", "run_line"]
