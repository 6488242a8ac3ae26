"""NCNN: `.ncnn.param` + `.ncnn.bin`, converted by pnnx, run by the `ncnn` Python package.

pnnx reads a TorchScript trace and writes many side files (pnnx param/bin/py/onnx, an
ncnn test script); only the ncnn pair is kept. The pair cannot hold key/value metadata,
so the contract travels in the sidecar `<model>.ncnn.param.json`.

Precisions: fp32 (weights stored fp32, fp16 storage/arithmetic switched off at run time)
and fp16 (weights stored fp16 by pnnx, `use_fp16_storage` at run time where the CPU has
it; on x86 ncnn widens them to fp32 when loading). No int8: ncnn2table/ncnn2int8 ship in
no wheel.

ncnn takes one image (CHW) per extractor: the runner embeds a batch image by image.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..contract import PreprocessContract
from ..errors import BackendUnavailable, ExportError, InputError
from ..runners.base import Runner
from .base import ExportContext, Format, read_sidecar, write_sidecar
from .torchscript import float_contract, trace_student

PRECISIONS = ("fp32", "fp16")
PARAM_MAGIC = "7767517"
INSTALL_HINT = "pip install 'edgefkd[ncnn]'"
#: pnnx converts a MobileFaceNet in ~10 s here; a hung converter must not hang the export.
PNNX_TIMEOUT_S = 900


def available() -> str | None:
    try:
        import ncnn  # noqa: F401
    except ImportError:
        return f"the ncnn runtime is not installed: {INSTALL_HINT}"
    return None


def bin_path(param: str | Path) -> Path:
    """`model.ncnn.param` -> `model.ncnn.bin` (the weights beside it)."""
    return Path(param).with_suffix(".bin")


def companions(param: Path) -> list[Path]:
    weights = bin_path(param)
    return [weights] if weights.exists() else []


def param_layer_types(param: str | Path) -> list[str]:
    """Layer types listed in a `.param` file; InputError when it is not an ncnn text param."""
    param = Path(param)
    if not param.is_file():
        raise InputError(f"artifact not found: {param}")
    try:
        lines = param.read_text().splitlines()
    except (UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{param} is not an NCNN .param file: {exc}") from None
    if not lines or lines[0].strip() != PARAM_MAGIC:
        raise InputError(f"{param} is not an NCNN .param file (first line is not the magic {PARAM_MAGIC})")
    try:
        layer_count = int(lines[1].split()[0])
    except (IndexError, ValueError):
        raise InputError(f"{param} is not an NCNN .param file (no layer count on line 2)") from None
    layers = [ln.split()[0] for ln in lines[2:] if ln.strip()]
    if len(layers) != layer_count:
        raise InputError(f"{param} is truncated or corrupt: {len(layers)} layers listed, header says {layer_count}")
    return layers


def unknown_layer_types(param: str | Path) -> list[str]:
    """Layer types of `param` that this ncnn build cannot create (ops pnnx left unconverted)."""
    import ncnn

    return sorted({t for t in param_layer_types(param) if ncnn.layer_to_index(t) < 0})


def _pnnx_executable() -> str:
    try:
        import pnnx
    except ImportError:
        raise BackendUnavailable(f"the NCNN converter pnnx is not installed: {INSTALL_HINT}") from None
    exe = getattr(pnnx, "EXEC_PATH", "")
    if not exe or not os.access(exe, os.X_OK):
        raise BackendUnavailable(f"the pnnx package has no runnable converter binary ({exe or 'none'}): {INSTALL_HINT}")
    return exe


def export_ncnn(ctx: ExportContext, precision: str) -> Path:
    """`ncnn/model_<precision>.ncnn.param` (+ `.bin` + sidecar JSON) inside ctx.stage."""
    if precision not in PRECISIONS:
        raise InputError(f"ncnn supports {', '.join(PRECISIONS)} (fp16 = fp16 storage), not {precision}: ncnn2int8 ships in no wheel")
    exe = _pnnx_executable()
    contract = float_contract(ctx.contract)
    h, w = contract.input_size
    out = ctx.stage / "ncnn" / f"model_{precision}.ncnn.param"
    out.parent.mkdir(parents=True, exist_ok=True)
    traced, _ = trace_student(ctx.module, contract, "ncnn")
    # A scratch folder inside the stage: pnnx's side files never leave it, and the kept
    # pair is moved by rename (same filesystem).
    with tempfile.TemporaryDirectory(prefix=".pnnx-", dir=out.parent) as scratch:
        work = Path(scratch)
        traced.save(str(work / "model.pt"))
        cmd = [exe, "model.pt", f"inputshape=[1,3,{h},{w}]f32", f"fp16={int(precision == 'fp16')}", "device=cpu",
               "ncnnparam=model.ncnn.param", "ncnnbin=model.ncnn.bin"]
        ctx.log(f"  pnnx {' '.join(cmd[1:])}")
        try:
            proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=PNNX_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ExportError(f"ncnn: pnnx did not finish within {PNNX_TIMEOUT_S} s") from None
        param, weights = work / "model.ncnn.param", work / "model.ncnn.bin"
        if proc.returncode != 0 or not param.is_file() or not weights.is_file():
            tail = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
            raise ExportError(f"ncnn: pnnx failed (exit {proc.returncode}): {tail[:200]}")
        unknown = unknown_layer_types(param)
        if unknown:
            raise ExportError(
                f"ncnn: pnnx left op(s) {', '.join(unknown)} unconverted; ncnn has no layer for them"
                " (replace the op in the model, or use another format)"
            )
        os.replace(weights, bin_path(out))
        os.replace(param, out)
    write_sidecar(out, {**ctx.metadata, **contract.to_metadata(), "edgefkd.precision": precision})
    return out


def read_metadata(path: Path) -> dict[str, str]:
    param_layer_types(path)  # a corrupt .param fails here, with its own message
    return read_sidecar(path)


@contextlib.contextmanager
def _native_stderr() -> Iterator[list[str]]:
    """Capture what native code prints on fd 2 (ncnn reports load errors there)."""
    captured: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.extend(sink.read().decode(errors="replace").splitlines())


class NcnnRunner(Runner):
    """ncnn.Net on the CPU; `threads` sets opt.num_threads (ncnn's default: big cores)."""

    backend = "ncnn"
    #: one image per extractor
    max_batch = 1

    def __init__(self, path: str | Path, contract: PreprocessContract, precision: str = "fp32",
                 threads: int | None = None, name: str | None = None, **_other_backend_options: Any) -> None:
        super().__init__(name or Path(path).name, contract, precision)
        self.path = Path(path)
        self.threads = threads
        self.net: Any = None

    def _activate(self) -> None:
        import ncnn

        unknown = unknown_layer_types(self.path)
        if unknown:
            raise InputError(f"{self.path}: ncnn {ncnn.__version__} has no layer type(s) {', '.join(unknown)}")
        weights = bin_path(self.path)
        if not weights.is_file():
            raise InputError(f"{self.path}: its weights {weights.name} are missing")
        net = ncnn.Net()
        fp16 = self.precision == "fp16"
        net.opt.use_fp16_storage = fp16
        net.opt.use_fp16_packed = fp16
        net.opt.use_fp16_arithmetic = False  # fp16 arithmetic costs accuracy; storage is the saving
        net.opt.use_bf16_storage = False
        net.opt.use_vulkan_compute = False
        if self.threads:
            net.opt.num_threads = self.threads
        with _native_stderr() as messages:
            status = net.load_param(str(self.path))
            if status == 0:
                status = net.load_model(str(weights))
        if status != 0:
            detail = "; ".join(messages)[:200] or f"status {status}"
            raise InputError(f"ncnn cannot load {self.path}: {detail}")
        self.input_name, self.output_name = net.input_names()[0], net.output_names()[0]
        self.net = net

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import ncnn

        embeddings = []
        for image in np.asarray(batch, dtype=np.float32):
            with self.net.create_extractor() as extractor:
                extractor.input(self.input_name, ncnn.Mat(np.ascontiguousarray(image)))
                status, out = extractor.extract(self.output_name)
                if status != 0:
                    raise InputError(f"ncnn failed to run {self.path} (extract status {status})")
                embeddings.append(np.array(out, dtype=np.float32).reshape(-1))
        return np.stack(embeddings)

    def _deactivate(self) -> None:
        if self.net is not None:
            self.net.clear()
        self.net = None

    def describe(self) -> dict[str, Any]:
        import ncnn

        threads = self.net.opt.num_threads if self.net is not None else self.threads or "default"
        return {**super().describe(), "ncnn": ncnn.__version__, "threads": threads, "fp16_storage": self.precision == "fp16"}


FORMAT = Format(
    name="ncnn",
    title="NCNN",
    suffixes=(".ncnn.param", ".param"),
    precisions=PRECISIONS,
    source="torch",
    extra="ncnn",
    export=export_ncnn,
    read_metadata=read_metadata,
    runner=NcnnRunner,
    available=available,
    runtime="ncnn",
    requires=("pnnx", "ncnn"),
    companions=companions,
)
