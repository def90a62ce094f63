"""The direction of imports (docs/architecture.md): the core imports only the core; each stage (train,
export, hardware_sim) imports the core and itself, never another stage; the pipeline sits above the
stages; the CLI above everything. Every module of the package is parsed (ast), imports inside functions
included, so a sideways import anywhere fails here, naming the file and the line."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Source folder -> the package name it installs as (pyproject.toml's package-dir).
SOURCES = {"dsatgo_deploy": "dsatgo_deploy", "train": "dsatgo_deploy.train", "export": "dsatgo_deploy.export",
           "hardware_sim": "dsatgo_deploy.hardware_sim"}
STAGES = ("train", "export", "hardware_sim")
#: What each layer may import besides itself.
ALLOWED = {
    "core": {"core"},
    "train": {"core"},
    "export": {"core"},
    "hardware_sim": {"core"},
    "pipeline": {"core", *STAGES},
    "cli": {"core", *STAGES, "pipeline"},
}


def layer_of(module: str) -> str | None:
    """The layer of a dsatgo_deploy module; None for anything outside the package."""
    parts = module.split(".")
    if parts[0] != "dsatgo_deploy":
        return None
    if len(parts) == 1:
        return "core"
    if parts[1] in (*STAGES, "pipeline"):
        return parts[1]
    return "cli" if parts[1] == "cli" else "core"


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in SOURCES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in relative.parts if p != "__init__"]
            name = ".".join([package, *parts])
            if folder == "dsatgo_deploy" and parts and parts[0] in STAGES:
                continue  # not a source folder of its own here
            found[name] = path
    return found


def imported(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rsplit(".", 1)[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import x` / `from dsatgo_deploy import train` import submodules by name
            names += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return names


def sideways_imports() -> list[str]:
    problems = []
    for module, path in modules().items():
        own = layer_of(module)
        for line, target in imported(module, path):
            other = layer_of(target)  # the second part of the name decides, so a module or a name in it will do
            if other is None or other == own:
                continue
            if other not in ALLOWED[own]:
                problems.append(f"{path.relative_to(ROOT)}:{line}: {own} imports {target} ({other})")
    return problems


def test_every_module_is_found():
    found = modules()
    assert "dsatgo_deploy.hardware_sim.onnx_runner" in found and "dsatgo_deploy.pipeline.demo" in found
    assert "dsatgo_deploy.train.zoo" in found and "dsatgo_deploy.profiles" in found
    assert len(found) > 40


def test_no_sideways_imports():
    assert sideways_imports() == []


def test_the_walk_sees_a_sideways_import(tmp_path, monkeypatch):
    """The checker itself: a stage importing another stage inside a function is reported."""
    fake = tmp_path / "hardware_sim"
    fake.mkdir()
    (fake / "probe.py").write_text("def f():\n    from dsatgo_deploy.export.freeze import freeze\n"
                                   "    from ..train import models\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    monkeypatch.setitem(SOURCES, "hardware_sim", "dsatgo_deploy.hardware_sim")
    for folder in ("dsatgo_deploy", "train", "export"):
        (tmp_path / folder).mkdir()
    assert sideways_imports() == [
        "hardware_sim/probe.py:2: hardware_sim imports dsatgo_deploy.export.freeze.freeze (export)",
        "hardware_sim/probe.py:3: hardware_sim imports dsatgo_deploy.train.models (train)",
    ]
