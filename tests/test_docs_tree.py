"""docs/ARCHITECTURE.md matches the tree: it names every module, and every module it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ARCHITECTURE.md"
MODULE_RE = re.compile(r"`((?:harness|targets)/[\w/]+\.py)`")


def modules_in_tree() -> set[str]:
    found = set()
    for folder in ("harness", "targets"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name != "__init__.py" and "__pycache__" not in path.parts:
                found.add(path.relative_to(ROOT).as_posix())
    return found


def modules_in_doc() -> set[str]:
    return set(MODULE_RE.findall(DOC.read_text()))


def test_every_module_is_described() -> None:
    assert sorted(modules_in_tree() - modules_in_doc()) == []


def test_every_described_module_exists() -> None:
    assert sorted(modules_in_doc() - modules_in_tree()) == []
