"""Replacing a directory atomically, and cleaning up after a replacement that was killed.

A checkpoint is a directory, and POSIX ``rename`` cannot replace a non-empty directory. On Linux
``renameat2(RENAME_EXCHANGE)`` swaps two paths in one step: the new directory takes the path and
the old one takes the temporary name, to be removed after. A kill at any moment then leaves the
old or the new directory at the path. Where the exchange is not available (another system, a
file system without it), the old directory is renamed aside first and the new one renamed in; a
kill between the two leaves no directory at the path, and :func:`recover` puts one back.

Temporary names carry the writer's process id (``.NAME.tmp-PID-XXXX``, ``.NAME.old-PID-XXXX``),
so that :func:`clean_leftovers` removes only what dead processes left, never a save in progress.
Files and directories get the permissions the umask gives, like any file the user creates.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def temporary_prefix(path: Path) -> str:
    """Prefix of the temporary sibling a new version of ``path`` is written to."""
    return f".{path.name}.tmp-{os.getpid()}-"


def _leftover_pattern(path: Path) -> re.Pattern:
    return re.compile(rf"^\.{re.escape(path.name)}\.(tmp|old)-(?:(\d+)-)?[^/]*$")


def replace_directory(new: Path, path: Path) -> None:
    """Put the directory ``new`` at ``path`` (replacing what is there) and remove the old one."""
    if not path.exists():
        os.rename(new, path)
    elif _exchange(new, path):
        shutil.rmtree(new, ignore_errors=True)  # it now holds the old version
    else:
        old = path.parent / f".{path.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(path, old)
        os.rename(new, path)
        shutil.rmtree(old, ignore_errors=True)
    _sync_directory(path.parent)


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` atomically; False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be saving
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftovers(path: Path) -> list[tuple[str, Path]]:
    """``(kind, directory)`` of the temporary siblings of ``path`` that dead processes left
    (``kind``: ``"tmp"``, a new version, or ``"old"``, a replaced one), newest first."""
    pattern, found = _leftover_pattern(path), []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    for entry in entries:
        match = pattern.match(entry.name)
        if match and not (match.group(2) and _alive(int(match.group(2)))):
            try:
                found.append((entry.stat(follow_symlinks=False).st_mtime, match.group(1), Path(entry.path)))
            except OSError:
                continue
    return [(kind, p) for _, kind, p in sorted(found, reverse=True)]


def recover(path: Path, is_complete: Callable[[Path], bool]) -> None:
    """Clean up after killed replacements of ``path``. When nothing is at ``path`` but a killed
    replacement left a complete new version (or else the old one) aside, put it back first."""
    found = leftovers(path)
    if not found:
        return
    if not os.path.lexists(path):
        for kind in ("tmp", "old"):
            chosen = next((p for k, p in found if k == kind and is_complete(p)), None)
            if chosen is not None:
                try:
                    os.rename(chosen, path)
                except OSError:
                    pass
                break
    for _, leftover in leftovers(path):
        shutil.rmtree(leftover, ignore_errors=True)


def current_umask() -> int:
    """The process's umask (read without changing it where the system allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: Path) -> None:
    """Give ``path`` (a file, or a directory and the files in it) the permissions a newly created
    one gets under the umask: ``tempfile`` creates them private (0600 / 0700)."""
    mask = current_umask()
    path = Path(path)
    if path.is_dir():
        for child in path.iterdir():
            os.chmod(child, (0o777 if child.is_dir() else 0o666) & ~mask)
        os.chmod(path, 0o777 & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)
