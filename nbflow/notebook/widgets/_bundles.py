"""Where the built front-end files are, with a clear error when they are missing."""

from __future__ import annotations

import pathlib

from ...errors import NbflowError

STATIC = pathlib.Path(__file__).parent / "static"


def bundle(name: str) -> pathlib.Path:
    """The path of the built file ``name`` in ``static/``.

    Raises
    ------
    NbflowError
        the front ends were not built (a source checkout without the npm step).
    """
    path = STATIC / name
    if not path.is_file():
        raise NbflowError(
            f"nbflow's dashboard front end is not built ({path} is missing). In a source "
            "checkout run scripts/setup.sh, or `npm ci && npm run build` in labextension/; "
            "a wheel from PyPI includes it.")
    return path
