"""``python -m diffusion_core.sample``: sample from a checkpoint (see ``cli/sample.py``)."""

import sys

from .cli.sample import main

if __name__ == "__main__":
    sys.exit(main())
