"""``python -m dsatgo_deploy.cli`` (torchrun's form): the same as ``dsatgo``."""

import sys

from .main import main

sys.exit(main())
