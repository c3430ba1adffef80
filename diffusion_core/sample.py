"""``python -m diffusion_core.sample``: sample from a checkpoint (:mod:`diffusion_core.cli.sample`)."""

import sys

from .cli.sample import main

if __name__ == "__main__":
    sys.exit(main())
