"""The pure parts of ``kvcluster cli``: reading a command line, printing replies, help, completion.

Everything here follows redis-cli (src/redis-cli.c) so that its users see what they expect:

* command lines are split like ``sdssplitargs`` (double quotes with ``\\n``/``\\xHH`` escapes,
  single quotes), and a leading number repeats the command (``3 INCR n``);
* on a terminal, replies are printed like ``cliFormatReplyTTY`` (``(integer) 1``, ``"bar"``,
  ``(nil)``, numbered nested lists, ``1# key => value`` maps, ``(error) ERR ...``); otherwise raw,
  like ``cliFormatReplyRaw`` (values as they are, one per line), so ``kvcluster cli GET k`` in a
  script prints the value itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kvcluster.common.resp import ProtocolError, split_inline
from kvcluster.node.commands.table import Command
from kvcluster.tools.resp import BigNumber, Double, Error, Map, Push, Set, Status, Verbatim

# -- reading command lines ---------------------------------------------------------------------


class CommandLineError(ValueError):
    """A line that cannot be split (unbalanced quotes): redis-cli says "Invalid argument(s)"."""


def split_command_line(line: str) -> list[bytes]:
    """Split a typed line into arguments exactly like redis-cli (``sdssplitargs``)."""
    try:
        return split_inline(line.encode("utf-8", "surrogateescape"))
    except ProtocolError:
        raise CommandLineError("Invalid argument(s)") from None


def parse_repeat(args: list[bytes]) -> tuple[int, list[bytes]]:
    """``3 INCR n`` -> (3, [INCR, n]); a line without a leading count runs once."""
    if len(args) > 1 and args[0].isdigit():
        return int(args[0]), args[1:]
    return 1, args


# Commands whose arguments hold secrets: kept out of the history file (as redis-cli does).
_SENSITIVE = {b"auth", b"migrate"}


def is_sensitive(args: list[bytes]) -> bool:
    if not args:
        return False
    name = args[0].lower()
    rest = [a.lower() for a in args[1:]]
    if name in _SENSITIVE:
        return True
    if name == b"hello" and b"auth" in rest:
        return True
    if name == b"acl" and rest[:1] == [b"setuser"]:
        return True
    return name == b"config" and rest[:1] == [b"set"] and any(a in (b"requirepass", b"masterauth") for a in rest)


# -- printing replies --------------------------------------------------------------------------

_REPR_ESCAPES = {0x5C: "\\\\", 0x22: '\\"', 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x07: "\\a", 0x08: "\\b"}


def repr_bytes(data: bytes) -> str:
    """A bulk string as redis-cli quotes it (``sdscatrepr``): printable ASCII as is, the rest escaped."""
    out = ['"']
    for byte in data:
        escaped = _REPR_ESCAPES.get(byte)
        if escaped is not None:
            out.append(escaped)
        elif 0x20 <= byte <= 0x7E:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    out.append('"')
    return "".join(out)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def format_tty(reply: Any, prefix: str = "") -> str:
    """A reply as redis-cli prints it on a terminal (every line ends with a newline)."""
    if isinstance(reply, Error):
        return f"(error) {reply}\n"
    if isinstance(reply, Status):
        return f"{reply}\n"
    if isinstance(reply, bool):  # before int: bool is an int
        return "(true)\n" if reply else "(false)\n"
    if isinstance(reply, int):
        return f"(integer) {reply}\n"
    if isinstance(reply, Double):
        return f"(double) {reply}\n"
    if isinstance(reply, BigNumber):
        return f"(big number) {reply}\n"
    if isinstance(reply, bytes):
        return repr_bytes(reply) + "\n"
    if isinstance(reply, Verbatim):
        return _text(reply.text) + "\n"
    if reply is None:
        return "(nil)\n"
    if isinstance(reply, list):
        return _format_aggregate_tty(reply, prefix)
    return f"{reply}\n"


def _format_aggregate_tty(reply: list[Any], prefix: str) -> str:
    if not reply:
        if isinstance(reply, Map):
            return "(empty hash)\n"
        if isinstance(reply, Set):
            return "(empty set)\n"
        if isinstance(reply, Push):
            return "(empty push)\n"
        return "(empty array)\n"
    # Indexes are right-aligned to the widest; nested lines are indented past "N) ".
    width = len(str(len(reply)))
    nested_prefix = prefix + " " * (width + 2)
    separator = "#" if isinstance(reply, Map) else "~" if isinstance(reply, Set) else ")"
    out = []
    for i, item in enumerate(reply):
        out.append(f"{'' if i == 0 else prefix}{i + 1:>{width}}{separator} ")
        if isinstance(reply, Map):
            key, value = item
            out.append(format_tty(key, nested_prefix)[:-1] + " => " + format_tty(value, nested_prefix))
        else:
            out.append(format_tty(item, nested_prefix))
    return "".join(out)


def format_raw(reply: Any) -> bytes:
    """A reply as redis-cli prints it when stdout is not a terminal (``--raw``), final newline included."""
    return _raw(reply) + b"\n"


def _raw(reply: Any) -> bytes:
    if reply is None:
        return b""
    if isinstance(reply, Error):
        return reply.encode("utf-8", "surrogateescape") + b"\n"
    if isinstance(reply, bool):
        return b"(true)" if reply else b"(false)"
    if isinstance(reply, int):
        return b"%d" % reply
    if isinstance(reply, str):  # Status, Double, BigNumber
        return reply.encode("utf-8", "surrogateescape")
    if isinstance(reply, bytes):
        return reply
    if isinstance(reply, Verbatim):
        return reply.text
    if isinstance(reply, Map):
        return b"\n".join(_raw(k) + b" " + _raw(v) for k, v in reply)
    if isinstance(reply, list):
        return b"\n".join(_raw(item) for item in reply)
    return str(reply).encode()


# -- help and completion -------------------------------------------------------------------------

# Words the cli itself understands, not sent to the server.
LOCAL_COMMANDS = ("help", "quit", "exit", "clear")


def _is_key_position(cmd: Command, index: int, total: int) -> bool:
    if cmd.first_key <= 0 or index < cmd.first_key:
        return False
    last = cmd.last_key if cmd.last_key >= 0 else total + cmd.last_key
    return index <= last and (index - cmd.first_key) % (cmd.key_step or 1) == 0


def usage(cmd: Command) -> str:
    """``GET key``, ``DEL key [key ...]``: the arguments, derived from the arity and key positions."""
    words = [cmd.parent.name.upper(), cmd.name.upper()] if cmd.parent else [cmd.name.upper()]
    minimum = abs(cmd.arity)
    if cmd.subcommands and not cmd.parent:
        return f"{words[0]} subcommand [arg ...]"
    args = []
    for index in range(len(words), minimum):
        args.append("key" if _is_key_position(cmd, index, minimum) else "arg")
    if cmd.arity < 0:
        repeated = "key" if cmd.first_key > 0 and cmd.last_key == -1 else "arg"
        step = cmd.key_step if repeated == "key" and cmd.key_step > 1 else 1
        group = args[-step:] if len(args) >= step > 1 else [repeated]
        args.append("[" + " ".join(group) + " ...]")
    return " ".join(words + args)


def help_text(cmd: Command, color: bool = False) -> str:
    """``help GET``: usage, summary, since, group, flags (redis-cli's layout, blank lines around)."""

    def label(name: str) -> str:
        return f"\x1b[33m{name}:\x1b[0m" if color else f"{name}:"

    head = usage(cmd)
    if color:
        name_words = 2 if cmd.parent else 1
        parts = head.split(" ")
        head = "\x1b[1m" + " ".join(parts[:name_words]) + "\x1b[0m \x1b[90m" + " ".join(parts[name_words:]) + "\x1b[0m"
    lines = ["", f"  {head}"]
    if cmd.summary:
        lines.append(f"  {label('summary')} {cmd.summary}")
    lines.append(f"  {label('since')} {cmd.since}")
    lines.append(f"  {label('group')} {cmd.group}")
    if cmd.complexity:
        lines.append(f"  {label('complexity')} {cmd.complexity}")
    if cmd.flags:
        lines.append(f"  {label('flags')} {', '.join(sorted(cmd.flags))}")
    for sub in sorted(cmd.subcommands.values(), key=lambda c: c.name):
        lines.append(f"    {usage(sub)}" + (f"  -- {sub.summary}" if sub.summary else ""))
    return "\n".join(lines) + "\n\n"


def groups(table: Mapping[str, Command]) -> list[str]:
    return sorted({cmd.group for cmd in table.values()})


def help_for(topic: list[str], table: Mapping[str, Command], color: bool = False, version: str = "") -> str:
    """What ``help``, ``help CMD``, ``help CONTAINER SUB`` and ``help @group`` print."""
    if not topic:
        return (
            f"kvcluster cli {version}\n"
            "To get help about a command:\n"
            '      "help <command>" for help on <command>\n'
            '      "help <tab>" to get a list of possible help topics\n'
            '      "help @<group>" for the commands of a group: ' + ", ".join("@" + g for g in groups(table)) + "\n"
            '      "quit" to exit\n'
        )
    word = topic[0].lower()
    if word.startswith("@"):
        members = sorted((c for c in table.values() if c.group == word[1:]), key=lambda c: c.name)
        if not members:
            return f"No group {topic[0]!r}; the groups are " + ", ".join("@" + g for g in groups(table)) + "\n"
        return "".join(help_text(c, color) for c in members)
    cmd = table.get(word)
    if cmd is None:
        return f'No help for {topic[0]!r}: not a command of kvcluster\'s node (try "help")\n'
    if len(topic) > 1 and topic[1].lower() in cmd.subcommands:
        return help_text(cmd.subcommands[topic[1].lower()], color)
    return help_text(cmd, color)


def _matching(prefix: str, words: Iterable[str]) -> list[str]:
    # Completed in the case the user types in (upper when nothing typed yet, like redis-cli).
    upper = not prefix or prefix[0].isupper()
    found = sorted({w for w in words if w.startswith(prefix.lower())})
    return [w.upper() if upper else w for w in found]


def complete(line: str, table: Mapping[str, Command]) -> list[str]:
    """Candidates for the word being typed at the end of ``line`` (what Tab offers)."""
    words = line.split(" ")
    current = words[-1]
    before = [w for w in words[:-1] if w]
    if not before:
        return _matching(current, [*table, *LOCAL_COMMANDS])
    first = before[0].lower()
    if len(before) == 1:
        if first == "help":
            if current.startswith("@"):
                return ["@" + g for g in groups(table) if g.startswith(current[1:].lower())]
            return _matching(current, table)
        cmd = table.get(first)
        if cmd is not None and cmd.subcommands:
            return _matching(current, cmd.subcommands)
    if len(before) == 2 and first == "help":
        cmd = table.get(before[1].lower())
        if cmd is not None and cmd.subcommands:
            return _matching(current, cmd.subcommands)
    return []


def prompt(address: str | None, db: int = 0, group: str | None = None) -> str:
    """``127.0.0.1:6379> ``, ``127.0.0.1:6379[2]> ``, ``not connected> `` (and the group when following one)."""
    if address is None:
        return "not connected> "
    where = f"{address}[{db}]" if db else address
    return f"({group}) {where}> " if group else f"{where}> "
