"""Loading `torch.export` programs (.pt2) without ever running code from the file.

`torch.export.load` is not safe on untrusted files: it unpickles weights and constants
with `weights_only=False` (and falls back to it when a safe load fails), `pickle.loads`
"opaque" constants, resolves node targets by walking attributes from the `torch` module
(so a graph can call any function reachable from it), and parses symbolic shapes with
`sympy.sympify`, which evaluates Python. So a .pt2 is checked before torch sees it:

- the archive may hold only the files a plain exported program has (no AOTInductor
  shared libraries, no ExecuTorch/MTIA payloads, no pickled custom or opaque objects);
- every graph node calls an operator of `torch.ops.aten|prims|quantized_decomposed`, or
  an arithmetic helper from `_operator`/`math` (what symbolic shapes use);
- every symbolic expression is made only of numbers, symbol names and sympy's
  arithmetic constructors;

and it is then loaded with `TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`, torch's own switch that
turns every `torch.load` inside into the restricted weights-only unpickler.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tokenize
import zipfile
from pathlib import Path
from typing import Any, Iterator

from ..errors import CheckpointError

#: File names (below the archive's root folder) a plain exported program consists of.
_ALLOWED_FILES = re.compile(
    r"^(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
    r"|models/[\w.-]+\.json|data/weights/[\w.-]+|data/constants/[\w.-]+"
    r"|data/sample_inputs/[\w.-]+\.pt|extra/[\w./-]+)$"
)
_OP_TARGET = re.compile(
    r"^torch\.ops\.(aten|prims|quantized_decomposed)\.(?!__)[A-Za-z_][A-Za-z0-9_]*\.(?!__)[A-Za-z_][A-Za-z0-9_]*$"
)
_HELPER_TARGETS = {f"_operator.{n}" for n in (
    "getitem", "add", "sub", "mul", "floordiv", "truediv", "mod", "pow", "neg", "pos", "abs",
    "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "not_",
)} | {f"math.{n}" for n in ("floor", "ceil", "trunc", "sqrt")}  # fmt: skip
#: Names a symbolic expression may use (sympy constructors and torch's shape functions).
_EXPR_NAMES = {
    "Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Mod", "Max", "Min", "Abs",
    "FloorDiv", "CeilDiv", "CleanDiv", "ModularIndexing", "IntTrueDiv", "FloatTrueDiv", "PowByNatural",
    "FloatPow", "TruncToInt", "ToFloat", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not",
    "floor", "ceiling", "sqrt", "oo", "zoo", "nan", "True", "False", "None",
    "positive", "integer", "real", "nonnegative", "finite", "infinite",
}  # fmt: skip
_EXPR_OPERATORS = {"(", ")", ",", "=", "+", "-", "*", "/", "%", "**", "//", "==", "!=", "<", "<=", ">", ">="}
_SYMBOL_NAME = re.compile(r"^[a-z]{1,3}\d+$")
_QUOTED_SYMBOL = re.compile(r"^'[a-z]{1,3}\d+'$")


def _refuse(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{path} is refused: {why}; edgefkd loads only plain torch.export programs")


def _check_expression(path: Path, text: str) -> None:
    """Only numbers, operators, allowed names and quoted symbol names: nothing eval can misuse."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        raise _refuse(path, f"unreadable symbolic shape {text[:60]!r}") from None
    for tok in tokens:
        ok = (
            tok.type in (tokenize.NUMBER, tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.NL)
            or (tok.type == tokenize.OP and tok.string in _EXPR_OPERATORS)
            or (tok.type == tokenize.NAME and (tok.string in _EXPR_NAMES or _SYMBOL_NAME.match(tok.string)))
            or (tok.type == tokenize.STRING and _QUOTED_SYMBOL.match(tok.string))
        )
        if not ok:
            raise _refuse(path, f"symbolic shape {text[:60]!r} contains {tok.string!r}")


