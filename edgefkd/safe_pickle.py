"""Reading pickled face-pair files without ever running code from them.

insightface verification sets (`lfw.bin`, `cfp_fp.bin`, `agedb_30.bin`, ...) are pickles
of `(list_of_encoded_images, list_of_is_same)`. A pickle can name any importable callable
and have it called while loading, so these files are read with an unpickler that resolves
no global except a handful of inert builtin types, and rejects persistent ids. Older
files were written by Python 2; `encoding="bytes"` keeps their `str` images as bytes.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

from .errors import InputError

# The only globals a pickle may name. Lists, tuples, bytes, bools and ints normally come
# from dedicated opcodes and need no global; these cover writers that spell them out.
SAFE_GLOBALS = frozenset(
    ("builtins", name) for name in ("list", "tuple", "bytes", "bytearray", "bool", "int")
) | frozenset(("__builtin__", name) for name in ("list", "tuple", "bytearray", "bool", "int"))


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that refuses every global outside SAFE_GLOBALS and all persistent ids."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing a persistent id")


def restricted_loads(data: bytes, what: str = "pickle") -> Any:
    """Unpickle `data` admitting only list/tuple/bytes/bytearray/bool/int; InputError otherwise."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise InputError(f"{what} is not a safe pickle of plain lists/bytes/bools: {exc}") from None


def read_insightface_bin(path: str | os.PathLike[str]) -> tuple[list[bytes], list[bool]]:
    """Read an insightface verification `.bin`: (encoded images, is_same per pair).

    Images of pair i are at positions 2i and 2i+1. Raises InputError for a file that is
    missing, unsafe, or not in that layout.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"insightface .bin not found: {path}")
    content = restricted_loads(path.read_bytes(), what=f"insightface .bin {path}")
    if not (isinstance(content, (tuple, list)) and len(content) == 2):
        raise InputError(f"{path} is not an insightface .bin: expected a pair (images, is_same)")
    images, is_same = content
    if not isinstance(images, (list, tuple)) or not all(isinstance(b, (bytes, bytearray)) for b in images):
        raise InputError(f"{path} is not an insightface .bin: the first element must be a list of encoded images")
    if not isinstance(is_same, (list, tuple)) or not all(isinstance(v, (bool, int)) for v in is_same):
        raise InputError(f"{path} is not an insightface .bin: the second element must be a list of booleans")
    if len(images) != 2 * len(is_same):
        raise InputError(f"{path}: {len(images)} images for {len(is_same)} pairs (expected two per pair)")
    return [bytes(b) for b in images], [bool(v) for v in is_same]
