"""Atomic file and directory writes, and hashing.

Nothing edgefkd writes is ever half-written: files go to a temporary sibling and are
renamed into place; output directories are staged and renamed as a whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def check_plain_path(path: str | os.PathLike[str], what: str) -> None:
    """Refuse a path or name with control characters (newline, tab, escape...).

    Such names are never needed, and copied into a shell script or a log they change what
    the script runs or what the log says.
    """
    from .errors import InputError

    text = os.fspath(path)
    bad = next((c for c in text if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise InputError(f"{what} {text!r} contains the control character {bad!r}; rename it")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` on success.

    The caller writes the file (with any library) to the yielded path. On an exception
    the temporary file is removed and `target` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def staged_directory(target: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Build an output directory in a staging folder and move it into place at the end.

    - If `target` exists and is non-empty and `force` is False, InputError is raised
      before anything is written.
    - On an exception the staging folder is deleted: no partial output is left behind,
      and an existing `target` is untouched.
    - On success an existing `target` (only when `force`) is replaced as a whole.
    """
    from .errors import InputError

    target = Path(target)
    if target.exists() and not target.is_dir():
        raise InputError(f"output path {target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise InputError(f"output directory {target} is not empty; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if target.exists():
        trash = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, trash)
        os.replace(stage, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(stage, target)


def check_replaceable_dir(directory: str | os.PathLike[str], report_files: tuple[str, ...]) -> None:
    """Refuse a report folder holding anything but an earlier report (it is replaced whole)."""
    from .errors import InputError

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"report path {directory} exists and is not a directory")
    if directory.is_dir():
        foreign = sorted(p.name for p in directory.iterdir() if p.name not in report_files)
        if foreign:
            raise InputError(f"report directory {directory} holds other files ({', '.join(foreign[:3])}); choose another --report")
