"""The importer registry: foreign network files that ``sim``, ``parity`` and ``report`` accept.

An importer is an :class:`Importer` registered once with :func:`register_importer`: ``detect``
says whether a file is its format (by content, whatever the name), ``read`` turns it into a
validated DeployableNetwork, given what such files may not say themselves (timesteps, bits of
graded input, input shape). An importer from outside the package registers the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from dsatgo_deploy.network import DeployableNetwork
from dsatgo_deploy.plugins import Registry


class ReadNetwork(Protocol):
    """``options``: what only some formats need (a NIR file's ``dt``); an importer ignores the others'."""

    def __call__(self, path: Path, *, timesteps: int | None, input_bits: int,
                 input_shape: tuple[int, ...] | None, **options) -> DeployableNetwork: ...


@dataclass(frozen=True)
class Importer:
    name: str
    detect: Callable[[Path], bool]
    read: ReadNetwork
    #: what the CLI's help calls such a file, e.g. "a lava-dl netx HDF5 file"
    description: str = ""


_IMPORTERS: Registry[Importer] = Registry("importer")


def register_importer(importer: Importer) -> Importer:
    """Register ``importer`` under its name (once; another importer of the same name is refused)."""
    return _IMPORTERS.register(importer.name, importer)


def importers() -> tuple[Importer, ...]:
    """Every registered importer, in registration order."""
    return _IMPORTERS.entries()


def find_importer(path: Path) -> Importer | None:
    """The first importer whose format ``path`` is (a file), None when none is (e.g. network.npz)."""
    if not Path(path).is_file():
        return None
    return next((importer for importer in _IMPORTERS.entries() if importer.detect(Path(path))), None)
