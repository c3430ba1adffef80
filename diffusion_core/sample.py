"""``python -m diffusion_core.sample``: Sample from a checkpoint on the command line (:mod:`diffusion_core.cli.sample`)."""

import sys

from .cli.sample import main

if __name__ == "__main__":
    sys.exit(main())
