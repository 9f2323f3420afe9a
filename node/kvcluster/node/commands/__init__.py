"""Command families, one module each, all registered in one table.

Importing a family module registers its commands (``@command`` in
:mod:`.table`). :func:`load_command_table` imports every family and returns
the table; nothing else should import family modules for their side effects.
"""

from __future__ import annotations

import importlib

from kvcluster.node.commands.table import REGISTRY, Command

FAMILIES = (
    "connection",
    "strings",
    "keys",
    "hashes",
    "sets",
    "lists",
    "zsets",
    "databases",
    "transactions",
    "pubsub",
    "server",
    "config",
    "replication",
    "persistence",
    "scripting",
    "blocking",
)


def load_command_table() -> dict[str, Command]:
    for family in FAMILIES:
        importlib.import_module(f"{__name__}.{family}")
    return REGISTRY
