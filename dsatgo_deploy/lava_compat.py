"""Make lava-nc 0.10.0 and lava-dl 0.6.0 importable on Python 3.11+ without editing them.

Call :func:`install` once, before anything imports ``lava``.  It puts a small
:class:`importlib.abc.MetaPathFinder` at the front of ``sys.meta_path`` that
repairs two import failures of the released wheels:

1. ``lava/magma/compiler/var_model.py`` declares dataclass fields such as
   ``x: ByteEncoder = ByteEncoder()``.  ``ByteEncoder`` is a plain (unhashable)
   dataclass, and Python 3.11 rejects unhashable defaults ("ValueError: mutable
   default ... use default_factory"), so ``import lava`` fails before anything
   runs.  The finder loads the real file, rewrites exactly those lines to
   ``x: ByteEncoder = dataclasses.field(default_factory=ByteEncoder)`` (the
   rewrite keeps every line where it was), compiles the result under the real
   file name, so tracebacks still point at lava's file, and runs it as that
   module.  This also gives every encoder its own ``ByteEncoder`` instead of one
   shared instance.  Where the pattern is absent (a fixed lava) or Python is
   older than 3.11, the normal import happens untouched.

2. ``lava/lib/dl/slayer/__init__.py`` does ``from . import object_detection as
   obd``, which imports ``torchvision``.  Beside a CPU-only torch, torchvision is
   often absent, or PyPI's build fails on import ("operator torchvision::nms
   does not exist"); slayer, and netx which imports slayer, then cannot be
   imported at all although neither needs torchvision.  Only when ``import
   torchvision`` fails (probed once, lazily, when ``object_detection`` is first
   imported) does the finder supply a stub module for it whose public attributes
   raise :class:`ImportError` naming the cause.  With a working torchvision the
   real module is imported.

3. ``lava/magma/runtime/message_infrastructure/multiprocessing.py`` calls
   ``multiprocessing.set_start_method('fork')`` at import time, which raises
   "context has already been set" once anything in the process has fixed the
   start method (torch training does, through ``get_start_method()``).  The
   finder rewrites that one call to :func:`use_fork_start_method`, which sets
   'fork' when nothing or 'fork' was chosen and otherwise raises a clear error
   (Lava's runtime needs fork).

Where lava imports cleanly the finder changes nothing.  Installing after lava
has been imported does not repair modules that are already loaded.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
import threading
import types

__all__ = ["install", "rewrite_var_model_source", "rewrite_start_method_source", "use_fork_start_method",
           "VAR_MODEL", "OBJECT_DETECTION", "MULTIPROCESSING"]

VAR_MODEL = "lava.magma.compiler.var_model"
OBJECT_DETECTION = "lava.lib.dl.slayer.object_detection"
MULTIPROCESSING = "lava.magma.runtime.message_infrastructure.multiprocessing"
_START_METHOD_CALL = re.compile(r"""^(?P<indent>[ \t]*)mp\.set_start_method\(['"]fork['"]\)[ \t]*$""", re.MULTILINE)

# ``    NAME: ByteEncoder = ByteEncoder()`` (a class-body field), optionally
# followed by a comment.  Nothing else is touched.
_BYTE_ENCODER_DEFAULT = re.compile(
    r"^(?P<indent>[ \t]+)(?P<name>[A-Za-z_]\w*)[ \t]*:[ \t]*ByteEncoder[ \t]*=[ \t]*"
    r"ByteEncoder\(\)(?P<tail>[ \t]*(?:#[^\n]*)?)$",
    re.MULTILINE,
)
_REPLACEMENT = (
    r"\g<indent>\g<name>: ByteEncoder = "
    r"dataclasses.field(default_factory=ByteEncoder)\g<tail>"
)

_MARKER = "_dsatgo_lava_compat"
_install_lock = threading.Lock()


def rewrite_var_model_source(source: str) -> str:
    """Return ``source`` with every ``NAME: ByteEncoder = ByteEncoder()`` field
    turned into ``NAME: ByteEncoder = dataclasses.field(default_factory=ByteEncoder)``.

    Lines keep their numbers.  The result needs ``dataclasses`` in the namespace
    it runs in (the loader puts it there).  Source without the pattern comes
    back unchanged (the same object).
    """
    new, count = _BYTE_ENCODER_DEFAULT.subn(_REPLACEMENT, source)
    return new if count else source


def rewrite_start_method_source(source: str) -> str:
    """Return ``source`` with ``mp.set_start_method('fork')`` turned into
    ``_dsatgo_use_fork(mp)`` (same line); unchanged (the same object) without it."""
    new, count = _START_METHOD_CALL.subn(r"\g<indent>_dsatgo_use_fork(mp)", source)
    return new if count else source


def use_fork_start_method(mp) -> None:
    """Select multiprocessing's 'fork' start method for Lava, even if it was already fixed to 'fork'."""
    current = mp.get_start_method(allow_none=True)
    if current not in (None, "fork"):
        raise RuntimeError(f"Lava's runtime needs the 'fork' multiprocessing start method, but this process "
                           f"already uses {current!r}; import lava (or call multiprocessing.set_start_method"
                           "('fork')) before choosing another start method")
    mp.set_start_method("fork", force=True)


class _PatchedSourceLoader(importlib.machinery.SourceFileLoader):
    """Runs rewritten source under the original file name; never uses or writes
    bytecode caches (the cached .pyc belongs to the unpatched source)."""

    def __init__(self, fullname: str, path: str, source: str) -> None:
        super().__init__(fullname, path)
        self._patched_source = source

    def get_source(self, fullname: str) -> str:
        return self._patched_source

    def get_code(self, fullname: str) -> types.CodeType:
        return compile(self._patched_source, self.path, "exec", dont_inherit=True)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__.setdefault("dataclasses", dataclasses)
        module.__dict__.setdefault("_dsatgo_use_fork", use_fork_start_method)
        super().exec_module(module)


class _UnavailableModule(types.ModuleType):
    """Stand-in for a module whose import needs a dependency that is broken."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(name, message)
        self.__dict__["_lava_compat_message"] = message

    def __getattr__(self, attr: str):
        # Private and dunder names stay AttributeErrors, so getattr(m, x, None),
        # hasattr and the import machinery keep working on the stub.
        if attr.startswith("_"):
            raise AttributeError(attr)
        raise ImportError(self.__dict__["_lava_compat_message"], name=self.__name__)


class _StubLoader(importlib.abc.Loader):
    def __init__(self, message: str) -> None:
        self._message = message

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _UnavailableModule(spec.name, self._message)

    def exec_module(self, module: types.ModuleType) -> None:
        """The stub has no code to run: its attributes raise the ImportError."""


class _LavaCompatFinder(importlib.abc.MetaPathFinder):
    """See the module docstring.  Consulted for every import, it answers only
    for the three lava module names (and submodules of a stubbed one)."""

    _dsatgo_lava_compat = True

    def __init__(self) -> None:
        self._probe_lock = threading.RLock()
        self._probed = False
        self._torchvision_error: str | None = None

    # -- helpers ---------------------------------------------------------------
    def _other_spec(self, fullname, path, target):
        """The spec the rest of sys.meta_path would give."""
        for finder in list(sys.meta_path):
            if finder is self or getattr(finder, _MARKER, False):
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def torchvision_error(self) -> str | None:
        """``None`` if ``import torchvision`` works, else a one-line reason.
        Probed at most once per finder."""
        with self._probe_lock:
            if not self._probed:
                try:
                    importlib.import_module("torchvision")
                except Exception as exc:  # ImportError, RuntimeError (nms op), ...
                    self._torchvision_error = f"{type(exc).__name__}: {exc}"
                self._probed = True
            return self._torchvision_error

    def _stub_message(self, reason: str) -> str:
        torch = sys.modules.get("torch")  # slayer has imported it by now
        version = getattr(torch, "__version__", None)
        import_hint = f" (torch {version} is installed)" if version else ""
        return (
            "lava-dl's slayer.object_detection needs a working torchvision, but "
            f"`import torchvision` failed ({reason}). dsatgo_deploy.lava_compat "
            "replaced lava.lib.dl.slayer.object_detection (slayer.obd) by this stub "
            "so that the rest of slayer and netx import; install a torchvision "
            f"build matching torch{import_hint} to use object detection."
        )

    # -- MetaPathFinder --------------------------------------------------------
    def find_spec(self, fullname, path=None, target=None):
        if fullname == VAR_MODEL:
            if sys.version_info < (3, 11):
                return None
            return self._patched_spec(fullname, path, target, rewrite_var_model_source)
        if fullname == MULTIPROCESSING:
            return self._patched_spec(fullname, path, target, rewrite_start_method_source)
        if fullname == OBJECT_DETECTION:
            reason = self.torchvision_error()
            if reason is None:
                return None  # torchvision works: the real import happens
            spec = importlib.machinery.ModuleSpec(
                fullname, _StubLoader(self._stub_message(reason)), is_package=True
            )
            spec.submodule_search_locations = []
            return spec
        if fullname.startswith(OBJECT_DETECTION + "."):
            parent = sys.modules.get(OBJECT_DETECTION)
            if isinstance(parent, _UnavailableModule):
                raise ImportError(
                    parent.__dict__["_lava_compat_message"], name=fullname
                )
        return None

    def _patched_spec(self, fullname, path, target, rewrite):
        spec = self._other_spec(fullname, path, target)
        if spec is None or not spec.origin or not spec.has_location:
            return None
        try:
            with open(spec.origin, encoding="utf-8") as fh:
                source = fh.read()
        except (OSError, UnicodeDecodeError):
            return None
        patched = rewrite(source)
        if patched is source:
            return None  # already fixed upstream: normal import
        loader = _PatchedSourceLoader(fullname, spec.origin, patched)
        new_spec = importlib.util.spec_from_file_location(
            fullname, spec.origin, loader=loader
        )
        new_spec.cached = None
        return new_spec


def install() -> None:
    """Put the lava compatibility finder at the front of ``sys.meta_path``.

    Idempotent and cheap (no import of lava or torchvision happens here); call it
    before ``lava`` is first imported.
    """
    with _install_lock:
        if any(getattr(f, _MARKER, False) for f in sys.meta_path):
            return
        sys.meta_path.insert(0, _LavaCompatFinder())
