"""docs/configuration.md, generated from the settings definitions of the node and the sentinel.

``kvcluster config-reference all`` prints it (``make docs`` writes it); tests/test_config_reference.py
fails when the committed file differs from what the definitions generate.
"""

from __future__ import annotations

from kvcluster.cli import config_reference
from kvcluster.common.config import ENV_PREFIX

REGENERATE = "make docs"
COMMAND = "kvcluster config-reference all > docs/configuration.md"


def _sentinel_conf_lines() -> str:
    from kvcluster.sentinel import state

    out = [
        "#### `sentinel ...` lines of a sentinel.conf",
        "",
        "A Redis sentinel.conf configures groups with `sentinel <option> <group> <value>` lines (`sentinel monitor",
        "mymaster 127.0.0.1 6379 2`, `sentinel down-after-milliseconds mymaster 5000`, ...); they are read as Redis",
        "Sentinel reads them, and the sentinel writes its state back into the same file (or into its state file when",
        "started without a sentinel.conf). These lines set the settings above:",
        "",
        "| Line | Setting |",
        "|---|---|",
    ]
    for directive, setting in sorted(state._SETTING_DIRECTIVES.items()):
        out.append(f"| `sentinel {directive} VALUE` | `{setting}` |")
    out += ["", "These are accepted and ignored, with a warning:", "", "| Line | Why it is ignored |", "|---|---|"]
    for directive, reason in sorted(state._IGNORED.items()):
        out.append(f"| `sentinel {directive} ...` | {reason} |")
    return "\n".join(out) + "\n"


def document() -> str:
    """The whole of docs/configuration.md."""
    from kvcluster.node.settings import node_config
    from kvcluster.sentinel.settings import sentinel_config

    head = "\n".join(
        [
            "# Configuration reference",
            "",
            f"<!-- Generated from the settings definitions by `{REGENERATE}` ({COMMAND}). Do not edit by hand:",
            "     tests/test_config_reference.py fails when this file is out of date. -->",
            "",
            "Every setting of `kvcluster node` and `kvcluster sentinel` can be given, in order of precedence, as a",
            f"flag (`--maxclients 20000`), an environment variable (`{ENV_PREFIX}MAXCLIENTS=20000`: upper case,",
            "dashes as underscores), a line of the config file (redis.conf / sentinel.conf syntax, or YAML for",
            "`.yaml`/`.yml` files), or its default. `kvcluster node --list-settings` and",
            "`kvcluster sentinel --list-settings` print the same tables in a terminal.",
            "",
            "- [Node](#node)",
            "- [Sentinel](#sentinel)",
            "",
            "## Node",
            "",
            "",
        ]
    )
    return (
        head
        + config_reference(node_config(), "node")
        + "\n## Sentinel\n\n"
        + config_reference(sentinel_config(), "sentinel")
        + "\n"
        + _sentinel_conf_lines()
    )
