"""The house rules, checked over the source tree with Python's ``ast``.

The rules and the layer table are the constants just below: read them first. Every import
counts, wherever it is written — at module level, inside ``if TYPE_CHECKING:`` and inside
a function (an import in a function that would close a circle is still a circle; it only
moves the failure from import time to run time).

The one-way pipeline (``app/``)::

    app.webhooks ─▶ app.sync ─▶ app.meetings ─▶ app.accounts ─▶ app.nudges ─▶ app.delivery
         │             │             │               │               │              │
         └─────────────┴─────────────┴──── LEAVES ───┴───────────────┴──────────────┘
    ENTRIES (main, cli, demo, scheduler, …) sit on top and may import anything below.

- a STAGE imports only later stages and the LEAVES;
- a LEAF imports other leaves only (never a stage, never an entry);
- nothing but an ENTRY imports an entry;
- a module may always import its own package (``app.meetings.service`` →
  ``app.meetings.repository``); circles inside a package are still circles.

Pure policies: ``policies/`` imports the standard library (minus the I/O modules of
``POLICY_IO_STDLIB``), the pure third-party libraries of ``POLICY_THIRD_PARTY``,
``policies.*`` and ``connectors.base`` — the provider-neutral value types that
``policies.classify`` reads (``Attendee``); ``connectors.base`` itself imports only the
standard library, so this keeps policies free of I/O. Never ``app`` (not even
``app.errors``), never a provider package. ``now`` is a parameter: policies never read
the clock.

A finding reads ``path:line: rule: what is wrong``. ``check(root)`` runs every rule over
a tree; the self-tests at the bottom run it on small synthetic trees so that each rule is
shown to fail when broken.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# --- the house rules at a glance ---------------------------------------------------------

RULES: dict[str, str] = {
    "circle": "no import circle among first-party packages, nor among a package's modules",
    "local-import": "no import inside a function in app/ (only LAZY_IMPORTS, third-party)",
    "one-way": "a stage imports only later stages and leaves; leaves import no stage; "
    "only entries import entries",
    "one-registry": "only app.providers imports a provider package (PROVIDER_PACKAGES)",
    "sql-in-repositories": "SQL (statement builders, session calls) only in repository.py "
    "files and app/db/",
    "pure-policies": "policies/ imports only the standard library (no I/O modules), "
    "POLICY_THIRD_PARTY, policies.* and connectors.base",
    "policies-clock": "policies/ never reads the clock: now is a parameter",
    "connectors-no-app": "connectors/ never imports app",
    "neutral-base": "connectors.base imports only the standard library",
    "known-layer": "every module of app/ and connectors/ has its place in the layer table",
}

# The pipeline, in order: a stage may import only the stages after it.
STAGES = (
    "app.webhooks",
    "app.sync",
    "app.meetings",
    "app.accounts",
    "app.nudges",
    "app.delivery",
)
# Neutral leaves every stage may use; they import no stage and no entry.
LEAVES = (
    "app.db",
    "app.errors",
    "app.clock",
    "app.config",
    "app.runtime",
    "app.logs",
    "app.crash",
    "app.api",
    "app.providers",
    "app.secrets",  # the key ring (encrypt, sign): settings-level, used by every stage
    "policies",
    "connectors.base",
    "connectors.tls",  # the private-CA settings every httpx client we own reads
    "connectors.http",  # retries, Retry-After, error tables: shared by connectors and channels
    "connectors.oidc",  # PKCE and the id_token check (JWKS): shared by both identity providers
)
# Entry and orchestration modules: they may import anything; no stage or leaf imports them.
ENTRIES = (
    "app.main",
    "app.cli",
    "app.demo",
    "app.simulation",
    "app.scheduler",
    "app.reps",
    "app.sandbox",
    "app.ops",
    "app.web",
    "app.actions",
)
# The calendar providers; only the registry names them.
PROVIDER_PACKAGES = ("connectors.google", "connectors.microsoft", "connectors.sandbox")
REGISTRY = "app.providers"
# Package roots (their __init__): neutral.
ROOTS = ("app", "connectors", "policies")
FIRST_PARTY = frozenset({"app", "connectors", "policies", "tests", "bench"})

# Heavy optional third-party modules app/ may import inside a function. Never an app
# module: a lazy first-party import hides a circle or a layering mistake.
LAZY_IMPORTS = frozenset({"uvicorn"})  # the ASGI server: only `nextstep serve` needs it

POLICY_THIRD_PARTY = frozenset({"yaml", "holidays"})
POLICY_MAY_IMPORT = ("policies", "connectors.base")
POLICY_IO_STDLIB = frozenset(
    {
        "socket",
        "ssl",
        "http",
        "urllib",
        "smtplib",
        "ftplib",
        "imaplib",
        "subprocess",
        "sqlite3",
        "asyncio",
        "threading",
        "multiprocessing",
        "concurrent",
        "selectors",
        "shutil",
        "tempfile",
    }
)
CLOCK_READS = {
    "datetime": frozenset({"now", "utcnow", "today"}),
    "date": frozenset({"today"}),
    "time": frozenset({"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter"}),
}

# SQLAlchemy statement builders and the session calls that run SQL.
SQL_BUILDERS = frozenset({"select", "update", "delete", "insert", "text"})
SESSION_SQL = frozenset(
    {"execute", "scalar", "scalars", "get", "add", "add_all", "delete", "merge", "query", "commit"}
)
SESSION_NAMES = frozenset({"session", "s"})
SESSION_TYPES = frozenset({"Session", "AsyncSession"})


def sql_allowed(module: Module) -> bool:
    """SQL lives in repository.py files and in app/db/."""
    return module.path.name == "repository.py" or within(module.name, "app.db")


# --- reading the tree --------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.message}"


@dataclass(frozen=True)
class Import:
    target: str  # the module imported, resolved (``from a import b`` → a.b when b is one)
    name: str | None  # for ``from a import b`` when b is not a module: "b"
    line: int
    local: bool  # written inside a function


@dataclass
class Module:
    name: str
    path: Path  # relative to the root, posix
    tree: ast.Module
    imports: list[Import] = field(default_factory=list)


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def top(module: str) -> str:
    return module.split(".", 1)[0]


def module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def load_tree(root: Path) -> dict[str, Module]:
    """Every module of app/, connectors/ and policies/ under ``root``, parsed."""
    paths = sorted(p for pkg in ROOTS for p in (root / pkg).rglob("*.py"))
    modules: dict[str, Module] = {}
    for path in paths:
        rel = path.relative_to(root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))
        modules[module_name(rel)] = Module(module_name(rel), Path(rel.as_posix()), tree)
    for module in modules.values():
        module.imports = list(_imports_of(module, modules.keys()))
    return modules


def _imports_of(module: Module, known: Iterable[str]) -> Iterator[Import]:
    known = set(known)
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]

    def visit(node: ast.AST, local: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(alias.name, None, child.lineno, local)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (child.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    if full in known:
                        yield Import(full, None, child.lineno, local)
                    else:
                        yield Import(base, alias.name, child.lineno, local)
            yield from visit(child, inner)

    yield from visit(module.tree, False)


# --- the layer table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    kind: str  # stage | leaf | entry | provider
    unit: str  # the table entry the module belongs to
    index: int = 0  # a stage's position in the pipeline


def place_of(module: str) -> Place | None:
    """Where ``module`` sits in the layer table (the longest matching entry), or None."""
    if module in ROOTS:
        return Place("leaf", module)
    table = [
        *(Place("stage", s, i) for i, s in enumerate(STAGES)),
        *(Place("leaf", s) for s in LEAVES),
        *(Place("entry", s) for s in ENTRIES),
        *(Place("provider", s) for s in PROVIDER_PACKAGES),
    ]
    matches = [p for p in table if within(module, p.unit)]
    return max(matches, key=lambda p: len(p.unit)) if matches else None


def unit_of(module: str) -> str:
    place = place_of(module)
    return place.unit if place else ".".join(module.split(".")[:2])


# --- the rules ---------------------------------------------------------------------------


def check(root: Path) -> list[Finding]:
    """Every broken house rule in the tree under ``root``."""
    modules = load_tree(root)
    found: set[Finding] = set()
    for checker in (
        check_circles,
        check_local_imports,
        check_one_way,
        check_registry,
        check_sql,
        check_policies,
        check_connectors,
        check_known_layers,
    ):
        found.update(checker(modules))
    return sorted(found)


def _at(module: Module, line: int, rule: str, message: str) -> Finding:
    return Finding(module.path.as_posix(), line, rule, message)


def _first_party(imp: Import) -> bool:
    return top(imp.target) in FIRST_PARTY


def check_local_imports(modules: dict[str, Module]) -> Iterator[Finding]:
    for module in modules.values():
        if not within(module.name, "app"):
            continue
        for imp in module.imports:
            if not imp.local:
                continue
            if _first_party(imp):
                yield _at(
                    module,
                    imp.line,
                    "local-import",
                    f"{module.name} imports {imp.target} inside a function: import it at "
                    "module level (a circle it would close must be broken, not hidden)",
                )
            elif top(imp.target) not in LAZY_IMPORTS:
                yield _at(
                    module,
                    imp.line,
                    "local-import",
                    f"{module.name} imports {imp.target} inside a function: import it at "
                    "module level, or add a heavy optional third-party module to LAZY_IMPORTS",
                )


def check_one_way(modules: dict[str, Module]) -> Iterator[Finding]:
    for module in modules.values():
        here = place_of(module.name)
        if here is None or not within(module.name, "app"):
            continue
        for imp in module.imports:
            there = place_of(imp.target) if _first_party(imp) else None
            if there is None or there.kind == "provider" or there.unit == here.unit:
                continue  # unknown, providers (one-registry) or its own package
            why = None
            if here.kind == "stage" and there.kind == "stage" and there.index < here.index:
                why = (
                    f"stage {here.unit} imports the earlier stage {there.unit} (the pipeline "
                    "flows webhooks → sync → meetings → accounts → nudges → delivery; move "
                    "what both need down into a leaf, or hand work on through a row)"
                )
            elif here.kind in ("stage", "leaf") and there.kind == "entry":
                why = f"{here.kind} {here.unit} imports the entry module {there.unit}"
            elif here.kind == "leaf" and there.kind == "stage":
                why = f"leaf {here.unit} imports the stage {there.unit}"
            if why:
                yield _at(module, imp.line, "one-way", f"{module.name} imports {imp.target}: {why}")


def check_registry(modules: dict[str, Module]) -> Iterator[Finding]:
    for module in modules.values():
        if not within(module.name, "app") or within(module.name, REGISTRY):
            continue
        for imp in module.imports:
            provider = next((p for p in PROVIDER_PACKAGES if within(imp.target, p)), None)
            if provider:
                yield _at(
                    module,
                    imp.line,
                    "one-registry",
                    f"{module.name} imports {imp.target}: only {REGISTRY} names a provider "
                    f"package ({provider}); reach the provider through the registry",
                )


def _is_session_type(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return annotation.value.rsplit(".", 1)[-1] in SESSION_TYPES
    if isinstance(annotation, ast.Name):
        return annotation.id in SESSION_TYPES
    if isinstance(annotation, ast.Attribute):
        return annotation.attr in SESSION_TYPES
    return False


def _session_names(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """The names in ``fn`` that hold a database session."""
    a = fn.args
    names = set()
    for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
        if _is_session_type(arg.annotation) or (
            arg.arg in SESSION_NAMES and arg.annotation is None
        ):
            names.add(arg.arg)
    for node in ast.walk(fn):
        if isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                var = item.optional_vars
                if isinstance(var, ast.Name) and var.id in SESSION_NAMES:
                    names.add(var.id)
    return names


def check_sql(modules: dict[str, Module]) -> Iterator[Finding]:
    rule = "sql-in-repositories"
    for module in modules.values():
        if not within(module.name, "app") or sql_allowed(module):
            continue
        sa_aliases: set[str] = set()
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ImportFrom) and top(node.module or "") == "sqlalchemy":
                for alias in node.names:
                    if alias.name in SQL_BUILDERS:
                        yield _at(
                            module,
                            node.lineno,
                            rule,
                            f"{module.name} imports {node.module}.{alias.name}: build "
                            "statements in a repository.py (or app/db/)",
                        )
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if top(alias.name) == "sqlalchemy":
                        sa_aliases.add(alias.asname or "sqlalchemy")
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                root = node.func.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if (
                    isinstance(root, ast.Name)
                    and root.id in sa_aliases
                    and node.func.attr in SQL_BUILDERS
                ):
                    yield _at(
                        module,
                        node.lineno,
                        rule,
                        f"{module.name} calls {ast.unparse(node.func)}(): build statements "
                        "in a repository.py (or app/db/)",
                    )
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                names = _session_names(node)
                for call in ast.walk(node):
                    if (
                        isinstance(call, ast.Call)
                        and isinstance(call.func, ast.Attribute)
                        and isinstance(call.func.value, ast.Name)
                        and call.func.value.id in names
                        and call.func.attr in SESSION_SQL
                    ):
                        yield _at(
                            module,
                            call.lineno,
                            rule,
                            f"{module.name} calls {ast.unparse(call.func)}(): database "
                            "access belongs in a repository.py (or app/db/)",
                        )


def check_policies(modules: dict[str, Module]) -> Iterator[Finding]:
    for module in modules.values():
        if not within(module.name, "policies"):
            continue
        for imp in module.imports:
            name = top(imp.target)
            if any(within(imp.target, p) for p in POLICY_MAY_IMPORT):
                continue
            if name in FIRST_PARTY:
                why = "policies never import app, tests or a provider package"
            elif name in sys.stdlib_module_names:
                if name not in POLICY_IO_STDLIB:
                    continue
                why = "an I/O module of the standard library"
            elif name in POLICY_THIRD_PARTY:
                continue
            else:
                why = "not one of the pure third-party libraries of POLICY_THIRD_PARTY"
            yield _at(
                module,
                imp.line,
                "pure-policies",
                f"{module.name} imports {imp.target}: {why} (policies are pure rules)",
            )
        for node in ast.walk(module.tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value
            owner_name = owner.attr if isinstance(owner, ast.Attribute) else None
            if isinstance(owner, ast.Name):
                owner_name = owner.id
            if owner_name in CLOCK_READS and node.func.attr in CLOCK_READS[owner_name]:
                yield _at(
                    module,
                    node.lineno,
                    "policies-clock",
                    f"{module.name} calls {ast.unparse(node.func)}(): take `now` as a parameter",
                )


def check_connectors(modules: dict[str, Module]) -> Iterator[Finding]:
    for module in modules.values():
        if not within(module.name, "connectors"):
            continue
        for imp in module.imports:
            if top(imp.target) == "app":
                yield _at(
                    module,
                    imp.line,
                    "connectors-no-app",
                    f"{module.name} imports {imp.target}: connectors never import app "
                    "(translate errors into connectors.base's vocabulary instead)",
                )
            elif module.name == "connectors.base" and top(imp.target) not in (
                sys.stdlib_module_names
            ):
                yield _at(
                    module,
                    imp.line,
                    "neutral-base",
                    f"connectors.base imports {imp.target}: the provider-neutral types that "
                    "policies read import only the standard library",
                )


def check_known_layers(modules: dict[str, Module]) -> Iterator[Finding]:
    for module in modules.values():
        if within(module.name, "policies") or place_of(module.name) is not None:
            continue
        yield _at(
            module,
            1,
            "known-layer",
            f"{module.name} is in no row of the layer table (STAGES, LEAVES, ENTRIES, "
            "PROVIDER_PACKAGES): add it where it belongs",
        )


def check_circles(modules: dict[str, Module]) -> Iterator[Finding]:
    """Circles between packages (units of the layer table), then inside each package."""
    # (importer, imported) → where: the first import statement that makes the edge
    unit_edges: dict[tuple[str, str], tuple[Module, Import]] = {}
    module_edges: dict[tuple[str, str], tuple[Module, Import]] = {}
    for module in sorted(modules.values(), key=lambda m: m.name):
        for imp in module.imports:
            if imp.target not in modules or imp.target == module.name:
                continue
            a, b = unit_of(module.name), unit_of(imp.target)
            edges = module_edges if a == b else unit_edges
            key = (module.name, imp.target) if a == b else (a, b)
            edges.setdefault(key, (module, imp))
    for edges in (unit_edges, module_edges):
        for cycle in _cycles(edges.keys()):
            steps = [edges[(cycle[i], cycle[i + 1])] for i in range(len(cycle) - 1)]
            where = "; ".join(
                f"{m.path.as_posix()}:{imp.line} {m.name} imports {imp.target}"
                + (" (inside a function)" if imp.local else "")
                for m, imp in steps
            )
            first, imp = steps[0]
            yield _at(first, imp.line, "circle", f"import circle {' → '.join(cycle)}: {where}")


def _cycles(edges: Iterable[tuple[str, str]]) -> Iterator[list[str]]:
    """The shortest circle through each node that is on one; each circle once, starting
    from its smallest node."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    seen: set[tuple[str, ...]] = set()
    for node in sorted(graph):
        body = _shortest_circle(graph, node)
        if body is None:
            continue
        i = body.index(min(body))
        circle = (*body[i:], *body[:i])
        if circle not in seen:
            seen.add(circle)
            yield [*circle, circle[0]]


