"""docs/configuration.md is generated from the settings definitions and must match them.

When this fails after a setting was added or changed, regenerate the file with ``make docs``
(``kvcluster config-reference all > docs/configuration.md``) and commit it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import KVCLUSTER
from kvcluster.node.settings import node_config
from kvcluster.sentinel.settings import sentinel_config
from kvcluster.tools.config_reference import document

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_docs_configuration_md_is_up_to_date() -> None:
    expected = document()
    actual = DOC.read_text() if DOC.exists() else ""
    assert actual == expected, (
        "docs/configuration.md is out of date with the settings definitions: run `make docs` "
        "(kvcluster config-reference all > docs/configuration.md)"
    )


def test_every_setting_of_both_components_is_documented() -> None:
    text = document()
    node_part, _, sentinel_part = text.partition("\n## Sentinel\n")
    assert node_part.startswith("# Configuration reference\n") and sentinel_part
    for part, config in ((node_part, node_config()), (sentinel_part, sentinel_config())):
        for s in config.settings:
            if not s.hidden or s.ignored_reason:
                assert f"| `{s.name}` |" in part, s.name
    assert "| `port` | int | `26379` | no | TCP port for clients and other sentinels |" in sentinel_part
    assert "| `port` | int | `6379` | no | TCP port for clients |" in node_part
    assert "| `sentinel announce-ip VALUE` | `announce-ip` |" in sentinel_part


def test_the_command_prints_the_same_document() -> None:
    out = subprocess.run(
        [*KVCLUSTER, "config-reference", "all"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out == document()
    sentinel = subprocess.run(
        [*KVCLUSTER, "config-reference", "sentinel"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert sentinel.startswith("### `kvcluster sentinel` settings\n")
