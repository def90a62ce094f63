"""argparse ``type=`` functions: every numeric flag is checked when it is parsed.

A bad value raises ``argparse.ArgumentTypeError``, which argparse turns into its
usual one line (``dsatgo sim: error: argument --samples: ...``) and exit 2, before
any file is read or written.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An integer in [low, high] (either bound may be open)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        _check_range(value, low, high, text)
        return value

    parse.__name__ = "integer"  # argparse names the type in its own messages
    return parse


def real(low: float | None = None, high: float | None = None, *, low_open: bool = False) -> Callable[[str], float]:
    """A finite float in [low, high] ((low, high] with ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if low_open and low is not None and value <= low:
            raise argparse.ArgumentTypeError(f"must be > {low}, got {text}")
        _check_range(value, low, high, text)
        return value

    parse.__name__ = "number"
    return parse


def _check_range(value: float, low: float | None, high: float | None, text: str) -> None:
    if low is not None and value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {text}"
                                         + (f" (range {low} to {high})" if high is not None else ""))
    if high is not None and value > high:
        raise argparse.ArgumentTypeError(f"must be <= {high}, got {text}"
                                         + (f" (range {low} to {high})" if low is not None else ""))


POSITIVE = integer(1)
NON_NEGATIVE = integer(0)
FRACTION = real(0.0, 1.0)  # tolerances, agreements, label smoothing
SECONDS = real(0.0, low_open=True)


def shape(text: str) -> tuple[int, ...]:
    """C,H,W (or any comma-separated dimensions): positive integers."""
    parts = [p.strip() for p in text.split(",")]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return dims


def device(text: str, allow_auto: bool = False) -> str:
    """A torch device this machine has: cpu, cuda, cuda:N (N < the GPU count), or auto where allowed."""
    if allow_auto and text == "auto":
        return text
    import torch

    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r} (cpu, cuda, cuda:N"
                                         + (", auto)" if allow_auto else ")")) from None
    if parsed.type == "cpu":
        return text
    if parsed.type != "cuda":
        raise argparse.ArgumentTypeError(f"unsupported device {text!r} (cpu, cuda, cuda:N)")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise argparse.ArgumentTypeError(f"{text}: no CUDA GPU is available on this machine (use cpu)")
    if parsed.index is not None and parsed.index >= count:
        raise argparse.ArgumentTypeError(f"{text}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    return text


def train_device(text: str) -> str:
    return device(text, allow_auto=True)


device.__name__ = train_device.__name__ = "device"


def channel(text: str) -> int | str:
    """A convnet block: a positive channel count or ``pool``."""
    if text == "pool":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive channel count or 'pool', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive channel count or 'pool', got {text!r}")
    return value


channel.__name__ = "channel"
