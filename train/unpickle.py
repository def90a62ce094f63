"""Safe unpickling of the CIFAR "python version" files: only numpy's array reconstruction is allowed, and an
array is refused beyond the memory budget before it is allocated (dsatgo_deploy.limits)."""

from __future__ import annotations

import io
import math
import pickle
import struct
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dsatgo_deploy import limits
from dsatgo_deploy.errors import UserError


def _numpy_reconstruct() -> Callable:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 1.26
    except ImportError:  # pragma: no cover - older numpy
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return _reconstruct


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for the CIFAR "python version" files: dicts of strings, lists and uint8 numpy arrays.

    The only globals such a file references are numpy's array reconstruction
    (``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``);
    every other global (``os.system``, ``builtins.eval``, ...) is refused with
    an UnpicklingError, so a doctored file cannot execute anything.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global '{module}.{name}' (only numpy array "
                                         "reconstruction is allowed in a data file)")
        if name == "_reconstruct":
            return _bounded_reconstruct
        return np.ndarray if name == "ndarray" else np.dtype


def _bounded_reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    """numpy's _reconstruct, which allocates the shape the pickle claims: refused beyond the memory
    budget (8 bytes per element, the widest numeric dtype) before it allocates."""
    dims = shape if isinstance(shape, (tuple, list)) else (shape,)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise pickle.UnpicklingError(f"array shape {shape!r} is not a tuple of sizes")
    limits.check_memory("array in the pickle", f"shape {tuple(dims)}", math.prod(dims) * 8)
    return _numpy_reconstruct()(subtype, shape, dtype_code)


def restricted_load(path: str | Path) -> Any:
    """Unpickle a CIFAR python-version file with :class:`RestrictedUnpickler`; UserError on anything else."""
    path = Path(path)
    try:
        limits.check_memory(str(path), "its contents", path.stat().st_size)
        # From memory: a length field claiming terabytes then reads what is there, not the claim.
        handle = io.BytesIO(path.read_bytes())
        # latin1: the files are Python 2 pickles (as torchvision reads them).
        return RestrictedUnpickler(handle, encoding="latin1").load()
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    except pickle.UnpicklingError as exc:
        raise UserError(f"{path}: not a CIFAR data file ({limits.reason(exc)})") from None
    except MemoryError:
        raise UserError(f"{path}: not a CIFAR data file (it declares more data than memory holds)") from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError,
            RecursionError, struct.error, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable CIFAR data file ({limits.reason(exc)})") from None
