"""Architecture rules, checked on the source text (``ast``; nothing of telewatch is imported).

(a) SQL on the store lives in ``store/`` repositories: no ``.execute(``, ``.executemany(`` or ``.sql(``
    call elsewhere (``sources/`` runs SQL on external servers and is exempt).
(b) No module imports a layer above it: ``core`` imports nothing of telewatch; the domain packages
    (store, detectors, postrules, incidents, forecast, alerts, sources) import no use-case or shell
    (services, api, web, cli, scheduler); ``services`` import no shell (api, web, cli, scheduler);
    ``web`` does not import ``api``.
(c) No import cycle among telewatch modules: none through module-level imports, and none closed by an
    import inside a function either (such an import only hides the cycle until the function runs).

Each failure names the file and line that breaks the rule. The allowlists below name the files that
are being converted right now; a stale entry fails too, so that each list only shrinks.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"

#: files (globs relative to src/telewatch) allowed to run SQL on the store themselves: none — every
#: family of tables has its repository in store/.
SQL_ALLOWLIST: tuple[str, ...] = ()
#: directories where SQL is at home: the store's repositories, and the sources' queries of external servers
SQL_HOMES = ("store/", "sources/")
SQL_METHODS = frozenset({"execute", "executemany", "sql"})

#: (importing file relative to src/telewatch, imported module) pairs that break a layer rule today
LAYER_ALLOWLIST: frozenset[tuple[str, str]] = frozenset()

#: function-level imports (importing module, imported module) allowed to close a cycle. The lazy imports of
#: heavy optional dependencies — torch (detectors/autoencoder.py, used by aer.py), prophet
#: (forecast/prophet.py, detectors/forecast_interval.py), matplotlib (alerts/chart.py), dask
#: (scheduler/distributed.py), plotly (api/app.py) — import no telewatch module, so they close no cycle
#: and need no entry; nor do the CLI's lazy imports of services (nothing imports cli/). Keep it empty.
LAZY_CYCLE_ALLOWLIST: frozenset[tuple[str, str]] = frozenset()

_DOMAIN = frozenset({"store", "detectors", "postrules", "incidents", "forecast", "alerts", "sources"})
_USE_CASES_AND_SHELLS = frozenset({"services", "api", "web", "cli", "scheduler"})
_SHELLS = frozenset({"api", "web", "cli", "scheduler"})
#: what of store/ a router, page or command may import: the handle, not the repositories
_SHELL_STORE = frozenset({"telewatch.store", "telewatch.store.db"})


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. telewatch.services.catalog
    path: str  # its file, relative to src/telewatch
    line: int
    target: str  # the imported telewatch module (a submodule when ``from pkg import submodule``)
    where: str  # "module" (runs at import), "function" (runs when called), "type-checking" (never runs)


@dataclass(frozen=True)
class Call:
    path: str
    line: int
    text: str


class Tree:
    """The modules of a package below ``src`` and what they import and call."""

    def __init__(self, src: Path, package: str = "telewatch") -> None:
        self.base = src / package
        self.package = package
        self.files: dict[str, Path] = {}
        for file in sorted(self.base.rglob("*.py")):
            parts = list(file.relative_to(src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            self.files[".".join(parts)] = file
        self._imports: list[Import] | None = None
        self.trees = {
            name: ast.parse(file.read_text(encoding="utf-8"), str(file)) for name, file in self.files.items()
        }

    def rel(self, module: str) -> str:
        return self.files[module].relative_to(self.base).as_posix()

    def imports(self) -> list[Import]:
        """Every import of a telewatch module (read once)."""
        if self._imports is None:
            self._imports = [imp for module in self.trees for imp in self._module_imports(module)]
        return self._imports

    def _module_imports(self, module: str) -> Iterator[Import]:
        is_package = self.files[module].name == "__init__.py"
        here = module if is_package else module.rpartition(".")[0]
        yield from self._walk(module, here, self.trees[module].body, "module")

    def _walk(self, module: str, here: str, body: Iterable[ast.AST], where: str) -> Iterator[Import]:
        """The imports among statements (imports are statements: expressions are not entered)."""
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield from self._resolve(module, here, node, where)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from self._walk(module, here, node.body, "function")
            elif isinstance(node, ast.If) and _is_type_checking(node.test) and where == "module":
                yield from self._walk(module, here, node.body, "type-checking")
                yield from self._walk(module, here, node.orelse, where)
            else:
                for name in ("body", "orelse", "finalbody", "handlers", "cases"):
                    for child in getattr(node, name, None) or ():
                        inner = (
                            child.body if isinstance(child, ast.ExceptHandler | ast.match_case) else [child]
                        )
                        yield from self._walk(module, here, inner, where)

    def _resolve(
        self, module: str, here: str, node: ast.Import | ast.ImportFrom, where: str
    ) -> Iterator[Import]:
        rel = self.rel(module)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _inside(alias.name, self.package):
                    yield Import(module, rel, node.lineno, alias.name, where)
            return
        if node.level:
            base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        if _inside(source, self.package):
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                yield Import(module, rel, node.lineno, sub if sub in self.files else source, where)

    def sql_calls(self) -> Iterator[Call]:
        for module, tree in self.trees.items():
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in SQL_METHODS
                ):
                    yield Call(self.rel(module), node.lineno, ast.unparse(node.func)[:80] + "(")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _allowed(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


# -- the checks (functions of a Tree, so that the tests below can run them on a planted tree) ----------
def store_sql_outside_store(tree: Tree, allow: Iterable[str] = ()) -> list[str]:
    allow = tuple(allow)
    return [
        f"{c.path}:{c.line}: {c.text} runs SQL outside store/ — move it into a repository in store/"
        for c in sorted(tree.sql_calls(), key=lambda c: (c.path, c.line))
        if not c.path.startswith(SQL_HOMES) and not _allowed(c.path, allow)
    ]


def layer_breaks(tree: Tree, allow: Iterable[tuple[str, str]] = ()) -> list[str]:
    allowed = set(allow)
    out = []
    for imp in tree.imports():
        src, dst = _layer(imp.module), _layer(imp.target)
        if src == dst or (imp.path, imp.target) in allowed:
            continue
        rule = None
        if src == "core":
            rule = "core imports nothing of telewatch"
        elif src in _DOMAIN and dst in _USE_CASES_AND_SHELLS:
            rule = f"{src} is below the use-cases and shells ({', '.join(sorted(_USE_CASES_AND_SHELLS))})"
        elif src == "services" and dst in _SHELLS:
            rule = f"services are below the shells ({', '.join(sorted(_SHELLS))})"
        elif src == "web" and dst == "api":
            rule = "web does not import api (api mounts web)"
        elif src in {"api", "web", "cli"} and dst == "store" and imp.target not in _SHELL_STORE:
            rule = "routers, pages and commands reach the tables through services (they may hold a store.db.Store)"
        if rule is not None:
            out.append(f"{imp.path}:{imp.line}: imports {imp.target} ({imp.where}-level) — {rule}")
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    found.append(sorted(component))
    return found


def import_cycles(tree: Tree, *, wheres: frozenset[str], allow: Iterable[tuple[str, str]] = ()) -> list[str]:
    """The cycles among the imports of the given kinds, each with the imports that form it."""
    allowed = set(allow)
    edges: dict[tuple[str, str], list[Import]] = {}
    for imp in tree.imports():
        if imp.where in wheres and imp.target in tree.files and imp.target != imp.module:
            if imp.where == "function" and (imp.module, imp.target) in allowed:
                continue
            same = edges.setdefault((imp.module, imp.target), [])
            if not any(i.line == imp.line for i in same):  # `from m import a, b`: one import of m
                same.append(imp)
    graph: dict[str, set[str]] = {}
    for src, dst in edges:
        graph.setdefault(src, set()).add(dst)
    out = []
    for component in _cycles(graph):
        members = set(component)
        links = [
            f"    {imp.path}:{imp.line}: imports {imp.target} ({imp.where}-level)"
            for (src, dst), imps in sorted(edges.items())
            if src in members and dst in members
            for imp in imps
        ]
        out.append("import cycle among " + ", ".join(component) + ":\n" + "\n".join(links))
    return out


# -- the rules on telewatch ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tree() -> Tree:
    return Tree(SRC)


def test_the_tree_is_read(tree: Tree) -> None:
    # the checks below see nothing if the walk finds nothing: a few facts every version holds
    assert len(tree.files) > 100
    found = {(i.module, i.target, i.where) for i in tree.imports()}
    assert ("telewatch.services.catalog", "telewatch.store.repo", "module") in found
    assert any(c.path == "store/repo.py" and c.text.endswith(".execute(") for c in tree.sql_calls())


def test_no_store_sql_outside_store(tree: Tree) -> None:
    problems = store_sql_outside_store(tree, SQL_ALLOWLIST)
    assert not problems, "SQL on the store outside store/:\n" + "\n".join(problems)


def test_the_sql_allowlist_names_only_files_that_still_run_sql(tree: Tree) -> None:
    calls = [c.path for c in tree.sql_calls()]
    stale = [p for p in SQL_ALLOWLIST if not any(fnmatch.fnmatchcase(path, p) for path in calls)]
    assert not stale, f"these files run no SQL any more: remove them from SQL_ALLOWLIST: {stale}"


def test_no_module_imports_a_layer_above_it(tree: Tree) -> None:
    problems = layer_breaks(tree, LAYER_ALLOWLIST)
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def test_the_layer_allowlist_is_current(tree: Tree) -> None:
    present = {(i.path, i.target) for i in tree.imports()}
    stale = sorted(LAYER_ALLOWLIST - present)
    assert not stale, f"these imports are gone: remove them from LAYER_ALLOWLIST: {stale}"


def test_no_import_cycle_at_module_level(tree: Tree) -> None:
    problems = import_cycles(tree, wheres=frozenset({"module"}))
    assert not problems, "\n".join(problems)


def test_no_function_level_import_closes_a_cycle(tree: Tree) -> None:
    problems = import_cycles(tree, wheres=frozenset({"module", "function"}), allow=LAZY_CYCLE_ALLOWLIST)
    assert not problems, (
        "an import inside a function hides a cycle (move the shared piece down a layer):\n"
        + "\n".join(problems)
    )


# -- the checks catch what they should (a planted package) ---------------------------------------------
def _plant(root: Path, files: dict[str, str]) -> Tree:
    for name, text in files.items():
        path = root / "telewatch" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for directory in [root / "telewatch", *(root / "telewatch").rglob("*")]:
        if directory.is_dir() and not (directory / "__init__.py").exists():
            (directory / "__init__.py").write_text("", encoding="utf-8")
    return Tree(root)


def test_the_checks_find_planted_breaks(tmp_path: Path) -> None:
    tree = _plant(
        tmp_path,
        {
            "core/errors.py": "from telewatch.store import db\n",
            "store/db.py": "def f(con):\n    return con.execute('SELECT 1')\n",
            "store/repo.py": "from . import db\nfrom telewatch.services import use\n",
            "services/use.py": (
                "from typing import TYPE_CHECKING\nfrom telewatch.store import repo\n"
                "if TYPE_CHECKING:\n    from telewatch.cli import app\n"
                "def g(con):\n    from telewatch.api import router\n    return con.sql('SELECT 1')\n"
            ),
            "api/router.py": "import telewatch.services.use\n",
            "web/page.py": "from telewatch.api.router import x\n",
            "cli/app.py": "from telewatch.store.db import Store\nfrom telewatch.store import repo\n",
            "sources/pg.py": "def q(c):\n    return c.execute('SELECT 1')\n",
        },
    )
    assert store_sql_outside_store(tree) == [
        "services/use.py:7: con.sql( runs SQL outside store/ — move it into a repository in store/"
    ]
    assert store_sql_outside_store(tree, ["services/*.py"]) == []
    breaks = layer_breaks(tree)
    assert [b.split(" — ")[0] for b in breaks] == [
        "cli/app.py:2: imports telewatch.store.repo (module-level)",
        "core/errors.py:1: imports telewatch.store.db (module-level)",
        "services/use.py:4: imports telewatch.cli.app (type-checking-level)",
        "services/use.py:6: imports telewatch.api.router (function-level)",
        "store/repo.py:2: imports telewatch.services.use (module-level)",
        "web/page.py:1: imports telewatch.api.router (module-level)",
    ]
    assert layer_breaks(tree, [("web/page.py", "telewatch.api.router")]) != breaks
    [module_cycle] = import_cycles(tree, wheres=frozenset({"module"}))
    assert module_cycle.startswith("import cycle among telewatch.services.use, telewatch.store.repo:")
    assert "store/repo.py:2: imports telewatch.services.use" in module_cycle
    assert "services/use.py:2: imports telewatch.store.repo" in module_cycle
    both = import_cycles(tree, wheres=frozenset({"module", "function"}))
    assert any("services/use.py:6: imports telewatch.api.router (function-level)" in c for c in both)
    allowed = import_cycles(
        tree,
        wheres=frozenset({"module", "function"}),
        allow=[("telewatch.services.use", "telewatch.api.router")],
    )
    assert not any("telewatch.api.router" in c for c in allowed)
