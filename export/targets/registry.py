"""The target registry: what ``dsatgo-export --target`` can write, one module per target.

A target is a :class:`Target` registered once with :func:`register_target`; its ``write``
gets everything export made (:class:`ExportInput`) and the staging folder, writes its
files there (atomically, through dsatgo_deploy.fileio) and says what it wrote
(:class:`TargetOutput`). A target from outside the package registers the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import DeployableNetwork
from dsatgo_deploy.plugins import Registry

from ..freeze import FrozenNetwork


@dataclass
class ExportInput:
    """What a target writes from: the deployable network, the frozen float network the chosen threshold
    policy gives (``frozen``), its per-layer-threshold version (``per_layer``, calibrated), and the
    source checkpoint's SHA-256 (files that carry provenance record it), and settings only some targets
    read (``options``)."""

    target: str
    network: DeployableNetwork
    frozen: FrozenNetwork
    per_layer: FrozenNetwork
    source_sha256: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # a target's own settings, e.g. {"nir_for": "norse"}


@dataclass
class TargetOutput:
    """Files written (names in the output folder) and the entries the target adds to manifest.json."""

    files: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """One export target. ``chip``: the chip whose resource limits the network must fit before anything
    is written (export/resources.py), None for a target that runs anywhere."""

    name: str
    write: Callable[[ExportInput, Path], TargetOutput]
    chip: str | None = None
    help: str = ""


_TARGETS: Registry[Target] = Registry("target")


def register_target(target: Target) -> Target:
    """Register ``target`` under its name (once; another target of the same name is refused)."""
    return _TARGETS.register(target.name, target)


def target_names() -> tuple[str, ...]:
    """Names of every registered target, in registration order."""
    return _TARGETS.names()


def get_target(name: str) -> Target:
    """The registered target of that name; UserError naming the known ones otherwise."""
    if name not in _TARGETS.names():
        raise UserError(f"unknown target {name!r} (known: {', '.join(_TARGETS.names())})")
    return _TARGETS.get(name)