def _shortest_circle(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """The nodes of a shortest way from ``start`` back to itself (breadth first)."""
    back: dict[str, str] = {}
    queue = deque([start])
    while queue:
        cur = queue.popleft()
        for nxt in sorted(graph.get(cur, ())):
            if nxt == start:
                path = [cur]
                while path[-1] != start:
                    path.append(back[path[-1]])
                return path[::-1]
            if nxt not in back:
                back[nxt] = cur
                queue.append(nxt)
    return None


# --- the real tree -----------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def findings() -> list[Finding]:
    return check(ROOT)


@pytest.mark.parametrize("rule", list(RULES))
def test_the_house_keeps_its_rule(rule: str, findings: list[Finding]) -> None:
    broken = [str(f) for f in findings if f.rule == rule]
    assert not broken, f"{rule}: {RULES[rule]}\n" + "\n".join(broken)


def test_the_checker_reads_the_whole_tree() -> None:
    modules = load_tree(ROOT)
    for name in ("app.meetings.service", "policies.state", "connectors.base", "app.main"):
        assert name in modules
    assert len(modules) > 50
    assert "policies.state" in {i.target for i in modules["app.meetings.service"].imports}


# --- the checker, on synthetic trees -----------------------------------------------------


def house(tmp_path: Path, files: dict[str, str]) -> list[Finding]:
    """Write ``files`` (path → source) as a tree, packages made, and check it."""
    tmp_path.mkdir(exist_ok=True)
    for rel, source in files.items():
        path = tmp_path / rel
        for parent in reversed(path.relative_to(tmp_path).parents):
            if parent != Path("."):
                (tmp_path / parent).mkdir(exist_ok=True)
                (tmp_path / parent / "__init__.py").touch()
        path.write_text(source, encoding="utf-8")
    return check(tmp_path)


def rules_at(found: list[Finding]) -> set[tuple[str, int, str]]:
    return {(f.path, f.line, f.rule) for f in found}


CLEAN = {
    "app/webhooks/service.py": "from app.sync import service\nfrom app.db import leases\n",
    "app/sync/service.py": "from app.meetings import service\nfrom connectors.base import X\n",
    "app/meetings/service.py": (
        "from sqlalchemy.orm import Session\n"
        "from app.meetings import repository as repo\n"
        "from app.nudges import service\n"
        "from policies.state import decide\n"
        "def evaluate(session: Session) -> None:\n"
        "    repo.load(session)\n"
        "    seen = set()\n"
        "    seen.add(1)\n"
        "def tally(s: set[int]) -> None:\n"
        "    s.add(1)\n"
    ),
    "app/meetings/repository.py": (
        "from sqlalchemy import select\ndef load(session):\n    return session.execute(select(1))\n"
    ),
    "app/nudges/service.py": "from app.delivery import outbox\nfrom app.errors import E\n",
    "app/delivery/outbox.py": "import httpx\nfrom app.runtime import Runtime\n",
    "app/db/leases.py": "from sqlalchemy import update, text\nfrom app.db import models\n",
    "app/db/models.py": "import sqlalchemy as sa\nQ = sa.select(1)\n",
    "app/errors.py": "",
    "app/runtime.py": "from app.config import Settings\nfrom connectors.base import X\n",
    "app/config.py": "from app.errors import E\n",
    "app/providers.py": "from connectors.google.connector import G\nfrom connectors import sandbox\n",
    "app/main.py": (
        "from app.providers import registry\nfrom app.scheduler import jobs\n"
        "def serve():\n    import uvicorn\n"
    ),
    "app/scheduler/jobs.py": "from app.meetings import service\nfrom app.webhooks import service\n",
    "connectors/base.py": "from dataclasses import dataclass\n",
    "connectors/google/connector.py": "import httpx\nfrom connectors.base import X\n",
    "connectors/sandbox/__init__.py": "from connectors.base import X\n",
    "policies/state.py": (
        "from datetime import datetime\nimport yaml\nfrom connectors.base import Attendee\n"
        "from policies import model\n"
        "def decide(now: datetime) -> datetime:\n    return now.replace(microsecond=0)\n"
    ),
    "policies/model.py": "import re\n",
}


def test_a_well_kept_house_has_no_finding(tmp_path: Path) -> None:
    assert house(tmp_path, CLEAN) == []


def test_a_circle_closed_inside_a_function_is_reported(tmp_path: Path) -> None:
    found = house(
        tmp_path,
        {
            **CLEAN,
            "app/nudges/service.py": (
                "from app.errors import E\n\ndef plan():\n    from app.meetings import service\n"
            ),
        },
    )
    circles = [f for f in found if f.rule == "circle"]
    assert len(circles) == 1
    assert str(circles[0]).startswith(
        "app/meetings/service.py:3: circle: import circle app.meetings → app.nudges → app.meetings"
    )
    assert "app/nudges/service.py:4 app.nudges.service imports app.meetings.service" in str(
        circles[0]
    )
    assert "(inside a function)" in str(circles[0])
    # The same import is also a local import and a backwards one.
    assert {
        ("app/nudges/service.py", 4, "local-import"),
        ("app/nudges/service.py", 4, "one-way"),
    } <= rules_at(found)


def test_a_circle_through_several_packages_is_reported(tmp_path: Path) -> None:
    found = house(tmp_path, {**CLEAN, "app/delivery/outbox.py": "from app.sync import service\n"})
    (circle,) = (f for f in found if f.rule == "circle")
    assert "app.delivery → app.sync → app.meetings → app.nudges → app.delivery" in circle.message


def test_a_circle_inside_one_package_is_reported(tmp_path: Path) -> None:
    found = house(tmp_path, {**CLEAN, "app/db/models.py": "from app.db import leases\n"})
    (circle,) = (f for f in found if f.rule == "circle")
    assert circle.path == "app/db/leases.py" and circle.line == 2
    assert "app.db.leases → app.db.models → app.db.leases" in circle.message


def test_a_function_local_import_is_reported(tmp_path: Path) -> None:
    source = (
        "def a():\n    from app.db import models\n"
        "async def b():\n    import json\n"
        "def c():\n    import uvicorn\n"
        "class D:\n    def e(self):\n        from ..errors import E\n"
    )
    found = house(tmp_path, {**CLEAN, "app/webhooks/endpoints.py": source})
    assert sorted((f.line, f.rule) for f in found) == [
        (2, "local-import"),
        (4, "local-import"),
        (9, "local-import"),
    ]
    assert "app.webhooks.endpoints imports app.errors inside a function" in str(found[-1])


def test_a_backwards_import_is_reported(tmp_path: Path) -> None:
    found = house(
        tmp_path,
        {**CLEAN, "app/delivery/outbox.py": "import httpx\nfrom app.nudges.service import x\n"},
    )
    (back,) = (f for f in found if f.rule == "one-way")
    assert {f.rule for f in found} == {"one-way", "circle"}  # nudges imports delivery too
    assert str(back) == (
        "app/delivery/outbox.py:2: one-way: app.delivery.outbox imports app.nudges.service: "
        "stage app.delivery imports the earlier stage app.nudges (the pipeline flows webhooks "
        "→ sync → meetings → accounts → nudges → delivery; move what both need down into a "
        "leaf, or hand work on through a row)"
    )


def test_a_leaf_importing_a_stage_or_a_stage_importing_an_entry_is_reported(
    tmp_path: Path,
) -> None:
    found = house(
        tmp_path,
        {
            **CLEAN,
            "app/runtime.py": "from app.config import Settings\nfrom app.sync.service import s\n",
            "app/accounts/schemas.py": "from app.reps.schemas import check_email\n",
            "app/ops/metrics.py": "",
            "app/errors.py": "from app.ops import metrics\n",
        },
    )
    assert sorted(str(f) for f in found if f.rule == "one-way") == [
        "app/accounts/schemas.py:1: one-way: app.accounts.schemas imports app.reps.schemas: "
        "stage app.accounts imports the entry module app.reps",
        "app/errors.py:1: one-way: app.errors imports app.ops.metrics: "
        "leaf app.errors imports the entry module app.ops",
        "app/runtime.py:2: one-way: app.runtime imports app.sync.service: "
        "leaf app.runtime imports the stage app.sync",
    ]


def test_sql_in_a_service_is_reported(tmp_path: Path) -> None:
    source = (
        "import sqlalchemy as sa\n"
        "from sqlalchemy import func, select\n"
        "from sqlalchemy.dialects.postgresql import insert\n"
        "from sqlalchemy.orm import Session\n"
        "def a(session):\n    return session.execute(select(1))\n"
        "def b(db: Session, s: set[int]):\n    db.add(1)\n    s.add(1)\n"
        "def c(rt):\n    with rt.db.sessions() as s:\n        return s.get(1, 2)\n"
        "def d():\n    return sa.update(1)\n"
        "def e(session):\n    session.delete(1); session.commit()\n"
    )
    found = house(tmp_path, {**CLEAN, "app/meetings/service.py": source})
    assert sorted(f.line for f in found) == [2, 3, 6, 8, 12, 14, 16, 16]
    assert {f.rule for f in found} == {"sql-in-repositories"}
    assert str(found[0]) == (
        "app/meetings/service.py:2: sql-in-repositories: app.meetings.service imports "
        "sqlalchemy.select: build statements in a repository.py (or app/db/)"
    )
    assert any("calls session.execute()" in f.message for f in found)
    # The same source is at home in a repository or in app/db/.
    for home in ("app/meetings/repository.py", "app/db/queries.py"):
        assert house(tmp_path / home.replace("/", "_"), {**CLEAN, home: source}) == []


def test_a_provider_import_outside_the_registry_is_reported(tmp_path: Path) -> None:
    found = house(
        tmp_path,
        {
            **CLEAN,
            "app/webhooks/endpoints.py": "from connectors.google.notifications import parse\n",
            "app/demo.py": "from connectors import sandbox\nimport connectors.microsoft.client\n",
        },
    )
    assert sorted((f.path, f.line, f.rule) for f in found) == [
        ("app/demo.py", 1, "one-registry"),
        ("app/demo.py", 2, "one-registry"),
        ("app/webhooks/endpoints.py", 1, "one-registry"),
    ]
    assert "only app.providers names a provider package (connectors.google)" in found[-1].message


def test_impure_policies_are_reported(tmp_path: Path) -> None:
    source = (
        "import re, yaml, socket, httpx\n"
        "from app.errors import PolicyError\n"
        "from connectors.base import Attendee\n"
        "from connectors.google import connector\n"
        "from datetime import date, datetime\n"
        "import time\n"
        "def f():\n    return datetime.now(), date.today(), time.monotonic()\n"
    )
    found = house(tmp_path, {**CLEAN, "policies/loader.py": source})
    assert sorted((f.line, f.rule) for f in found) == [
        (1, "pure-policies"),  # socket
        (1, "pure-policies"),  # httpx
        (2, "pure-policies"),
        (4, "pure-policies"),
        (8, "policies-clock"),
        (8, "policies-clock"),
        (8, "policies-clock"),
    ]


def test_connectors_importing_app_are_reported(tmp_path: Path) -> None:
    found = house(
        tmp_path,
        {
            **CLEAN,
            "connectors/google/connector.py": "from app.errors import ProviderFailure\n",
            "connectors/base.py": "import httpx\n",
        },
    )
    assert sorted((f.path, f.line, f.rule) for f in found) == [
        ("connectors/base.py", 1, "neutral-base"),
        ("connectors/google/connector.py", 1, "connectors-no-app"),
    ]


def test_a_module_outside_the_layer_table_is_reported(tmp_path: Path) -> None:
    found = house(tmp_path, {**CLEAN, "app/pages/views.py": "", "connectors/hubspot.py": ""})
    assert sorted((f.path, f.rule) for f in found) == [
        ("app/pages/__init__.py", "known-layer"),
        ("app/pages/views.py", "known-layer"),
        ("connectors/hubspot.py", "known-layer"),
    ]
