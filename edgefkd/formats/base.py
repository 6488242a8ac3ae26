"""What every artifact format declares (after Ultralytics' one table of formats).

A format is one module `edgefkd/formats/<name>.py` exposing `FORMAT: Format`. The table in
`edgefkd/formats/__init__.py` collects them and drives `export --formats`, `open_runner`,
verify-parity, benchmark-latency, the manifest's "runnable here?" rule and `list-formats`.

Nothing heavy is imported at module level: a format's converter and runtime are imported
inside its functions, so the table itself is instant to load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..contract import METADATA_PREFIX, PreprocessContract
from ..errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from ..runners.base import Runner


@dataclass
class ExportContext:
    """Everything a format's exporter may use; built once per export by the pipeline.

    `module` is the loaded PyTorch student (eval, CPU) and `fp32_onnx` the validated fp32
    ONNX it was exported to; a format converts from whichever it declares as `source`.
    `metadata` holds the flat `edgefkd.*` keys (contract included) every artifact carries;
    the exporter adds `edgefkd.precision` itself.
    """

    module: Any
    contract: PreprocessContract
    fp32_onnx: Path
    stage: Path
    metadata: dict[str, str]
    #: RGB uint8 calibration faces (N, H, W, 3); loaded lazily, once, by the pipeline
    calibration_faces: Callable[[], np.ndarray]
    keep_fp: Sequence[str] = ()
    calib_method: str = "minmax"
    log: Callable[[str], None] = lambda msg: None
    options: dict[str, Any] = field(default_factory=dict)
    #: artifact path -> extra manifest keys an exporter recorded for it (see `record`)
    artifact_info: dict[Path, dict[str, Any]] = field(default_factory=dict)

    def record(self, artifact: Path, **info: Any) -> None:
        """Keys to add to the manifest entry of `artifact` (e.g. quantization details)."""
        self.artifact_info.setdefault(Path(artifact), {}).update(info)

    def calibration_batches(self, batch_size: int = 32) -> list[np.ndarray]:
        """The calibration faces prepared with the contract, in batches."""
        faces = self.calibration_faces()
        return [self.contract.prepare(faces[i : i + batch_size]) for i in range(0, len(faces), batch_size)]

    def calibration_provenance(self) -> dict[str, Any]:
        """What the INT8 artifacts were calibrated on, for their manifest entries."""
        return {"calibration_source": str(self.options.get("calibration_source")),
                "calibration_faces": int(len(self.calibration_faces()))}  # fmt: skip

    def pair_evaluator(self) -> Any:
        """Pair accuracy on --pairs for accuracy-aware INT8 (built once), or None when not asked for."""
        if not self.options.get("accuracy_aware"):
            return None
        if "_pair_evaluator" not in self.options:
            from ..verify.evaluator import PairAccuracy

            pairs = self.options.get("pairs")
            if pairs is None:
                raise InputError("--accuracy-aware needs --pairs (a CSV, LFW pairs.txt or insightface .bin)")
            self.options["_pair_evaluator"] = PairAccuracy(pairs, self.contract)
        return self.options["_pair_evaluator"]


@dataclass(frozen=True)
class Format:
    """One deployment format: how it is written, read, described and run."""

    name: str  # the --formats name and the manifest's "format" field
    title: str  # e.g. "LiteRT (TFLite)"
    suffixes: tuple[str, ...]  # the first is what export writes
    precisions: tuple[str, ...]
    #: "torch" or "onnx": what the exporter converts from
    source: str
    #: pip extra that installs its converter and runtime (None: part of the base install)
    extra: str | None
    #: (ctx, precision) -> path of the written artifact inside ctx.stage
    export: Callable[[ExportContext, str], Path] | None
    #: path -> flat {"edgefkd.<key>": str}
    read_metadata: Callable[[Path], dict[str, str]]
    #: (path, contract, precision, **runner options) -> inactive Runner
    runner: Callable[..., "Runner"]
    #: None when the runtime can run here, else the reason (e.g. "Core ML runs only on macOS")
    available: Callable[[], str | None]
    #: extra files that belong to an artifact (e.g. OpenVINO .bin, NCNN .bin), for size and hashing
    companions: Callable[[Path], list[Path]] = lambda path: []
    #: the runtime that runs it, as reports name it (e.g. "onnxruntime"); "" means `name`
    runtime: str = ""
    #: importable modules the converter and runtime need; export checks them before any work
    #: and names `extra` when one is missing
    requires: tuple[str, ...] = ()
    #: formats that are not one file per (format, precision) step (TensorRT's engine bundle):
    #: (ctx, manifest, precisions) -> manifest entries, run after every per-artifact step
    bundle: Callable[[ExportContext, Any, Sequence[str]], list[Any]] | None = None

    @property
    def runtime_name(self) -> str:
        return self.runtime or self.name

    def missing_packages(self) -> list[str]:
        """The modules in `requires` that cannot be imported here."""
        import importlib.util

        def missing(module: str) -> bool:
            try:
                return importlib.util.find_spec(module) is None
            except (ImportError, ValueError):  # a parent package that is itself missing or broken
                return True

        return [m for m in self.requires if missing(m)]

    def install_hint(self) -> str:
        return f"pip install 'edgefkd[{self.extra}]'" if self.extra else "pip install edgefkd"

    def matches(self, path: str | Path) -> bool:
        name = Path(path).name.lower()
        return any(name.endswith(s) for s in self.suffixes)


# -- sidecar metadata, for formats that cannot hold key/value metadata in the file --------


def sidecar_path(artifact: str | Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def write_sidecar(artifact: str | Path, metadata: dict[str, str]) -> Path:
    """`<artifact>.json` with the `edgefkd.*` keys (prefix stripped), written atomically."""
    from ..fileio import atomic_write_json

    path = sidecar_path(artifact)
    data: dict[str, Any] = {}
    for key, value in metadata.items():
        key = key[len(METADATA_PREFIX):] if key.startswith(METADATA_PREFIX) else key
        try:
            data[key] = json.loads(value) if key == "preprocess" else value
        except (TypeError, json.JSONDecodeError):
            data[key] = value
    atomic_write_json(path, data)
    return path


def read_sidecar(artifact: str | Path) -> dict[str, str]:
    """The sidecar's keys as flat `edgefkd.<key>` -> string; {} when there is none."""
    path = sidecar_path(artifact)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a JSON object")
    return {METADATA_PREFIX + k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
