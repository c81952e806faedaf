"""Walking a folder of documents, and saying why a symbolic link cannot be followed.

`os.walk` puts a link that leads nowhere (a loop, or a target that is gone) among the files, where
`is_file()` is False, so such a link vanished from `qa ingest FOLDER` without a word; passed
directly, `os.path.exists` is False for it, so it was reported as "no such file". Both are
reported here as what they are. Links to folders are followed, so a collection assembled from
links is read whole; a link that leads back to a folder being walked is a loop and is reported
instead of followed, so a walk always ends.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

# What the kernel follows before it answers ELOOP (Linux's MAXSYMLINKS); a longer chain is no loop.
_MAX_LINKS = 40


def link_problem(path: Path) -> str | None:
    """Why `path` cannot be followed to a file or folder because of a symbolic link (a loop, or a
    broken link), or None: it can, or it is missing or unreadable for another reason."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            chain = _chain(path)
            if chain[-1] in chain[:-1]:
                return f"symbolic link loop ({' -> '.join(chain)})"
            return f"symbolic link loop, or more than {_MAX_LINKS} links in a row ({' -> '.join(chain)})"
        if os.path.islink(path):
            return f"broken symbolic link to {_chain(path)[-1]} (no such file or folder)"
    return None


def _chain(path: Path) -> list[str]:
    """The path and each link's target in turn, until a path that is not a link or one seen before."""
    chain = [os.path.normpath(path)]
    while len(chain) <= _MAX_LINKS and os.path.islink(chain[-1]):
        # A relative target is relative to the link's folder; joining keeps a relative path
        # relative, so the user reads the names they typed.
        target = os.path.normpath(os.path.join(os.path.dirname(chain[-1]), os.readlink(chain[-1])))
        chain.append(target)
        if target in chain[:-1]:
            break
    return chain


def walk(folder: Path, wanted: Callable[[Path], bool]) -> list[tuple[Path, str | None]]:
    """The `wanted` regular files under `folder`, each with None, and what cannot be read, each
    with the reason: links that lead nowhere or back to a folder being walked, folders that cannot
    be listed. Hidden files and folders are left out. In sorted path order.
    """
    found: list[tuple[Path, str | None]] = []
    # Each folder to list with the folders above it (by device and inode): a link to one of those
    # is a loop. An explicit stack, not recursion: a very deep tree must not hit the recursion limit.
    stack: list[tuple[Path, dict[tuple[int, int], Path]]] = [(folder, {_identity(folder): folder})]
    while stack:
        directory, above = stack.pop()
        try:
            with os.scandir(directory) as listing:
                entries = [entry for entry in listing if not entry.name.startswith(".")]
        except OSError as exc:
            found.append((directory, f"the folder cannot be read ({exc.strerror or exc})"))
            continue
        for entry in entries:
            path = Path(entry.path)
            problem = link_problem(path) if entry.is_symlink() else None
            if problem:
                found.append((path, problem))
            elif entry.is_dir():
                identity = _identity(path)
                if identity in above:
                    found.append((path, f"symbolic link loop (leads back to the folder {above[identity]})"))
                else:
                    stack.append((path, {**above, identity: path}))
            elif entry.is_file() and wanted(path):
                found.append((path, None))
    return sorted(found, key=lambda item: item[0].relative_to(folder).parts)


def _identity(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_dev, status.st_ino
