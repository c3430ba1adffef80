"""Lazy re-exports for package ``__init__`` modules (PEP 562).

A package such as :mod:`diffusion_core.schedule` holds a torch-free config module beside modules
that import torch. Importing ``diffusion_core.schedule.config`` runs the package's ``__init__``
first, so that ``__init__`` must not import torch: it names what it exports and where each name
lives, and Python imports a submodule only when one of its names is first used. The app builds
its UI from the config modules before torch's ~1 s import (``tests/app/test_startup.py``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[list[str], Callable[[str], object], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package`` exporting ``{name: submodule}``.

    ``submodule`` is relative to ``package`` (``".config"``) or absolute; ``".ddpm:step"``
    exports that module's ``step`` under the given name. A name is imported from its
    submodule on first access and cached in the package's namespace.
    """
    table = dict(exports)

    def __getattr__(name: str) -> object:
        try:
            where = table[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        module, _, attr = where.partition(":")
        value = getattr(importlib.import_module(module, package), attr or name)
        setattr(importlib.import_module(package), name, value)  # later look-ups skip this
        return value

    def __dir__() -> list[str]:
        return sorted(table)

    return sorted(table), __getattr__, __dir__
