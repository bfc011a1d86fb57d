"""Optional dependencies, imported when a feature needs them, with the command that
installs them when they are missing."""

from __future__ import annotations

import importlib
from types import ModuleType

# The top-level package of each optional module -> the extra that brings it.
EXTRAS = {"dask": "dask", "distributed": "dask"}


def need(module: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``.

    Raises
    ------
    ImportError
        with the exact install command, when the missing module is the optional
        one itself; any other import error (a broken install, a missing
        dependency of its own) goes through unchanged, as dask does.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").partition(".")[0]
        extra = EXTRAS.get(top)
        if extra is None or top != module.partition(".")[0]:
            raise
        raise ImportError(f"{feature} needs the {top!r} package, which is not installed. "
                          f'Install it with: pip install "nbflow[{extra}]"') from exc
