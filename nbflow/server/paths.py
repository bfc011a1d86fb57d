"""Turning the paths a browser sends into files under the server's root, and back.

A request names notebooks and stores by their API path (relative to the
server's root, ``/``-separated, as JupyterLab's contents API does).  Nothing
outside the root is ever opened: absolute paths, ``..`` and symbolic links that
lead out of it are refused before any file is touched.
"""

from __future__ import annotations

import os
import posixpath

from .reader import ReadError

STORE_BESIDE_NOTEBOOK = (".nbflow", "nbflow.db")   # the store a kernel makes by default


def under_root(root: str, api_path: str, what: str) -> str:
    """The real file path of ``api_path`` under ``root``.

    Raises
    ------
    ReadError
        (403) the path is absolute, climbs out with ``..``, has a NUL byte, or
        resolves (through links) outside the root.
    """
    refused = ReadError("outside-root", 403, (
        f"the {what} path {api_path!r} is outside the server's root directory; give a path "
        "relative to the root, as the file browser shows it"))
    if "\x00" in api_path or api_path.startswith(("/", "\\")) or os.path.isabs(api_path):
        raise refused
    parts = api_path.replace("\\", "/").split("/")
    if ".." in parts:
        raise refused
    real_root = os.path.realpath(root)
    full = os.path.realpath(os.path.join(real_root, *[p for p in parts if p not in ("", ".")]))
    if full != real_root and not full.startswith(real_root + os.sep):
        raise refused
    return full


def default_store(notebook_api_path: str | None) -> str:
    """The API path of the store a kernel of that notebook uses by default (beside it)."""
    folder = posixpath.dirname(notebook_api_path) if notebook_api_path else ""
    return posixpath.join(folder, *STORE_BESIDE_NOTEBOOK)


def to_api_path(root: str, path: str | None) -> str | None:
    """``path`` (absolute, as a kernel recorded it) relative to the root, or None
    when it is not under the root (a notebook elsewhere is not shown by path)."""
    if not path:
        return None
    real_root = os.path.realpath(root)
    full = os.path.realpath(path)
    if not full.startswith(real_root + os.sep):
        return None
    return os.path.relpath(full, real_root).replace(os.sep, "/")
