"""Declarative settings shared by node and sentinel.

A component declares its settings as a list of :class:`Setting`. A
:class:`Config` holds their current values and knows where each value came
from. Sources apply in increasing precedence: defaults < config file (YAML or
Redis ``.conf`` syntax) < ``KVCLUSTER_*`` environment variables < command-line
flags. ``CONFIG GET/SET`` read and change the same object at runtime.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


class ConfigError(Exception):
    """A bad setting: unknown name, bad value, or a bad line in a config file."""


_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": 1000**2,
    "mb": 1024**2,
    "g": 1000**3,
    "gb": 1024**3,
}


def parse_memory(text: str) -> int:
    """Redis memory notation: ``1gb`` = 1024**3, ``1g`` = 1000**3, plain bytes."""
    t = text.strip().lower()
    i = len(t)
    while i and t[i - 1].isalpha():
        i -= 1
    number, unit = t[:i], t[i:]
    if unit not in _MEMORY_UNITS or not number or not number.lstrip("-").isdigit():
        raise ConfigError(f"argument must be a memory value: {text!r}")
    return int(number) * _MEMORY_UNITS[unit]


def format_memory(value: int) -> str:
    for unit, size in (("gb", 1024**3), ("mb", 1024**2), ("kb", 1024)):
        if value and value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


def parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("yes", "true", "1", "on"):
        return True
    if t in ("no", "false", "0", "off"):
        return False
    raise ConfigError(f"argument must be 'yes' or 'no': {text!r}")


@dataclass
class Setting:
    """One configuration key, as Redis names it (``proto-max-bulk-len``).

    ``kind`` is one of: ``int``, ``memory`` (accepts ``1gb``), ``bool`` (yes/no),
    ``str``, ``enum`` (one of ``choices``), ``float``, ``args`` (a list of
    strings: directives with several arguments such as ``save 900 1``).
    """

    name: str
    kind: str
    default: Any
    help: str
    mutable: bool = True
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    aliases: tuple[str, ...] = ()
    # Directives of redis.conf we accept but ignore, with the reason printed as a warning.
    ignored_reason: str = ""
    # Expose as a command-line flag (--name).
    flag: bool = True
    # Not shown by CONFIG GET (secrets are shown, as Redis does; this is for internal keys).
    hidden: bool = False
    # Several directives accumulate (``save 900 1`` twice); ``args`` kind only.
    repeatable: bool = False
    validate: Callable[[Any], None] | None = None

    def parse(self, raw: str | list[str]) -> Any:
        """Turn the text form (or the words of a directive) into a value."""
        if self.kind == "args":
            if isinstance(raw, str):
                return raw.split()
            return list(raw)
        text = raw if isinstance(raw, str) else " ".join(raw)
        if self.kind == "int":
            try:
                value: Any = int(text)
            except ValueError:
                raise ConfigError(f"argument couldn't be parsed into an integer: {text!r}") from None
        elif self.kind == "memory":
            value = parse_memory(text)
        elif self.kind == "bool":
            value = parse_bool(text)
        elif self.kind == "float":
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(f"argument couldn't be parsed into a number: {text!r}") from None
        elif self.kind == "enum":
            value = text.lower()
            if value not in self.choices:
                raise ConfigError(f"argument must be one of {', '.join(self.choices)}: {text!r}")
        else:
            value = text
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"argument must be between {self.minimum:g} and {self.maximum or 'inf'}")
        if self.maximum is not None and value > self.maximum:
            raise ConfigError(f"argument must be between {self.minimum or 0:g} and {self.maximum:g}")
        if self.validate is not None:
            self.validate(value)
        return value

    def format(self, value: Any) -> str:
        """The text form CONFIG GET and CONFIG REWRITE print."""
        if self.kind == "bool":
            return "yes" if value else "no"
        if self.kind == "args":
            return " ".join(str(v) for v in value)
        if self.kind == "memory":
            return str(value)
        if self.kind == "float":
            return f"{value:g}"
        return "" if value is None else str(value)


@dataclass
class Config:
    """Current values of a set of settings, with their sources and change hooks."""

    settings: list[Setting]
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    # The file the process was started from (CONFIG REWRITE writes back to it).
    config_file: str | None = None
    # name -> callbacks run after a runtime change (CONFIG SET).
    hooks: dict[str, list[Callable[[Any], None]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_name: dict[str, Setting] = {}
        for s in self.settings:
            self.by_name[s.name] = s
            for alias in s.aliases:
                self.by_name[alias] = s
        for s in self.settings:
            self.values.setdefault(s.name, s.default)
            self.sources.setdefault(s.name, "default")

    def setting(self, name: str) -> Setting:
        s = self.by_name.get(name.lower())
        if s is None:
            raise ConfigError(f"unknown setting {name!r}")
        return s

    def __getitem__(self, name: str) -> Any:
        return self.values[self.setting(name).name]

    def get(self, name: str, default: Any = None) -> Any:
        s = self.by_name.get(name.lower())
        return default if s is None else self.values[s.name]

    def set(self, name: str, raw: str | list[str], source: str = "runtime") -> Any:
        """Parse and store a value; run change hooks. Returns the parsed value."""
        s = self.setting(name)
        value = s.parse(raw)
        self.set_value(s.name, value, source)
        return value

    def set_value(self, name: str, value: Any, source: str = "runtime") -> None:
        s = self.setting(name)
        self.values[s.name] = value
        self.sources[s.name] = source
        for hook in self.hooks.get(s.name, ()):
            hook(value)

    def on_change(self, name: str, hook: Callable[[Any], None]) -> None:
        self.hooks.setdefault(self.setting(name).name, []).append(hook)

    def matching(self, pattern: str) -> Iterable[Setting]:
        """Settings whose name (or alias) matches a CONFIG GET glob pattern."""
        pat = pattern.lower()
        for s in self.settings:
            if s.hidden or s.ignored_reason:
                continue
            if fnmatch.fnmatchcase(s.name, pat) or any(fnmatch.fnmatchcase(a, pat) for a in s.aliases):
                yield s
