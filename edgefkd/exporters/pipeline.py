"""`edgefkd export`: checkpoint -> ONNX -> (FP16 ONNX, OpenVINO, INT8, TensorRT), each validated.

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
from ..manifest import FORMATS, PRECISIONS, ArtifactEntry, Manifest
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


def run_export(opts: ExportOptions, log: Callable[[str], None] = lambda msg: None) -> ExportReport:
    """Run the whole export; returns the manifest written to the output directory."""
    from ..models.loading import load_student
    from ..runners.torch_runner import TorchRunner
    from .onnx import convert_onnx_fp16, export_onnx
    from .validate import check_parity, compare_runners, embed_in_batches

    start = time.perf_counter()
    formats = _parse_list(opts.formats, FORMATS, "format")
    precisions = _parse_list(opts.precisions, PRECISIONS, "precision")
    if opts.exporter not in ("dynamo", "legacy"):
        raise InputError(f"unknown exporter {opts.exporter!r}; choose dynamo or legacy")
    check_export_options(opts)

    student = load_student(
        opts.checkpoint, opts.arch, strict=opts.strict, input_size=opts.input_size, mean=opts.mean,
        std=opts.std, channel_order=opts.channel_order, name=opts.name,
    )
    notes = list(student.warnings)
    out_dir = Path(opts.out) if opts.out else Path("export") / student.name
    log(f"loaded {student.arch} from {opts.checkpoint}: {student.params / 1e6:.2f} M params, {student.embedding_size}-d, {student.contract.describe()}")

    faces, face_source = _validation_faces(opts, student.contract)
    notes += validation_notes(len(faces), face_source, opts.validate)
    if not opts.validate:
        face_source = "nothing: NOT validated (--no-validate)"
    reference = TorchRunner(student.module, student.contract).activate()
    reference_emb = embed_in_batches(reference, reference.contract.prepare(faces), 8)

    base_meta = {
        "edgefkd.version": __version__,
        "edgefkd.model": student.name,
        "edgefkd.arch": student.arch,
        "edgefkd.embedding_size": str(student.embedding_size),
        "edgefkd.checkpoint_sha256": student.checkpoint_sha256,
    }
    # What the artifacts take: the student's contract, with uint8 NHWC input if folded.
    artifact_contract = (
        student.contract.with_input_format(INPUT_UINT8_NHWC) if opts.fold_preprocess else student.contract
    )
    manifest = Manifest(model=student.model_info(), preprocess=artifact_contract)
    failures: list[str] = []

    def validate(entry: ArtifactEntry, runner: Runner, calibration_faces: np.ndarray | None = None) -> None:
        if not opts.validate:
            entry.extra["validated"] = False
            return
        with runner:
            if calibration_faces is None:
                parity = compare_runners(reference, runner, faces, (1, 8), reference_emb)
            else:
                # INT8 is judged only on faces its calibration never saw.
                from .int8_validation import calibration_disjoint_faces

                unseen = calibration_disjoint_faces(faces, calibration_faces)
                if len(unseen) == 0:
                    raise InputError("every validation face is also a calibration face: pass --val-images with other faces")
                parity = compare_runners(reference, runner, unseen, (1, 8))
        entry.parity = parity
        problem = check_parity(entry.path, entry.precision, parity)
        if problem:
            failures.append(problem)

    with staged_directory(out_dir, force=opts.force, inputs=export_inputs(opts)) as stage:
        from ..runners import open_runner

        def add(path: Path, fmt: str, precision: str, calibration_faces: np.ndarray | None = None, **extra: Any) -> ArtifactEntry:
            entry = ArtifactEntry.for_file(stage, path, fmt, precision, **extra)
            validate(entry, open_runner(path), calibration_faces)
            manifest.upsert(entry)
            parity = entry.parity
            log(f"  {entry.path}: {entry.bytes / 1e6:.2f} MB" + (f", cosine min {parity['cosine_min']:.6f}" if parity else ""))
            return entry

        onnx_dir = stage / "onnx"
        fp32_onnx = onnx_dir / "model_fp32.onnx"
        meta32 = {**base_meta, "edgefkd.precision": "fp32"}
        t0 = time.perf_counter()
        result = export_onnx(
            student.module, student.contract, fp32_onnx, opset=opts.opset, fold_preprocess=opts.fold_preprocess,
            simplify=opts.simplify, exporter=opts.exporter, metadata=meta32,
        )
        notes += result.warnings
        log(f"ONNX ({result.exporter} exporter, opset {result.opset}): {result.nodes_before} -> {result.nodes_after} nodes after onnxsim"
            f"{'' if result.simplified else ' (not simplified)'} in {time.perf_counter() - t0:.1f}s")
        onnx_info = {"exporter": result.exporter, "opset": result.opset, "nodes_before_simplify": result.nodes_before,
                     "nodes": result.nodes_after, "simplified": result.simplified}
        if "onnx" in formats and "fp32" in precisions:
            add(fp32_onnx, "onnx", "fp32", onnx=onnx_info)
        else:
            # Not listed as an artifact, but every other artifact is built from it: a broken
            # intermediate must fail here, with its own numbers, not later as a vaguer miss.
            validate(ArtifactEntry("onnx/model_fp32.onnx", "onnx", "fp32"), open_runner(fp32_onnx))
        if "onnx" in formats and "fp16" in precisions:
            path = convert_onnx_fp16(fp32_onnx, onnx_dir / "model_fp16.onnx", {"edgefkd.precision": "fp16"})
            add(path, "onnx", "fp16")
        if "openvino" in formats:
            from .openvino import export_openvino

            for precision in [p for p in precisions if p in ("fp32", "fp16")]:
                xml = export_openvino(
                    fp32_onnx, stage / "openvino" / f"model_{precision}.xml", fp16=precision == "fp16",
                    metadata={**meta32, **artifact_contract.to_metadata(), "edgefkd.precision": precision},
                )
                add(xml, "openvino", precision)
        if "int8" in precisions:
            _export_int8(opts, formats, artifact_contract, stage, fp32_onnx, add, log, notes)
        if "tensorrt" in formats:
            from .tensorrt import TensorRTOptions, export_tensorrt

            manifest.write(stage)
            for entry in export_tensorrt(stage, manifest, precisions, TensorRTOptions(calib_source=opts.calib, **opts.tensorrt)):
                manifest.upsert(entry)
        if ("onnx" not in formats or "fp32" not in precisions) and "tensorrt" not in formats:
            # The fp32 ONNX was only an intermediate (the TensorRT bundle would build from it).
            fp32_onnx.unlink()
            if not any(onnx_dir.iterdir()):
                onnx_dir.rmdir()
        if failures:
            raise ValidationError(
                f"{len(failures)} artifact(s) failed validation against PyTorch on {face_source}: {'; '.join(failures)}"
                " (pass --no-validate to keep them anyway)"
            )
        manifest.write(stage)
    reference.deactivate()
    return ExportReport(manifest, out_dir, notes, time.perf_counter() - start, face_source)


def _export_int8(
    opts: ExportOptions,
    formats: list[str],
    contract: PreprocessContract,
    stage: Path,
    fp32_onnx: Path,
    add: Callable[..., ArtifactEntry],
    log: Callable[[str], None],
    notes: list[str],
) -> None:
    """Quantize with the calibration set (default: the shipped calib_data/)."""
    from ..calib import DEFAULT_SOURCE, load_calibration_faces

    source = opts.calib or DEFAULT_SOURCE
    t0 = time.perf_counter()
    faces = load_calibration_faces(source, contract.input_size, limit=opts.calib_count, seed=0)
    batches = [contract.prepare(faces[i : i + 32]) for i in range(0, len(faces), 32)]
    log(f"calibration: {len(faces)} faces from {source} ({time.perf_counter() - t0:.1f}s)")
    evaluator = None
    if opts.accuracy_aware:
        if opts.pairs is None:
            raise InputError("--accuracy-aware needs --pairs (a CSV, LFW pairs.txt or insightface .bin)")
        from ..verify.evaluator import PairAccuracy

        evaluator = PairAccuracy(opts.pairs, contract)
    provenance = {"calibration_source": str(source), "calibration_faces": int(len(faces))}
    if "onnx" in formats:
        out = stage / "onnx" / "model_int8_qdq.onnx"
        if evaluator is not None:
            from .accuracy_aware import quantize_onnx_accuracy_aware

            info = quantize_onnx_accuracy_aware(
                fp32_onnx, out, batches, evaluator, opts.max_acc_drop, method=opts.calib_method, keep_fp=opts.keep_fp
            )
            reverted = ", ".join(r["node"] for r in info["reverted"]) or "none"
            log(f"accuracy-aware Q/DQ: fp32 {info['fp32_accuracy']:.2f}% -> int8 {info['int8_accuracy']:.2f}% "
                f"(bound {opts.max_acc_drop} pp); reverted to float: {reverted}")
        else:
            from .quantize_onnx import quantize_onnx_qdq

            info = quantize_onnx_qdq(fp32_onnx, out, batches, method=opts.calib_method, keep_fp=opts.keep_fp)
        add(out, "onnx", "int8", calibration_faces=faces, quantization={**_jsonable(info), **provenance})
    if "openvino" in formats:
        from .openvino_int8 import quantize_openvino_int8

        out = stage / "openvino" / "model_int8.xml"
        info = quantize_openvino_int8(
            fp32_onnx, out, batches, keep_fp=opts.keep_fp,
            accuracy_control=evaluator.from_embed if evaluator is not None else None,
            max_drop=opts.max_acc_drop if evaluator is not None else None,
        )
        if evaluator is not None:
            log(f"accuracy-controlled OpenVINO INT8: fp32 {info['fp32_accuracy']:.2f}% -> int8 {info['int8_accuracy']:.2f}%")
        add(out, "openvino", "int8", calibration_faces=faces, quantization={**_jsonable(info), **provenance})


def _jsonable(info: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(info, default=str))
