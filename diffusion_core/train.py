"""``python -m diffusion_core.train``: train a model (:mod:`diffusion_core.cli.train`)."""

import sys

from .cli.train import main

if __name__ == "__main__":
    sys.exit(main())
