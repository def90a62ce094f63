"""Sizes (issue #12): no module of the package over 450 lines, no function over 80 lines. Every module of
the four source folders is parsed (ast), methods and nested functions included; a failure names the file,
the function and its length. Split along the lines of the job, don't raise the limits."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.core.test_layering import modules

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
#: Declarative tables allowed to be longer: (path relative to the repository, function name), each with
#: the reason. Empty: nothing needs it today.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def oversized(paths: list[Path], root: Path) -> list[str]:
    """One line per module over MAX_MODULE_LINES and per function over MAX_FUNCTION_LINES."""
    problems = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        relative = path.relative_to(root).as_posix()
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            problems.append(f"{relative}: {lines} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text, relative)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - first + 1
            if length > MAX_FUNCTION_LINES and (relative, node.name) not in EXCEPTIONS:
                problems.append(f"{relative}:{node.lineno}: {node.name}() is {length} lines "
                                f"(at most {MAX_FUNCTION_LINES})")
    return problems


def test_no_module_or_function_is_too_long():
    root = Path(__file__).resolve().parents[2]
    assert oversized(sorted(modules().values()), root) == []


def test_the_walk_sees_a_long_module_and_a_long_method(tmp_path):
    """The checker itself: a 451-line module and a method of 81 lines (decorator included) are reported,
    an 80-line function is not."""
    fine = ["def fine():", *["    x = 1"] * 78, "    return x"]  # 80 lines
    long = ["class A:", "    @staticmethod", "    def long():", *["        x = 1"] * 78, "        return x"]
    lines = fine + long  # the method: its decorator, def, 78 + 1 lines
    lines += ["x = 1"] * (451 - len(lines))
    (tmp_path / "long.py").write_text("\n".join(lines) + "\n")
    assert oversized([tmp_path / "long.py"], tmp_path) == [
        "long.py: 451 lines (at most 450)", f"long.py:{len(fine) + 3}: long() is 81 lines (at most 80)"]
