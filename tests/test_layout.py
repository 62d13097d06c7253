"""The project layout users and tools rely on."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def test_top_level_folders_exist_and_guardrails_is_data_only() -> None:
    for folder in ("app", "prompts", "script_library", "guardrails", "eval", "tests"):
        assert (ROOT / folder).is_dir(), folder
    assert not list((ROOT / "guardrails").rglob("*.py")), "guardrails/ would shadow the guardrails library"


def test_console_script_and_extras() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["outreach"] == "app.cli:app"
    assert {"postgres", "mlflow", "dev"} <= project["optional-dependencies"].keys()


EDGES = ("app.api", "app.web", "app.cli", "app.http", "app.main", "app.worker", "app.services")


def _imports(path) -> set[str]:  # noqa: ANN001
    """Every `app...` module a file imports, at the top or inside a function."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name == "app" or name.startswith("app.")}


def _module(path) -> str:  # noqa: ANN001
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_dependencies_point_one_way_from_the_edges_to_the_services() -> None:
    """HTTP, pages, CLI and worker call services; no service imports an edge (or the composition root), and
    the API and the pages share `app.http` instead of importing each other."""
    wrong = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        module = _module(path)
        for name in _imports(path):
            if not _under(module, EDGES) and _under(name, EDGES):
                wrong.append(f"{module} imports the edge {name}")
            if _under(module, ("app.api",)) and _under(name, ("app.web",)):
                wrong.append(f"{module} imports the pages ({name})")
            if _under(module, ("app.web",)) and _under(name, ("app.api",)):
                wrong.append(f"{module} imports the API ({name})")
            if _under(module, ("app.http",)) and _under(name, ("app.api", "app.web")):
                wrong.append(f"{module} (shared HTTP) imports {name}")
    assert wrong == []


def test_the_walk_itself_sees_function_level_imports(tmp_path) -> None:  # noqa: ANN001
    sample = tmp_path / "x.py"
    sample.write_text("def f():\n    from app.api import cards\n    import app.web.pages\n")
    assert _imports(sample) == {"app.api", "app.api.cards", "app.web.pages"}


def test_only_the_clock_reads_the_wall_clock() -> None:
    import re

    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "app").rglob("*.py"))
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
                 if re.search(r"datetime\.(now|utcnow|today)\(|date\.today\(", line)]
    assert offenders == ["app/clock.py:17"]


def test_each_folder_owns_its_tables() -> None:
    """Tables live next to the service that owns them; `store/` keeps only the engine, base and migrations."""
    assert not (ROOT / "app" / "store" / "tables.py").exists()
    owners = sorted(p.parent.name for p in (ROOT / "app").glob("*/tables.py"))
    assert owners == ["audit", "cards", "changes", "data", "drafting", "feedback", "intents", "jobs", "library", "models", "review", "users"]
