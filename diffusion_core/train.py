"""``python -m diffusion_core.train``: Train a model on the command line (:mod:`diffusion_core.cli.train`)."""

import sys

from .cli.train import main

if __name__ == "__main__":
    sys.exit(main())
