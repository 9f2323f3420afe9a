"""Redis glob patterns, matched exactly like Redis's ``stringmatchlen`` (util.c).

Used by KEYS, SCAN MATCH, PSUBSCRIBE/PUBSUB CHANNELS and CONFIG GET. Syntax:

``*``        any run of bytes (consecutive stars collapse into one)
``?``        any one byte
``[abc]``    one of the listed bytes; ``[^abc]`` none of them; ``[a-z]`` a range
             (the ends may come in either order); ``\\x`` inside a class is ``x``
``\\x``      ``x`` literally (a trailing lone backslash is a literal backslash)

Redis's quirks are kept on purpose, because clients see them:

- an empty subject matches only the empty pattern, so ``*`` does not match the
  empty string (KEYS and SCAN special-case the pattern ``*`` to mean "all keys",
  PSUBSCRIBE does not);
- an unterminated class (``[abc``) is the class so far, and ``[a-]`` is the range
  from ``a`` to ``]``;
- range ends and subject bytes compare as C ``char``, which is signed on the
  platforms Redis runs on: ``[\\x00-\\xff]`` is the range from -1 to 0, i.e. only
  ``\\xff`` and ``\\x00``;
- with ``nocase`` (CONFIG GET), literals and ranges compare ASCII-lowercased, but
  a backslash-escaped byte inside a class still compares exactly.

How: a pattern is compiled once into tokens, each token a set of allowed bytes
(evaluated with Redis's own per-byte rules, so every quirk above falls out) or a
star. Every token but the star consumes exactly one byte, so "the leftmost
occurrence of each segment between stars" decides a match; the tokens become a
Python regular expression whose middle segments are atomic lazy groups
(``(?>.*?SEG)``). That keeps matching in C and O(len(pattern) * len(subject)), with
none of the exponential backtracking a naive ``.*`` translation allows (Redis fixed
the same problem in stringmatchlen, CVE-2022-36021).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

__all__ = ["compile_glob", "glob_match"]

_STAR = None  # token marker; every other token is a 256-entry table of allowed bytes

_ALL_BYTES = range(256)


def _signed(b: int) -> int:
    """A byte as C's (signed) ``char``."""
    return b - 256 if b >= 128 else b


def _lower(c: int) -> int:
    """C ``tolower`` in the C locale, on a signed char value."""
    return c + 32 if 65 <= c <= 90 else c


def _tokenize(pattern: bytes, nocase: bool) -> list[bytes | None]:
    """Split ``pattern`` into tokens the way stringmatchlen walks it."""
    tokens: list[bytes | None] = []
    n = len(pattern)
    i = 0
    while i < n:
        c = pattern[i]
        if c == 0x2A:  # '*'
            while i + 1 < n and pattern[i + 1] == 0x2A:
                i += 1
            tokens.append(_STAR)
            i += 1
        elif c == 0x3F:  # '?'
            tokens.append(bytes([1]) * 256)
            i += 1
        elif c == 0x5B:  # '['
            i += 1
            negate = i < n and pattern[i] == 0x5E
            if negate:
                i += 1
            # Members of the class as predicates over a signed subject char.
            exact: list[int] = []  # backslash-escaped: always case-sensitive
            literal: list[int] = []
            ranges: list[tuple[int, int]] = []
            while True:
                if i < n and pattern[i] == 0x5C and n - i >= 2:
                    i += 1
                    exact.append(_signed(pattern[i]))
                elif i >= n or pattern[i] == 0x5D:  # ']', or an unterminated class ends with the pattern
                    break
                elif n - i >= 3 and pattern[i + 1] == 0x2D:  # 'a-z'
                    start, end = _signed(pattern[i]), _signed(pattern[i + 2])
                    if start > end:
                        start, end = end, start
                    if nocase:
                        start, end = _lower(start), _lower(end)
                    ranges.append((start, end))
                    i += 2
                else:
                    literal.append(_signed(pattern[i]))
                i += 1
            i += 1  # past ']'
            table = bytearray(256)
            for b in _ALL_BYTES:
                s = _signed(b)
                folded = _lower(s) if nocase else s
                hit = (
                    s in exact
                    or any(folded == (_lower(p) if nocase else p) for p in literal)
                    or any(lo <= folded <= hi for lo, hi in ranges)
                )
                table[b] = hit != negate
            tokens.append(bytes(table))
        else:
            if c == 0x5C and n - i >= 2:  # '\x' is x
                i += 1
                c = pattern[i]
            table = bytearray(256)
            if nocase:
                want = _lower(_signed(c))
                for b in _ALL_BYTES:
                    table[b] = _lower(_signed(b)) == want
            else:
                table[c] = 1
            tokens.append(bytes(table))
            i += 1
    return tokens


def _token_regex(table: bytes) -> bytes:
    allowed = [b for b in _ALL_BYTES if table[b]]
    if not allowed:
        return b"(?!)"
    if len(allowed) == 256:
        return b"."
    if len(allowed) == 1:
        return re.escape(bytes(allowed))
    # Runs of consecutive bytes as \xHH-\xHH ranges.
    parts = []
    start = prev = allowed[0]
    for b in [*allowed[1:], -1]:
        if b == prev + 1:
            prev = b
            continue
        parts.append(b"\\x%02x" % start if start == prev else b"\\x%02x-\\x%02x" % (start, prev))
        start = prev = b
    return b"[" + b"".join(parts) + b"]"


def _to_regex(tokens: list[bytes | None]) -> bytes:
    segments: list[list[bytes]] = [[]]
    for tok in tokens:
        if tok is _STAR:
            segments.append([])
        else:
            segments[-1].append(_token_regex(tok))
    if len(segments) == 1:
        return b"".join(segments[0])
    first, *middle, last = (b"".join(seg) for seg in segments)
    # Leftmost occurrence of each middle segment, never revisited; the last one is a suffix.
    return first + b"".join(b"(?>.*?" + seg + b")" for seg in middle) + b".*" + last


_SPECIAL = frozenset(b"*?[\\")


@lru_cache(maxsize=1024)
def compile_glob(pattern: bytes, nocase: bool = False) -> Callable[[bytes], bool]:
    """A fast ``subject -> bool`` predicate for ``pattern`` (cached per pattern)."""
    if not pattern:
        return lambda subject: not subject
    if not nocase:
        # Common shapes without a regex: exact, "prefix*", "*suffix".
        body = pattern.rstrip(b"*")
        if not _SPECIAL.intersection(body):
            if body == pattern:
                return pattern.__eq__
            if body:
                return lambda subject: subject.startswith(body)
            return bool  # "*" (or "**"): any non-empty subject
        if pattern[:1] == b"*":
            tail = pattern.lstrip(b"*")
            if tail and not _SPECIAL.intersection(tail):
                return lambda subject: subject.endswith(tail)
    fullmatch = re.compile(_to_regex(_tokenize(pattern, nocase)), re.DOTALL).fullmatch
    return lambda subject: bool(subject) and fullmatch(subject) is not None


def glob_match(pattern: bytes, subject: bytes, nocase: bool = False) -> bool:
    """Whether ``subject`` matches the Redis glob ``pattern``."""
    return compile_glob(pattern, nocase)(subject)
