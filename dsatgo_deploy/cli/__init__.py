"""The command line: ``dsatgo train | export | sim | parity | report | demo`` and ``dsatgo-export``.

Only this package knows every stage: one module a command group (train, export, sim and parity, report,
demo), the helpers they share (common), the checked flag types (types), and the two programs (main).
Errors a user can fix print one line on stderr (``dsatgo: error: ...``) and exit 2, without a traceback.
"""

from __future__ import annotations

from .common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARITY_FAILED
from .demo import cmd_demo
from .export import cmd_export
from .main import build_parser, export_main, main
from .report import cmd_report
from .sim import cmd_parity, cmd_sim
from .train import cmd_train

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PARITY_FAILED", "build_parser", "cmd_demo",
           "cmd_export", "cmd_parity", "cmd_report", "cmd_sim", "cmd_train", "export_main", "main"]
