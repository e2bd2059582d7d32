"""The import directions of docs/architecture.md, checked on the source (an AST scan).

Every `import` and `from … import` of our own packages counts, wherever it stands: at the top,
inside a function, under `if TYPE_CHECKING:`. A circle hidden in a function is still a circle.

- `config` imports nothing of ours; `streams` only `config`; `signaling` only `config` and
  `streams`.
- `hub.core` (centres, auth, scopes, errors, events, db, presence, audit) imports no slice and
  no `hub.http`; `hub.http` (middleware, errors to statuses, request helpers, WebSocket router,
  metrics) imports `hub.core` only.
- A slice (`hub/<slice>/`) imports another slice's `service` or `model` module only, never its
  store, watchers or routes; no slice imports `hub.cluster` (the cluster is an add-on behind
  `hub.core.cluster`), and slices import each other without a circle.
- `hub.cluster` may use the slices' services; only `hub.app` and `hub.cli` import everything.
- No module-level circle anywhere.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("config", "streams", "signaling", "hub")
LAYERS = {"core", "http"}
ADD_ONS = {"cluster"}
TOP = {"hub.app", "hub.cli", "hub", "hub.__main__"}
PUBLIC = {"service", "model"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in OURS:
        for path in sorted((ROOT / top).rglob("*.py")):
            found[module_name(path)] = path
    return found


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module of ours that `name` (a module or a name inside one) refers to."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(mod: str, path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for name in names:
            if name.split(".")[0] not in OURS:
                continue
            target = resolve(name, known)
            if target is not None and target != mod:
                found.add(target)
    # `from hub.x import y` where y is a module adds hub.x.y; the bare base (hub.x, a
    # package's __init__) is only an import of it when nothing below it was named
    for target in list(found):
        parent = target.rpartition(".")[0]
        if parent in found and parent in known and known[parent].name == "__init__.py":
            if not _names_from(parent, tree, package):
                found.discard(parent)
    return found


def _names_from(package_mod: str, tree: ast.AST, package: str) -> bool:
    """Whether some import takes a name defined in `package_mod`'s __init__ (not a module)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == package_mod:
            if any(
                not (ROOT / package_mod.replace(".", "/") / f"{a.name}.py").exists()
                and not (ROOT / package_mod.replace(".", "/") / a.name).is_dir()
                for a in node.names
            ):
                return True
        if isinstance(node, ast.Import) and any(a.name == package_mod for a in node.names):
            return True
    return False


def graph() -> dict[str, set[str]]:
    known = modules()
    return {mod: imports_of(mod, path, known) for mod, path in known.items()}


def slice_of(mod: str) -> str | None:
    """`hub.petitions.store` → `petitions`; None outside hub's packages."""
    parts = mod.split(".")
    if parts[0] != "hub" or len(parts) < 3:
        return None
    return parts[1]


def violation(mod: str, target: str) -> str | None:
    top, ttop = mod.split(".")[0], target.split(".")[0]
    if top == "config" and ttop != "config":
        return "config imports nothing of ours"
    if top == "streams" and ttop not in ("config", "streams"):
        return "streams imports only config"
    if top == "signaling" and ttop not in ("config", "streams", "signaling"):
        return "signaling imports only config and streams"
    if top != "hub" or mod in TOP or ttop != "hub":
        return None
    if target in TOP:
        return f"{target} sets the application up; nothing imports it back"
    own, other = slice_of(mod), slice_of(target)
    if own is None or other is None or own == other:
        return None
    if own in LAYERS:
        if own == "core":
            return "hub.core imports no slice and no hub.http"
        if other != "core":
            return "hub.http imports only hub.core"
        return None
    if other in LAYERS:
        return None
    if other in ADD_ONS and own not in ADD_ONS:
        return "a slice never imports hub.cluster (it sees the cluster through hub.core.cluster)"
    if own in ADD_ONS:
        return None if target.split(".")[2] in PUBLIC else f"only {other}'s service and model"
    if target.split(".")[2] not in PUBLIC:
        return f"a slice imports only another slice's service or model, not {target}"
    return None


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_module_circles() -> None:
    assert cycles(graph()) == []


def test_slices_import_each_other_without_a_circle() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for mod, targets in graph().items():
        own = slice_of(mod)
        if own is None or own in LAYERS:
            continue
        for t in targets:
            other = slice_of(t)
            if other is not None and other != own and other not in LAYERS:
                edges[own].add(other)
    assert cycles(edges) == []


def test_import_directions() -> None:
    bad = sorted(
        f"{mod} → {t}: {why}"
        for mod, targets in graph().items()
        for t in targets
        if (why := violation(mod, t)) is not None
    )
    assert bad == []


@pytest.mark.parametrize(
    ("mod", "target", "allowed"),
    [
        ("streams.stream", "config.schema", True),
        ("streams.stream", "signaling.whep", False),
        ("config.schema", "streams.stream", False),
        ("signaling.whep", "streams.relay", True),
        ("signaling.whep", "hub.core.auth", False),
        ("hub.core.events", "hub.calls.service", False),
        ("hub.core.events", "hub.http.errors", False),
        ("hub.http.errors", "hub.core.errors", True),
        ("hub.http.ws", "hub.calls.service", False),
        ("hub.calls.api", "hub.rooms.service", True),
        ("hub.calls.api", "hub.rooms.model", True),
        ("hub.calls.api", "hub.rooms.store", False),
        ("hub.calls.api", "hub.cluster.service", False),
        ("hub.cluster.proxy", "hub.calls.service", True),
        ("hub.cluster.proxy", "hub.calls.api", False),
        ("hub.calls.service", "hub.app", False),
        ("hub.app", "hub.calls.api", True),
    ],
)
def test_the_rules_themselves(mod: str, target: str, allowed: bool) -> None:
    assert (violation(mod, target) is None) is allowed


def test_a_circle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
