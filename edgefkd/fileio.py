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
from typing import Any, Iterator, Sequence


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


#: Below this much free space after a failed write, the failure is reported as a full disk.
_FULL_DISK_BYTES = 8 << 20


def _identity(path: Path) -> tuple[int, int] | None:
    """What is at `path` now (device, inode), None when nothing: to notice a replacement."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def _check_destination(target: Path, force: bool) -> None:
    from .errors import InputError

    if target.exists() and not target.is_dir():
        raise InputError(f"output path {target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise InputError(f"output directory {target} is not empty; pass --force to overwrite it")


def check_writable_location(path: str | os.PathLike[str], what: str) -> None:
    """Refuse, before any work, a folder that cannot be created where it is asked for.

    The nearest existing ancestor must be a folder this process may write in: a parent
    that is a file, or a read-only file system, fails here instead of after the work.
    """
    from .errors import InputError

    target = Path(os.path.abspath(path))
    ancestor = target if target.exists() else target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{what} {path} cannot be created: {ancestor} is a file, not a folder")
    probe = ancestor if ancestor != target else target.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        reason = "read-only file system" if _read_only_fs(probe) else "permission denied"
        raise InputError(f"{what} {path} cannot be written: {probe} is not writable ({reason})")


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_output_apart(target: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str] | None]) -> None:
    """Refuse an output folder that is, holds or lies inside an input, or holds the working folder.

    The folder is replaced as a whole, so writing it over its own inputs would delete them.
    """
    from .errors import InputError

    out = Path(os.path.abspath(target))
    resolved = out.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or cwd.is_relative_to(resolved):
        raise InputError(f"output folder {target} is or holds the current folder; choose a new folder for the output")
    for item in inputs:
        if item is None or not os.path.exists(item):
            continue
        source = Path(item).resolve()
        if source == resolved or source.is_relative_to(resolved) or resolved.is_relative_to(source):
            raise InputError(f"output folder {target} overlaps the input {item}; choose a folder apart from every input")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_stages(target: Path) -> list[Path]:
    """Remove staging and trash folders of `target` left by processes that no longer run.

    Their names end in `.<pid>.staging` / `.old-<pid>`; a SIGKILLed export leaves one behind.
    """
    import glob

    removed = []
    pattern = glob.escape(str(target.parent / f".{target.name}.")) + "*"
    for path in map(Path, glob.glob(pattern)):
        tail = path.name[len(target.name) + 2 :]
        pid_text = tail[:-len(".staging")].rpartition(".")[2] if tail.endswith(".staging") else tail.partition("old-")[2]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def destination_lock(target: Path) -> Iterator[None]:
    """An exclusive lock on `target`'s name (a lock file beside it, removed on release)."""
    import fcntl

    lock_path = target.parent / f".{target.name}.lock"
    while True:
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        # Another holder may have removed the file between our open and our lock: retry on the new one.
        if _identity(lock_path) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
            break
        os.close(fd)
    try:
        yield
    finally:
        lock_path.unlink(missing_ok=True)
        os.close(fd)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt here, so it cleans up as Ctrl-C does (main thread only)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _explain_write_failure(exc: BaseException, target: Path) -> BaseException:
    """A library's odd message on a full or read-only disk, said in the user's words."""
    import errno

    from .errors import InputError

    if isinstance(exc, InputError) or not isinstance(exc, Exception):
        return exc
    code = getattr(exc, "errno", None)
    try:
        full = shutil.disk_usage(target.parent).free < _FULL_DISK_BYTES
    except OSError:
        full = False
    if code in (errno.ENOSPC, errno.EDQUOT) or full:
        return InputError(f"no space left on the device holding {target} (the write failed: {_short(exc)})")
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return InputError(f"cannot write to {target.parent}: {os.strerror(code)}")
    return exc


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


@contextlib.contextmanager
def staged_directory(
    target: str | os.PathLike[str], force: bool = False, inputs: Sequence[str | os.PathLike[str] | None] = ()
) -> Iterator[Path]:
    """Build an output directory in a staging folder and move it into place at the end.

    - If `target` exists and is non-empty and `force` is False, InputError is raised
      before anything is written; so is a `target` that overlaps one of `inputs`.
    - On an exception (or SIGTERM) the staging folder is deleted: no partial output is
      left behind, and an existing `target` is untouched. Staging folders of dead runs
      for the same `target` are removed first.
    - At the end, under a lock on `target`, the check is repeated: if another run wrote
      `target` meanwhile, this one fails and its output is discarded, never written over
      the other's. Otherwise an existing `target` (only when `force`) is replaced whole.
    """
    from .errors import InputError

    target = Path(os.path.abspath(target))
    check_plain_path(target, "output folder")
    check_output_apart(target, inputs)
    _check_destination(target, force)
    before = _identity(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_stages(target)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=f".{os.getpid()}.staging", dir=target.parent))
    except OSError as exc:
        raise InputError(f"cannot create the output folder {target}: {exc.strerror or exc}") from exc
    with _terminate_as_interrupt():
        try:
            yield stage
            with destination_lock(target):
                if _identity(target) != before:
                    raise InputError(f"{target} was written by another run while this one worked; nothing was written over it")
                _check_destination(target, force)
                if target.exists():
                    trash = target.with_name(f".{target.name}.old-{os.getpid()}")
                    os.replace(target, trash)
                    os.replace(stage, target)
                    shutil.rmtree(trash, ignore_errors=True)
                else:
                    os.replace(stage, target)
        except BaseException as exc:
            explained = _explain_write_failure(exc, target)
            shutil.rmtree(stage, ignore_errors=True)
            if explained is not exc:
                raise explained from exc
            raise


def check_replaceable_dir(directory: str | os.PathLike[str], report_files: tuple[str, ...]) -> None:
    """Refuse a report folder holding anything but an earlier report (it is replaced whole)."""
    from .errors import InputError

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"report path {directory} exists and is not a directory")
    check_writable_location(directory, "report folder")
    if directory.is_dir():
        foreign = sorted(p.name for p in directory.iterdir() if p.name not in report_files)
        if foreign:
            raise InputError(f"report directory {directory} holds other files ({', '.join(foreign[:3])}); choose another --report")
