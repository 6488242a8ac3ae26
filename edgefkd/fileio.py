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


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def artifact_digest(path: str | os.PathLike[str], chunk: int = 1 << 20) -> tuple[str, int]:
    """(hex sha256, bytes) of an artifact that may be a directory (a Core ML `.mlpackage`).

    A file hashes as `sha256_file` does. A directory hashes every file under it in sorted
    relative-path order, each as its path, its length and its content, so renaming or
    moving a file inside the package changes the digest; bytes is the sum of file sizes.
    """
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path, chunk), path.stat().st_size
    digest = hashlib.sha256()
    total = 0
    for file in sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix()):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path).as_posix()}\0{size}\0".encode())
        with open(file, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
        total += size
    return digest.hexdigest(), total


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