def _check_json(path: Path, node: Any) -> None:
    """Walk a serialized program: node targets and symbolic expressions must be inert."""
    if isinstance(node, dict):
        if "as_custom_obj" in node and node["as_custom_obj"] is not None:
            raise _refuse(path, "it holds a custom script object")
        target = node.get("target")
        if isinstance(target, str) and "inputs" in node:
            if not (_OP_TARGET.match(target) or target in _HELPER_TARGETS):
                raise _refuse(path, f"a graph node calls {target[:80]!r}, which is not a tensor operator")
        expr = node.get("expr_str")
        if isinstance(expr, str):
            _check_expression(path, expr)
        for value in node.values():
            _check_json(path, value)
    elif isinstance(node, list):
        for value in node:
            _check_json(path, value)


def check_pt2_archive(path: Path) -> None:
    """Raise CheckpointError unless `path` is a plain exported program (see module docstring)."""
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a torch.export program: a .pt2 is a zip archive and this file is not one")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            roots = {n.split("/", 1)[0] for n in names}
            if len(roots) != 1 or any("/" not in n for n in names):
                raise _refuse(path, "its files are not under one root folder")
            inner = {n: n.split("/", 1)[1] for n in names if not n.endswith("/")}
            if not any(p.startswith("models/") for p in inner.values()):
                raise _refuse(path, "it has no models/*.json program (older torch.export files are not read)")
            for name, rel in inner.items():
                if not _ALLOWED_FILES.match(rel):
                    raise _refuse(path, f"it contains {rel!r}, which a plain exported program does not have")
                if rel.endswith(".json") and (rel.startswith("models/") or rel.startswith("data/")):
                    _check_member(path, rel, json.loads(archive.read(name)))
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise CheckpointError(f"{path} is a damaged torch.export archive: {exc}") from exc


def _check_member(path: Path, rel: str, content: Any) -> None:
    if rel.startswith("data/") and isinstance(content, dict):
        for fqn, meta in (content.get("config") or {}).items():
            meta = meta if isinstance(meta, dict) else {}
            name = str(meta.get("path_name", ""))
            if rel.startswith("data/constants/") and not name.startswith("tensor_"):
                raise _refuse(path, f"constant {fqn!r} is a pickled object, not a tensor")
            if meta.get("use_pickle"):
                raise _refuse(path, f"{fqn!r} is stored as a pickle, which can run code")
    _check_json(path, content)


@contextlib.contextmanager
def _weights_only_loads() -> Iterator[None]:
    """Every torch.load in this block uses the weights-only unpickler, whatever its caller asks."""
    previous = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = previous


def load_exported_program(path: Path) -> Any:
    """torch.export.load for untrusted files: checked first, then loaded with no code unpickled."""
    import logging

    import torch

    check_pt2_archive(path)
    # torch logs a full traceback at WARNING when a weights-only load fails before it falls
    # back; the fallback is what is forced off here, so the log would only be noise.
    export_log = logging.getLogger("torch._export.serde.serialize")
    level = export_log.level
    export_log.setLevel(logging.ERROR)
    try:
        with _weights_only_loads():
            program = torch.export.load(str(path))
    except Exception as exc:
        text = " ".join(str(exc).split())
        if "Weights only load failed" in text or "weights_only" in text:
            found = re.search(r"GLOBAL ([\w.]+)", text)
            named = f" (it names {found.group(1)})" if found else ""
            raise CheckpointError(
                f"{path} holds pickled Python objects that would run code when loaded{named}: refused"
            ) from exc
        raise CheckpointError(f"{path} is not a loadable torch.export program: {text[:200]}") from exc
    finally:
        export_log.setLevel(level)
    _check_loaded_graph(path, program)
    return program


def _check_loaded_graph(path: Path, program: Any) -> None:
    """Second look, after loading and before anything runs: every call is a torch operator."""
    import math
    import operator

    import torch

    modules = {"_operator": operator, "math": math}
    helpers = {getattr(modules[t.split(".")[0]], t.split(".")[1]) for t in _HELPER_TARGETS}
    for node in program.graph.nodes:
        if node.op != "call_function":
            continue
        target = node.target
        if isinstance(target, torch._ops.OpOverload) or target in helpers:
            continue
        raise _refuse(path, f"a graph node calls {getattr(target, '__name__', target)!r}, which is not a tensor operator")
