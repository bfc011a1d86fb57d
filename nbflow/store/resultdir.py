"""The results folder as retention sees it: counting and deleting result files safely.

Only regular files named ``<64 hex digits>.pkl`` directly in the folder are
result files.  Everything is looked at through a descriptor of the folder,
opened without following a link in its last component, and with ``lstat``:
nothing is ever opened, so a planted FIFO or device cannot block, and a
symbolic link is never followed (nor deleted: it is not a result file).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field

RESULT_NAME = re.compile(r"[0-9a-f]{64}\.pkl")
# ``ResultFiles.save`` writes ``<key>.pkl.<pid>-<thread>.tmp`` and renames it.
TMP_NAME = re.compile(r"[0-9a-f]{64}\.pkl\.[0-9]+-[0-9]+\.tmp")
#: A temporary file untouched for this long belongs to a writer that died.
TMP_GRACE = 600.0


@dataclass
class FolderUsage:
    """What a results folder holds: result files, and other entries left alone."""

    folder: str
    files: int = 0
    bytes: int = 0
    others: int = 0          # temporary files, links, anything that is not a result file
    other_bytes: int = 0
    problem: str | None = None


@dataclass
class Deleted:
    """What a deletion did: files and bytes freed, names left alone and why, and
    the keys whose files were too recent to delete yet."""

    files: int = 0
    bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    recent: set[str] = field(default_factory=set)
    unusable: bool = False   # the folder could not be used: nothing was looked at


def open_folder(folder: str) -> tuple[int | None, str | None]:
    """``(descriptor, None)``, ``(None, None)`` when there is no folder, or
    ``(None, why)`` when it cannot or must not be used."""
    try:
        return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW), None
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(folder):
            return None, (f"the results folder {folder!r} is a symbolic link, which nbflow "
                          "does not follow to delete files; point NBFLOW_RESULTS at the "
                          "folder itself")
        return None, f"cannot read the results folder {folder!r}: {exc.strerror}"


def usage(folder: str) -> FolderUsage:
    """Count the result files of ``folder`` and what else is in it."""
    out = FolderUsage(folder)
    fd, out.problem = open_folder(folder)
    if fd is None:
        return out
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # deleted meanwhile
                if stat.S_ISREG(st.st_mode) and RESULT_NAME.fullmatch(entry.name):
                    out.files += 1
                    out.bytes += st.st_size
                else:
                    out.others += 1
                    out.other_bytes += st.st_size if stat.S_ISREG(st.st_mode) else 0
    finally:
        os.close(fd)
    return out


def sizes(folder: str, keys: Iterable[str]) -> tuple[int, int]:
    """``(files, bytes)`` of the result files of ``keys`` that exist in ``folder``."""
    fd, _ = open_folder(folder)
    if fd is None:
        return 0, 0
    files = total = 0
    try:
        for key in keys:
            st = _lstat(key + ".pkl", fd)
            if st is not None and stat.S_ISREG(st.st_mode):
                files += 1
                total += st.st_size
    finally:
        os.close(fd)
    return files, total


def delete(folder: str, keys: Iterable[str], protect_after: float, now: float) -> Deleted:
    """Delete the result files of ``keys``, and temporary files older than ``TMP_GRACE``.

    A result file modified at or after ``protect_after`` is kept: a live run
    may have just saved it, its success not yet committed.
    """
    out = Deleted()
    names = [key + ".pkl" for key in keys if RESULT_NAME.fullmatch(key + ".pkl")]
    fd, problem = open_folder(folder)
    if fd is None:
        if problem is None and names:
            problem = (f"there is no results folder {folder!r} here, so the files of the "
                       "pruned runs stay queued; prune again where the kernels ran, or with "
                       "NBFLOW_RESULTS set to their results folder")
        if problem is not None:
            out.skipped.append((folder, problem))
            out.unusable = True
        return out
    try:
        with os.scandir(fd) as entries:
            names += [e.name for e in entries if TMP_NAME.fullmatch(e.name)]
        for name in names:
            st = _lstat(name, fd)
            if st is None:
                continue
            if not stat.S_ISREG(st.st_mode):
                out.skipped.append((name, "not a regular file"))
                continue
            if name.endswith(".tmp"):
                if st.st_mtime >= now - TMP_GRACE:
                    continue
            elif st.st_mtime >= protect_after:
                out.recent.add(name[:-4])
                continue
            try:
                os.unlink(name, dir_fd=fd)
            except FileNotFoundError:
                continue
            except OSError as exc:
                out.skipped.append((name, exc.strerror or str(exc)))
                continue
            out.files += 1
            out.bytes += st.st_size
    finally:
        os.close(fd)
    return out


def _lstat(name: str, fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return None
