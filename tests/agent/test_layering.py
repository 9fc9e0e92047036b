"""Who imports whom in the agent: account changes sit above billing and subscribers."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import jasiyo.agent

AGENT = Path(jasiyo.agent.__file__).parent


@cache
def _imports(module: str) -> frozenset[str]:
    """The ``jasiyo.agent`` modules ``module`` imports when it runs, at the top or inside a
    function (not those only type checkers read, under ``if TYPE_CHECKING``)."""
    tree = ast.parse((AGENT / f"{module}.py").read_text())
    out: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "jasiyo.agent":
                out |= {a.name for a in node.names}
            elif node.module.startswith("jasiyo.agent."):
                out.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[2] for a in node.names if a.name.startswith("jasiyo.agent.")}
    return frozenset(out)


def _runtime_nodes(node: ast.AST) -> list[ast.AST]:
    out = [node]
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
            continue
        out += _runtime_nodes(child)
    return out


def _reaches(start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m in seen or not (AGENT / f"{m}.py").exists():
            continue
        seen.add(m)
        deps = _imports(m)
        if goal in deps:
            return True
        todo += list(deps)
    return False


def test_billing_and_subscribers_do_not_import_each_other_in_a_circle() -> None:
    assert "billing" in _imports("accounts") and "subscribers" in _imports("accounts")
    assert not _reaches("subscribers", "billing")
    assert not _reaches("billing", "accounts") and not _reaches("subscribers", "accounts")
    assert "accounts" in _imports("imports") and "billing" not in _imports("imports")


def test_no_agent_module_imports_itself_through_others() -> None:
    cycles = [m.stem for m in AGENT.glob("*.py") if _reaches(m.stem, m.stem)]
    assert cycles == [], f"import cycles through: {cycles}"
