"""`edgefkd export`: checkpoint -> validated fp32 ONNX -> one step per (format, precision).

The formats and what each can make come from the table (edgefkd/formats). `plan_export`
turns --formats/--precisions into a declarative list of steps and refuses a bad request
before any work; each step is the format's own `export(ctx, precision)`, then a check of
the artifact against PyTorch with the format's runner (INT8 on faces its calibration never
saw). Formats that write a bundle rather than one file per step (TensorRT) run last.

Everything is built inside a staging directory that replaces the output directory only when
every step succeeded, so a failed export leaves nothing behind (and an existing export is
kept intact).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .. import __version__
from ..contract import INPUT_UINT8_NHWC, PreprocessContract
from ..errors import InputError, ValidationError
from ..fileio import staged_directory
from ..formats import all_formats, format_names
from ..formats.base import ExportContext, Format
from ..manifest import PRECISIONS, ArtifactEntry, Manifest
from .preflight import check_export_options, export_inputs, validation_notes
from ..runners.base import Runner

#: The INT8 artifacts are checked on faces the calibration never saw: at most this many.
VALIDATION_FACES = 64


@dataclass
class ExportOptions:
    checkpoint: Path
    arch: str | None = None
    out: Path | None = None
    name: str | None = None
    formats: Sequence[str] = ("onnx", "openvino")
    precisions: Sequence[str] = ("fp32", "fp16")
    strict: bool = True
    input_size: str | None = None
    mean: str | None = None
    std: str | None = None
    channel_order: str | None = None
    opset: int = 17
    exporter: str = "dynamo"
    simplify: bool = True
    fold_preprocess: bool = False
    calib: str | None = None
    # minmax, not entropy: on the shipped synthetic faces entropy clipped the ONNX INT8 to
    # cosine p1 0.908 against PyTorch; minmax gave 0.994 (issue 4's measurements).
    calib_method: str = "minmax"
    calib_count: int = 256
    keep_fp: Sequence[str] = ()
    accuracy_aware: bool = False
    pairs: Path | None = None
    max_acc_drop: float = 1.0
    val_images: Path | None = None
    validate: bool = True
    force: bool = False
    # TensorRT options are passed through untouched to exporters.tensorrt
    tensorrt: dict[str, Any] = field(default_factory=dict)
    #: platform the ONNX Runtime Mobile (.ort) graphs are optimised for: arm (phones) or amd64
    ort_target: str = "arm"


@dataclass
class ExportReport:
    manifest: Manifest
    out_dir: Path
    notes: list[str]
    seconds: float
    validation_source: str


def _parse_list(values: Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    items = [v.strip().lower() for value in values for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise InputError(f"unknown {what} {bad or values}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def _validation_faces(opts: ExportOptions, contract: PreprocessContract) -> tuple[np.ndarray, str]:
    """Real faces for validation: --val-images, else the calibration source, else generated."""
    from ..imaging import list_images, load_faces

    if opts.val_images is not None:
        paths = list_images(opts.val_images)
        if not paths:
            raise InputError(f"no images found in {opts.val_images}")
        return load_faces(paths[:VALIDATION_FACES], contract.input_size), f"{len(paths[:VALIDATION_FACES])} faces from {opts.val_images}"
    if opts.calib is not None:
        from ..calib import load_calibration_faces

        faces = load_calibration_faces(opts.calib, contract.input_size, limit=VALIDATION_FACES, seed=1)
        return faces, f"{len(faces)} faces from calibration source {opts.calib}"
    rng = np.random.default_rng(0)
    h, w = contract.input_size
    faces = rng.integers(0, 256, size=(16, h, w, 3), dtype=np.uint8)
    return faces, "16 generated random images (pass --val-images DIR to validate on real faces)"


@dataclass(frozen=True)
class ExportStep:
    """One artifact to make: a format at a precision."""

    format: Format
    precision: str


@dataclass
class ExportPlan:
    steps: list[ExportStep]
    #: formats written as a bundle after every step (see Format.bundle)
    bundles: list[Format]
    precisions: list[str]
    notes: list[str]


def plan_export(opts: ExportOptions) -> ExportPlan:
    """The steps --formats/--precisions ask for; InputError for anything unknown, unsupported
    or not installed, before any work is done."""
    formats = _parse_list(opts.formats, format_names(), "format")
    precisions = _parse_list(opts.precisions, PRECISIONS, "precision")
    if opts.exporter not in ("dynamo", "legacy"):
        raise InputError(f"unknown exporter {opts.exporter!r}; choose dynamo or legacy")
    chosen = [fmt for fmt in all_formats() if fmt.name in formats]
    notes = []
    for fmt in chosen:
        supported = [p for p in precisions if p in fmt.precisions]
        if not supported:
            raise InputError(f"format {fmt.name} does not support {', '.join(precisions)} (it makes {', '.join(fmt.precisions)})")
        if len(supported) < len(precisions):
            notes.append(f"{fmt.name} makes no {', '.join(p for p in precisions if p not in supported)} artifact")
        missing = fmt.missing_packages()
        if missing:
            raise InputError(f"format {fmt.name} needs {', '.join(missing)}, which is not installed: {fmt.install_hint()}")
    if opts.accuracy_aware and "int8" in precisions and opts.pairs is None:
        raise InputError("--accuracy-aware needs --pairs (a CSV, LFW pairs.txt or insightface .bin)")
    if "ort" in formats and opts.ort_target not in ("arm", "amd64"):
        raise InputError(f"unknown --ort-target {opts.ort_target!r}; choose arm or amd64")
    # Float artifacts first, in table order; INT8 last, so calibration faces load only when needed.
    steps = [ExportStep(fmt, p) for fmt in chosen if fmt.export for p in precisions if p in fmt.precisions]
    steps.sort(key=lambda s: (s.precision == "int8", chosen.index(s.format), PRECISIONS.index(s.precision)))
    return ExportPlan(steps, [fmt for fmt in chosen if fmt.bundle], precisions, notes)


class _Validator:
    """Each artifact against the PyTorch reference on the validation faces; collects misses."""

    def __init__(self, opts: ExportOptions, reference: Runner, faces: np.ndarray, ctx: ExportContext) -> None:
        self.enabled = opts.validate
        self.reference, self.faces, self.ctx = reference, faces, ctx
        self.reference_emb = reference.embed_faces(faces, 8)
        self.failures: list[str] = []

    def check(self, entry: ArtifactEntry, path: Path, fmt: Format) -> None:
        from ..runners import open_runner
        from .validate import check_parity, compare_runners

        if not self.enabled:
            entry.extra["validated"] = False
            return
        unavailable = fmt.available()
        if unavailable:
            entry.extra["validation"] = f"skipped: {unavailable}"
            return
        with open_runner(path) as runner:
            if entry.precision != "int8":
                entry.parity = compare_runners(self.reference, runner, self.faces, (1, 8), self.reference_emb)
            else:
                # INT8 is judged only on faces its calibration never saw.
                from .int8_validation import calibration_disjoint_faces

                unseen = calibration_disjoint_faces(self.faces, self.ctx.calibration_faces())
                if len(unseen) == 0:
                    raise InputError("every validation face is also a calibration face: pass --val-images with other faces")
                entry.parity = compare_runners(self.reference, runner, unseen, (1, 8))
        problem = check_parity(entry.path, entry.precision, entry.parity)
        if problem:
            self.failures.append(problem)


def run_export(opts: ExportOptions, log: Callable[[str], None] = lambda msg: None) -> ExportReport:
    """Run the whole export; returns the manifest written to the output directory."""
    from ..models.loading import load_student
    from ..runners.torch_runner import TorchRunner

    start = time.perf_counter()
    plan = plan_export(opts)
    check_export_options(opts)
    student = load_student(
        opts.checkpoint, opts.arch, strict=opts.strict, input_size=opts.input_size, mean=opts.mean,
        std=opts.std, channel_order=opts.channel_order, name=opts.name,
    )
    notes = list(student.warnings) + plan.notes
    out_dir = Path(opts.out) if opts.out else Path("export") / student.name
    log(f"loaded {student.arch} from {opts.checkpoint}: {student.params / 1e6:.2f} M params, {student.embedding_size}-d, {student.contract.describe()}")
    faces, face_source = _validation_faces(opts, student.contract)
    notes += validation_notes(len(faces), face_source, opts.validate)
    if not opts.validate:
        face_source = "nothing: NOT validated (--no-validate)"
    reference = TorchRunner(student.module, student.contract).activate()
    # What the artifacts take: the student's contract, with uint8 NHWC input if folded.
    contract = student.contract.with_input_format(INPUT_UINT8_NHWC) if opts.fold_preprocess else student.contract
    manifest = Manifest(model=student.model_info(), preprocess=contract)
    with staged_directory(out_dir, force=opts.force, inputs=export_inputs(opts)) as stage:
        ctx = _export_context(opts, student, contract, stage, log)
        validator = _Validator(opts, reference, faces, ctx)
        notes += _export_fp32_onnx(opts, student, ctx, log)
        if not any(s.format.name == "onnx" and s.precision == "fp32" for s in plan.steps):
            # Not listed as an artifact, but every other artifact is built from it: a broken
            # intermediate must fail here, with its own numbers, not later as a vaguer miss.
            onnx_format = next(f for f in all_formats() if f.name == "onnx")
            validator.check(ArtifactEntry("onnx/model_fp32.onnx", "onnx", "fp32"), ctx.fp32_onnx, onnx_format)
        for step in plan.steps:
            manifest.upsert(_run_step(step, ctx, validator, log))
        for fmt in plan.bundles:
            for entry in fmt.bundle(ctx, manifest, plan.precisions):  # type: ignore[misc]
                manifest.upsert(entry)
        _remove_intermediates(stage, manifest, keep_fp32=any(f.name == "tensorrt" for f in plan.bundles))
        if validator.failures:
            raise ValidationError(
                f"{len(validator.failures)} artifact(s) failed validation against PyTorch on {face_source}: "
                f"{'; '.join(validator.failures)} (pass --no-validate to keep them anyway)"
            )
        manifest.write(stage)
    reference.deactivate()
    return ExportReport(manifest, out_dir, notes, time.perf_counter() - start, face_source)


def _export_context(opts: ExportOptions, student: Any, contract: PreprocessContract, stage: Path,
                    log: Callable[[str], None]) -> ExportContext:
    from ..calib import DEFAULT_SOURCE

    metadata = {
        "edgefkd.version": __version__,
        "edgefkd.model": student.name,
        "edgefkd.arch": student.arch,
        "edgefkd.embedding_size": str(student.embedding_size),
        "edgefkd.checkpoint_sha256": student.checkpoint_sha256,
        **contract.to_metadata(),
    }
    source = opts.calib or DEFAULT_SOURCE
    loaded: list[np.ndarray] = []

    def calibration_faces() -> np.ndarray:
        """Loaded on first use (INT8 only), then shared by every INT8 step and its validation."""
        if not loaded:
            from ..calib import load_calibration_faces

            t0 = time.perf_counter()
            loaded.append(load_calibration_faces(source, contract.input_size, limit=opts.calib_count, seed=0))
            log(f"calibration: {len(loaded[0])} faces from {source} ({time.perf_counter() - t0:.1f}s)")
        return loaded[0]

    options = {"calibration_source": source, "calib": opts.calib, "accuracy_aware": opts.accuracy_aware,
               "pairs": opts.pairs, "max_acc_drop": opts.max_acc_drop, "tensorrt": opts.tensorrt,
               "ort_target": opts.ort_target, "opset": opts.opset}  # fmt: skip
    return ExportContext(
        module=student.module, contract=contract, fp32_onnx=stage / "onnx" / "model_fp32.onnx", stage=stage,
        metadata=metadata, calibration_faces=calibration_faces, keep_fp=opts.keep_fp, calib_method=opts.calib_method,
        log=log, options=options,
    )  # fmt: skip


def _export_fp32_onnx(opts: ExportOptions, student: Any, ctx: ExportContext, log: Callable[[str], None]) -> list[str]:
    """The validated source of every other artifact; returns the exporter's warnings."""
    from .onnx import export_onnx

    t0 = time.perf_counter()
    # export_onnx adds the contract it exports with (folded or not) to the metadata.
    metadata = {k: v for k, v in ctx.metadata.items() if k != "edgefkd.preprocess"}
    result = export_onnx(
        student.module, student.contract, ctx.fp32_onnx,
        opset=opts.opset, fold_preprocess=opts.fold_preprocess, simplify=opts.simplify, exporter=opts.exporter,
        metadata={**metadata, "edgefkd.precision": "fp32"},
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    log(f"ONNX ({result.exporter} exporter, opset {result.opset}): {result.nodes_before} -> {result.nodes_after} nodes after onnxsim"
        f"{'' if result.simplified else ' (not simplified)'} in {seconds:.1f}s")
    ctx.record(ctx.fp32_onnx, export_seconds=round(seconds, 3), onnx={
        "exporter": result.exporter, "opset": result.opset, "nodes_before_simplify": result.nodes_before,
        "nodes": result.nodes_after, "simplified": result.simplified})  # fmt: skip
    return result.warnings


def _run_step(step: ExportStep, ctx: ExportContext, validator: _Validator, log: Callable[[str], None]) -> ArtifactEntry:
    """Export one artifact with its format, describe it for the manifest, validate it."""
    fmt = step.format
    assert fmt.export is not None
    t0 = time.perf_counter()
    try:
        path = fmt.export(ctx, step.precision)
    except ImportError as exc:  # a converter the format's `requires` did not name
        raise InputError(f"format {fmt.name} needs {exc.name or exc}, which is not installed: {fmt.install_hint()}") from None
    info = {"export_seconds": round(time.perf_counter() - t0, 3), **ctx.artifact_info.get(path, {})}
    entry = ArtifactEntry.for_file(ctx.stage, path, fmt.name, step.precision, **_jsonable(info))
    validator.check(entry, path, fmt)
    parity = entry.parity
    log(f"  {entry.path}: {entry.bytes / 1e6:.2f} MB" + (f", cosine min {parity['cosine_min']:.6f}" if parity else ""))
    return entry


def _remove_intermediates(stage: Path, manifest: Manifest, keep_fp32: bool) -> None:
    """ONNX files other formats were made from but nobody asked for (the TensorRT bundle
    builds from the fp32 ONNX, so it stays when TensorRT was asked for)."""
    onnx_dir = stage / "onnx"
    listed = {stage / a.path for a in manifest.artifacts}
    for path in onnx_dir.glob("*.onnx"):
        if path not in listed and not (keep_fp32 and path.name == "model_fp32.onnx"):
            path.unlink()
    if onnx_dir.is_dir() and not any(onnx_dir.iterdir()):
        onnx_dir.rmdir()


def _jsonable(info: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(info, default=str))
