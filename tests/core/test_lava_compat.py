"""dsatgo_deploy.lava_compat: lava-nc 0.10 / lava-dl 0.6 import on Python 3.11.

Everything that imports lava runs in a fresh interpreter (subprocess), so this
test process keeps its sys.modules, sys.meta_path and multiprocessing start
method untouched."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path

import pytest

from dsatgo_deploy import lava_compat
from dsatgo_deploy.lava_compat import (
    OBJECT_DETECTION,
    VAR_MODEL,
    rewrite_var_model_source,
)

BUGGY = textwrap.dedent(
    """\
    from __future__ import annotations
    from dataclasses import dataclass


    @dataclass
    class ByteEncoder:
        base: int = 0


    @dataclass
    class CoreEncoder:
        x: ByteEncoder = ByteEncoder()
        y:ByteEncoder=ByteEncoder()  # a comment
        q: int = 0


    z: ByteEncoder = ByteEncoder()
    """
)


def _installed_var_model_path() -> Path | None:
    spec = importlib.util.find_spec("lava")  # imports nothing but the package spec
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "magma" / "compiler" / "var_model.py"
    return path if path.exists() else None


VAR_MODEL_PATH = _installed_var_model_path()
needs_lava = pytest.mark.skipif(VAR_MODEL_PATH is None, reason="lava-nc not installed")


def run_fresh(code: str, extra_path: str | None = None, timeout: float = 120) -> dict:
    """Run ``code`` in a fresh interpreter; it must print one JSON line last."""
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, env=env,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------
# the source rewrite
# --------------------------------------------------------------------------
def _fixed_source() -> str:
    return BUGGY.replace("= ByteEncoder()", "= dataclasses.field(default_factory=ByteEncoder)").replace(
        "=ByteEncoder()", "= dataclasses.field(default_factory=ByteEncoder)"
    )


def _exec_as_module(source: str, filename: str, monkeypatch) -> types.ModuleType:
    # dataclasses resolves string annotations through sys.modules[cls.__module__]
    module = types.ModuleType("fake_var_model_for_test")
    module.dataclasses = dataclasses
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


def test_rewrite_replaces_exactly_the_field_defaults(monkeypatch):
    out = rewrite_var_model_source(BUGGY)
    lines, new_lines = BUGGY.splitlines(), out.splitlines()
    assert len(new_lines) == len(lines)  # line numbers unchanged
    changed = [(a, b) for a, b in zip(lines, new_lines) if a != b]
    assert changed == [
        ("    x: ByteEncoder = ByteEncoder()",
         "    x: ByteEncoder = dataclasses.field(default_factory=ByteEncoder)"),
        ("    y:ByteEncoder=ByteEncoder()  # a comment",
         "    y: ByteEncoder = dataclasses.field(default_factory=ByteEncoder)  # a comment"),
    ]
    # Executed with `dataclasses` in the namespace (as the loader does), the
    # dataclass is accepted and each instance gets its own encoder.
    if sys.version_info >= (3, 11):
        with pytest.raises(ValueError, match="mutable default"):
            _exec_as_module(BUGGY, "<buggy>", monkeypatch)
    module = _exec_as_module(out, "<patched>", monkeypatch)
    a, b = module.CoreEncoder(), module.CoreEncoder()
    assert a.x is not b.x and a.y is not b.y and a.x == b.x


def test_rewrite_is_a_no_op_without_the_pattern():
    fixed = _fixed_source()
    assert rewrite_var_model_source(fixed) is fixed
    assert rewrite_var_model_source("") == ""
    for other in (
        "x = ByteEncoder()\n",  # not an annotated field
        "z: ByteEncoder = ByteEncoder()\n",  # module level, not a class body
        "    p: ByteEncoder = ByteEncoder(3)\n",  # arguments: not the lava pattern
        "    p: Other = ByteEncoder()\n",
    ):
        assert rewrite_var_model_source(other) is other


# --------------------------------------------------------------------------
# the finder, in this process, on files in tmp_path (no lava involved)
# --------------------------------------------------------------------------
@pytest.mark.skipif(sys.version_info < (3, 11), reason="the rewrite is only applied on 3.11+")
def test_finder_patches_a_buggy_file_and_skips_a_fixed_one(tmp_path, monkeypatch):
    finder = lava_compat._LavaCompatFinder()
    buggy = tmp_path / "buggy"
    buggy.mkdir()
    (buggy / "var_model.py").write_text(BUGGY)
    spec = finder.find_spec(VAR_MODEL, [str(buggy)])
    assert spec is not None and spec.origin == str(buggy / "var_model.py")
    module = importlib.util.module_from_spec(spec)
    # registered only for this test (dataclasses looks the module up there)
    monkeypatch.setitem(sys.modules, VAR_MODEL, module)
    spec.loader.exec_module(module)
    assert module.__file__ == str(buggy / "var_model.py")
    assert module.CoreEncoder().x is not module.CoreEncoder().x
    code = spec.loader.get_code(VAR_MODEL)
    assert code.co_filename == str(buggy / "var_model.py")  # tracebacks: the real file

    fixed = tmp_path / "fixed"
    fixed.mkdir()
    (fixed / "var_model.py").write_text(_fixed_source())
    assert finder.find_spec(VAR_MODEL, [str(fixed)]) is None  # normal import


def test_finder_ignores_other_modules():
    finder = lava_compat._LavaCompatFinder()
    for name in ("json", "lava", "lava.magma.compiler", "lava.lib.dl.slayer"):
        assert finder.find_spec(name, None) is None
    assert finder._probed is False  # torchvision not probed for unrelated imports


def test_object_detection_is_real_when_torchvision_works():
    finder = lava_compat._LavaCompatFinder()
    finder._probed, finder._torchvision_error = True, None  # as if torchvision imported
    assert finder.find_spec(OBJECT_DETECTION, None) is None


def test_object_detection_stub_when_torchvision_fails():
    finder = lava_compat._LavaCompatFinder()
    finder._probed, finder._torchvision_error = True, "RuntimeError: operator torchvision::nms does not exist"
    spec = finder.find_spec(OBJECT_DETECTION, None)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(ImportError, match="needs a working torchvision") as info:
        module.YOLOBase
    assert "torchvision::nms" in str(info.value)
    assert getattr(module, "__file__", None) is None  # private names: AttributeError
    assert not hasattr(module, "_anything")


def test_install_is_idempotent_and_thread_safe(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path if not getattr(f, "_dsatgo_lava_compat", False)])
    threads = [threading.Thread(target=lava_compat.install) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lava_compat.install()
    ours = [f for f in sys.meta_path if getattr(f, "_dsatgo_lava_compat", False)]
    assert len(ours) == 1 and sys.meta_path[0] is ours[0]


# --------------------------------------------------------------------------
# real lava, fresh interpreters
# --------------------------------------------------------------------------
@needs_lava
@pytest.mark.skipif(sys.version_info < (3, 11), reason="lava imports on < 3.11")
def test_installed_lava_needs_the_fix():
    """Documents why the module exists; fails once lava ships a fix (then drop it)."""
    if "= ByteEncoder()" not in VAR_MODEL_PATH.read_text():
        pytest.skip("installed lava already fixed")
    out = run_fresh(
        """
        import json
        try:
            import lava.magma.compiler.var_model
            err = None
        except ValueError as exc:
            err = str(exc)
        print(json.dumps({"err": err}))
        """
    )
    assert out["err"] and "mutable default" in out["err"]


@needs_lava
def test_var_model_imports_after_install():
    out = run_fresh(
        """
        import inspect, json, sys
        from dsatgo_deploy import lava_compat
        lava_compat.install(); lava_compat.install()
        clean = not any(m == "lava" or m.startswith(("lava.", "torchvision")) for m in sys.modules)
        import lava.magma.compiler.var_model as vm
        a, b = vm.CoreEncoder(), vm.CoreEncoder()
        c, d = vm.AxonEncoder(), vm.AxonEncoder()
        files = {f.__code__.co_filename for f in vars(vm).values() if inspect.isfunction(f)}
        files |= {m.__code__.co_filename for c_ in vars(vm).values() if inspect.isclass(c_)
                  and c_.__module__ == vm.__name__ for m in vars(c_).values() if inspect.isfunction(m)}
        files.discard("<string>")  # dataclass-generated methods
        print(json.dumps({
            "clean_before_import": clean,
            "distinct": a.x is not b.x and a.p is not b.p and c.hi is not d.hi,
            "equal": a == b,
            "file": vm.__file__,
            "code_files": sorted(files),
            "finders": sum(bool(getattr(f, "_dsatgo_lava_compat", False)) for f in sys.meta_path),
        }))
        """
    )
    assert out["clean_before_import"]  # install() itself imports nothing heavy
    assert out["distinct"] and out["equal"]
    assert out["file"] == str(VAR_MODEL_PATH)
    assert str(VAR_MODEL_PATH) in out["code_files"]  # tracebacks name the real file
    assert out["finders"] == 1


@needs_lava
def test_netx_imports_and_obd_stub_explains(tmp_path):
    # A torchvision that fails the way PyPI's does beside a CPU torch.
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n"
    )
    out = run_fresh(
        """
        import json
        from dsatgo_deploy import lava_compat
        lava_compat.install()
        import lava.lib.dl.netx as netx
        import lava.lib.dl.slayer as slayer
        res = {"netx": hasattr(netx, "hdf5"), "slayer_neuron": hasattr(slayer, "neuron")}
        try:
            slayer.obd.YOLOBase
            res["obd"] = None
        except ImportError as exc:
            res["obd"] = str(exc)
        try:
            import lava.lib.dl.slayer.object_detection.boundingbox
            res["sub"] = None
        except ImportError as exc:
            res["sub"] = str(exc)
        print(json.dumps(res))
        """,
        extra_path=str(tmp_path),
    )
    assert out["netx"] and out["slayer_neuron"]
    assert out["obd"] and "slayer.object_detection needs a working torchvision" in out["obd"]
    assert "torchvision::nms" in out["obd"]
    assert out["sub"] and "needs a working torchvision" in out["sub"]


# --------------------------------------------------------------------------
# lava's import-time multiprocessing.set_start_method('fork')
# --------------------------------------------------------------------------
def test_start_method_rewrite_keeps_lines_and_is_a_no_op_without_the_call():
    source = "import multiprocessing as mp\n    mp.set_start_method('fork')\nx = 1\n"
    rewritten = lava_compat.rewrite_start_method_source(source)
    assert rewritten.splitlines() == ["import multiprocessing as mp", "    _dsatgo_use_fork(mp)", "x = 1"]
    untouched = "import multiprocessing as mp\n"
    assert lava_compat.rewrite_start_method_source(untouched) is untouched


def test_use_fork_start_method_accepts_fork_and_refuses_another_choice():
    class FakeMultiprocessing:
        def __init__(self, current):
            self.current = current

        def get_start_method(self, allow_none=False):
            return self.current

        def set_start_method(self, method, force=False):
            assert force
            self.current = method

    for current in (None, "fork"):
        mp = FakeMultiprocessing(current)
        lava_compat.use_fork_start_method(mp)
        assert mp.current == "fork"
    with pytest.raises(RuntimeError, match="needs the 'fork'.*'spawn'"):
        lava_compat.use_fork_start_method(FakeMultiprocessing("spawn"))


@needs_lava
def test_lava_imports_after_the_start_method_was_fixed():
    # torch training fixes the start method through get_start_method(); lava's import then raised
    # "context has already been set" before the rewrite.
    out = run_fresh(
        """
        import json, multiprocessing as mp
        mp.get_start_method()
        from dsatgo_deploy import lava_compat
        lava_compat.install()
        import lava.proc.dense.process
        print(json.dumps({"method": mp.get_start_method()}))
        """
    )
    assert out["method"] == "fork"
