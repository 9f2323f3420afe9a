"""Asking sentinels where a group's leader is (the same question redis-py's ``Sentinel`` asks)."""

from __future__ import annotations

from collections.abc import Sequence

from kvcluster.tools.resp import Connection, Error

Address = tuple[str, int]


class NoLeader(Exception):
    """No sentinel could name the group's leader (all unreachable, or none monitors the group)."""


def ask_leader(
    sentinels: Sequence[Address], group: str, password: str | None = None, user: str | None = None, timeout: float = 1.0
) -> Address:
    """The first answer of ``SENTINEL get-master-addr-by-name``, trying the sentinels in order."""
    problems = []
    for host, port in sentinels:
        try:
            with Connection(host, port, timeout=timeout, connect_timeout=timeout) as conn:
                reply = conn.call("SENTINEL", "get-master-addr-by-name", group)
                if isinstance(reply, Error) and reply.code == "NOAUTH" and password:
                    creds = [user, password] if user else [password]
                    auth = conn.call("AUTH", *creds)
                    if isinstance(auth, Error):
                        problems.append(f"{host}:{port}: {auth}")
                        continue
                    reply = conn.call("SENTINEL", "get-master-addr-by-name", group)
        except OSError as e:
            problems.append(f"{host}:{port}: {e.strerror or e}")
            continue
        if isinstance(reply, list) and len(reply) == 2 and all(isinstance(x, bytes) for x in reply):
            return reply[0].decode(), int(reply[1])
        problems.append(f"{host}:{port}: {reply if isinstance(reply, Error) else f'does not know {group!r}'}")
    raise NoLeader(f"no sentinel named the leader of {group!r} ({'; '.join(problems)})")
