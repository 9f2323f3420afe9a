"""The import scheme: operator/ never shadows the standard library's operator module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_stdlib_operator_not_shadowed_from_repo_root() -> None:
    code = (
        "import operator, kvcluster.operator, kvcluster.node, kvcluster.sentinel, kvcluster.common;"
        "print(operator.__file__); print(kvcluster.operator.__file__)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    stdlib_operator, ours = out.stdout.split()
    assert "site-packages" not in stdlib_operator and not stdlib_operator.startswith(str(ROOT))
    assert ours.startswith(str(ROOT / "operator" / "kvcluster" / "operator"))


def test_top_level_dirs_are_not_packages() -> None:
    for name in ("node", "sentinel", "operator"):
        assert not (ROOT / name / "__init__.py").exists(), f"{name}/ must stay a source root, not a package"


def test_common_imports_nothing_of_the_components() -> None:
    for path in (ROOT / "node" / "kvcluster" / "common").glob("*.py"):
        imports = [line for line in path.read_text().splitlines() if line.lstrip().startswith(("import ", "from "))]
        for component in ("kvcluster.node", "kvcluster.sentinel", "kvcluster.operator"):
            assert not any(component in line for line in imports), (
                f"{path.name} imports {component}: common must stay at the bottom"
            )
