"""verify-parity: embed the pair images with the reference, every artifact and the teacher,
then judge each artifact with agreement, verification, drift and teacher-space metrics.

Images are decoded once per batch and shared by every model; each model gets them fitted
to its own contract input size and prepared only through its contract. Only embeddings
are kept, so memory grows with (images x embedding size), not with pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..contract import PreprocessContract, override_contract
from ..errors import BackendUnavailable, InputError, MissingArtifactError
from ..imaging import fit_face
from ..manifest import MANIFEST_NAME, Manifest
from .datasets import PairSet
from .judge import ParityResult

PYTORCH = "pytorch"


@dataclass
class ModelSource:
    """Something that can embed faces: the PyTorch reference, an artifact, the teacher."""

    label: str
    path: str
    format: str  # pytorch, or a name from the table of formats
    precision: str
    open: Callable[[], Any] | None  # -> inactive Runner; None when skipped
    skip_reason: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    #: a listed artifact whose file is gone: a failure, unlike a backend absent by design
    missing: bool = False


@dataclass
class Gates:
    min_cosine: float = 0.99
    max_acc_drop: float = 0.5  # percentage points
    max_teacher_drop: float = 1.0  # percentage points


@dataclass
class ParityOptions:
    batch_size: int = 32
    flip: bool = False
    folds: int = 10
    #: paired bootstrap resamples behind each gate's interval (0: point estimates only)
    bootstrap: int = 1000
    gates: Gates = field(default_factory=Gates)
    protocol: str = "insightface"
    seed: int = 0
    #: what an inconclusive verdict exits as: None (exit 3), "pass" or "fail"
    inconclusive_as: str | None = None


# -- building model sources ---------------------------------------------------------------


def _checkpoint_source(
    label: str,
    checkpoint: str | Path,
    arch: str | None,
    contract: PreprocessContract | None = None,
    input_size: str | None = None,
    mean: str | None = None,
    std: str | None = None,
    channel_order: str | None = None,
) -> ModelSource:
    """A PyTorch checkpoint loaded with load_student; `contract` (from a manifest) first, then overrides."""
    from ..models.loading import load_student

    if contract is not None:
        contract = override_contract(contract, input_size, mean, std, channel_order)
        input_size, mean, std, channel_order = (
            contract.input_size, contract.mean, contract.std, contract.channel_order,  # type: ignore[assignment]
        )
    loaded = load_student(
        checkpoint, arch, input_size=input_size, mean=mean, std=std, channel_order=channel_order
    )

    def open_torch() -> Any:
        from ..runners.torch_runner import TorchRunner

        return TorchRunner(loaded.module, loaded.contract, name=label)

    return ModelSource(
        label, str(checkpoint), PYTORCH, "fp32", open_torch,
        info={"arch": loaded.arch, "checkpoint_sha256": loaded.checkpoint_sha256, "contract": loaded.contract.to_dict()},
    )


def _manifest_checkpoint(export_dir: Path, manifest: Manifest) -> Path:
    raw = manifest.model.get("checkpoint")
    if not raw:
        raise InputError(f"{export_dir / MANIFEST_NAME} names no checkpoint; pass --reference CHECKPOINT")
    for candidate in (Path(raw), export_dir / raw):
        if candidate.is_file():
            return candidate
    raise InputError(f"reference checkpoint {raw} (from {export_dir / MANIFEST_NAME}) not found; pass --reference CHECKPOINT")


def _artifact_source(path: Path, fmt: str, precision: str | None, contract: PreprocessContract | None = None,
                     ov_device: str = "CPU", label: str | None = None) -> ModelSource:
    from ..runners import open_runner

    def open_artifact() -> Any:
        return open_runner(path, contract=contract, precision=precision, device=ov_device, name=label or path.name)

    return ModelSource(label or path.name, str(path), fmt, precision or "?", open_artifact)


def find_export_dir(artifact: Path) -> Path | None:
    """The export directory holding a standalone artifact (its folder or the one above)."""
    for folder in (artifact.parent, artifact.parent.parent):
        if (folder / MANIFEST_NAME).is_file():
            return folder
    return None


def export_artifacts(export_dir: Path, manifest: Manifest, ov_device: str = "CPU", verify_hash: bool = True) -> list[ModelSource]:
    """Every artifact of an export's manifest: deferred ones as skipped rows, a missing file as
    a failure; paths resolved inside the export folder and hashes checked (Manifest.artifact_file)."""
    from ..formats import artifact_file, runnable_reason

    sources = []
    for entry in manifest.artifacts:
        path = artifact_file(export_dir, entry)
        # The manifest's own "reason" (how to build it) stays in the manifest; the row says why not here.
        reason = runnable_reason(export_dir, entry)
        missing = reason is not None and reason.startswith("artifact file missing")
        if reason is None:
            Manifest.artifact_file(export_dir, entry, verify_hash)
        if reason:
            sources.append(ModelSource(entry.path, str(path), entry.format, entry.precision, None, reason, missing=missing))
        else:
            sources.append(_artifact_source(path, entry.format, entry.precision, ov_device=ov_device, label=entry.path))
    return sources


def standalone_artifact(path: Path, ov_device: str = "CPU") -> ModelSource:
    from ..runners import artifact_format, read_artifact_metadata

    meta = read_artifact_metadata(path)
    return _artifact_source(path, artifact_format(path), meta.get("edgefkd.precision"), ov_device=ov_device)


def teacher_source(
    spec: str | Path,
    arch: str | None = None,
    input_size: str | None = None,
    mean: str | None = None,
    std: str | None = None,
    channel_order: str | None = None,
    ov_device: str = "CPU",
    trust_manifest: bool = False,
) -> ModelSource:
    """The teacher: a checkpoint, an export directory (its checkpoint) or an artifact of any format."""
    from ..formats import all_formats
    from ..models.loading import check_manifest_arch
    from ..runners import artifact_contract, artifact_format

    path = Path(spec)
    if path.is_dir():
        manifest = Manifest.read(path)
        if arch is None:
            check_manifest_arch(manifest.model.get("arch"), path / MANIFEST_NAME, trust_manifest)
        return _checkpoint_source(
            "teacher", _manifest_checkpoint(path, manifest), arch or manifest.model.get("arch"), manifest.preprocess,
            input_size, mean, std, channel_order,
        )
    if not path.is_file():
        raise InputError(f"teacher not found: {path}")
    if any(fmt.matches(path) for fmt in all_formats()):
        contract = artifact_contract(path)
        overrides = (input_size, mean, std, channel_order)
        if contract is None and all(v is None for v in overrides):
            raise InputError(f"teacher {path} carries no edgefkd contract; pass --teacher-input-size/-mean/-std/-channel-order")
        if any(v is not None for v in overrides):
            from ..models.registry import ARCFACE_CONTRACT

            contract = override_contract(contract or ARCFACE_CONTRACT, *overrides)
        return _artifact_source(path, artifact_format(path), None, contract, ov_device, label="teacher")
    return _checkpoint_source("teacher", path, arch, None, input_size, mean, std, channel_order)


# -- embedding ----------------------------------------------------------------------------


@dataclass
class Embedded:
    source: ModelSource
    embeddings: np.ndarray | None = None
    contract: PreprocessContract | None = None
    backend: dict[str, Any] = field(default_factory=dict)
    activate_seconds: float = 0.0
    embed_seconds: float = 0.0
    #: images per inference call (the artifact's own limit when below --batch-size)
    batch_limit: int = 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:240]


def _infer(runner: Any, faces_rgb: np.ndarray) -> np.ndarray:
    try:
        return runner.embed_faces(faces_rgb)
    except Exception as exc:  # backends raise their own exception types; report one line
        raise InputError(f"{runner.name}: inference failed: {_first_line(exc)}") from None


def _embed_batch(runner: Any, faces_rgb: np.ndarray, flip: bool) -> np.ndarray:
    emb = _infer(runner, faces_rgb)
    if flip:
        # Flip test: the embedding of the face plus that of its mirror image.
        emb = emb + _infer(runner, np.ascontiguousarray(faces_rgb[:, :, ::-1]))
    return emb


def activate_source(result: Embedded, batch_size: int) -> Any | None:
    """Open and activate a source's runner and record it in `result`; None (with the reason) if it cannot run here."""
    if result.source.open is None:
        return None
    try:
        runner = result.source.open()
        runner.activate()
    except BackendUnavailable as exc:
        result.source.skip_reason = str(exc)
        return None
    except ImportError as exc:
        result.source.skip_reason = f"backend not installed: {exc}"
        return None
    describe_runner(result, runner, batch_size)
    return runner


def describe_runner(result: Embedded, runner: Any, batch_size: int) -> None:
    """Record an active runner's contract, backend, timing and batch limit in `result`."""
    result.activate_seconds = runner.activate_seconds or 0.0
    result.batch_limit = min(batch_size, runner.max_batch or batch_size)
    result.contract = runner.contract
    result.backend = runner.describe()
    if result.source.precision == "?":
        result.source.precision = runner.precision


def embed_all(
    pairs: PairSet,
    sources: Sequence[ModelSource],
    batch_size: int,
    flip: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> list[Embedded]:
    """Embed every unique image with every runnable source, decoding each image once.

    A source whose backend is not available here (BackendUnavailable, or TensorRT not
    importable) becomes a skipped row rather than an error.
    """
    if batch_size <= 0:
        raise InputError(f"--batch-size must be positive, got {batch_size}")
    results = [Embedded(s) for s in sources]
    runners: list[tuple[Embedded, Any]] = []
    try:
        for result in results:
            runner = activate_source(result, batch_size)
            if runner is not None:
                runners.append((result, runner))
        chunks: dict[int, list[np.ndarray]] = {id(r): [] for r, _ in runners}
        for _, decoded in pairs.iter_decoded(batch_size):
            fitted: dict[tuple[int, int], np.ndarray] = {}
            for result, runner in runners:
                size = runner.contract.input_size
                if size not in fitted:
                    fitted[size] = np.stack([fit_face(face, size) for face in decoded])
                start = time.perf_counter()
                chunks[id(result)].append(_embed_batch(runner, fitted[size], flip))
                result.embed_seconds += time.perf_counter() - start
            if on_batch:
                on_batch(len(decoded))
        for result, _ in runners:
            result.embeddings = np.concatenate(chunks[id(result)])
    finally:
        for _, runner in runners:
            runner.deactivate()
    return results


# -- orchestration ------------------------------------------------------------------------


@dataclass
class ReferenceOptions:
    """--reference CHECKPOINT and the loading options shared with export."""

    checkpoint: str | None = None
    arch: str | None = None
    input_size: str | None = None
    mean: str | None = None
    std: str | None = None
    channel_order: str | None = None


@dataclass
class Targets:
    reference: ModelSource
    artifacts: list[ModelSource]
    #: where the report goes unless --report says otherwise
    default_report_dir: Path
    #: False when --no-verify-hash let manifest artifacts through unchecked
    hashes_verified: bool = True


def resolve_targets(
    targets: Sequence[str | Path], ref: ReferenceOptions, ov_device: str = "CPU", verify_hash: bool = True,
    trust_manifest: bool = False,
) -> Targets:
    """Export directories and standalone artifacts -> the reference and the artifacts to verify.

    A manifest's own arch is used only when it runs no code, unless `trust_manifest`.
    """
    from ..models.loading import check_manifest_arch

    if not targets:
        raise InputError("give an export directory or at least one artifact")
    artifacts: list[ModelSource] = []
    export_dirs: list[Path] = []
    report_dir: Path | None = None
    for target in map(Path, targets):
        if target.is_dir():
            manifest_dir: Path | None = target
            artifacts += export_artifacts(target, Manifest.read(target), ov_device, verify_hash)
        elif target.is_file():
            manifest_dir = find_export_dir(target)
            artifacts.append(standalone_artifact(target, ov_device))
        else:
            raise InputError(f"not found: {target}")
        if manifest_dir is not None and manifest_dir not in export_dirs:
            export_dirs.append(manifest_dir)
        if report_dir is None:
            report_dir = (target if target.is_dir() else target.parent) / "parity"
    if not artifacts:
        raise InputError(f"{targets[0]} lists no artifacts to verify")
    manifest = Manifest.read(export_dirs[0]) if export_dirs else None
    contract = manifest.preprocess if manifest else None
    if ref.arch is None and manifest is not None:
        check_manifest_arch(manifest.model.get("arch"), export_dirs[0] / MANIFEST_NAME, trust_manifest)
    if ref.checkpoint is not None:
        arch = ref.arch or (manifest.model.get("arch") if manifest else None)
        reference = _checkpoint_source(
            "pytorch", ref.checkpoint, arch, contract, ref.input_size, ref.mean, ref.std, ref.channel_order
        )
    elif manifest is not None:
        reference = _checkpoint_source(
            "pytorch", _manifest_checkpoint(export_dirs[0], manifest), ref.arch or manifest.model.get("arch"), contract,
            ref.input_size, ref.mean, ref.std, ref.channel_order,
        )
    else:
        raise InputError("artifacts outside an export directory need --reference CHECKPOINT (with --arch and its preprocessing)")
    assert report_dir is not None
    return Targets(reference, artifacts, report_dir, hashes_verified=verify_hash)


def run_parity(
    pair_sets: Sequence[PairSet],
    targets: Targets,
    teacher: ModelSource | None,
    options: ParityOptions,
    on_batch: Callable[[int], None] | None = None,
) -> ParityResult:
    """Embed every set with every model in one activation (each image decoded once), judge each set."""
    from .judge import judge_sets
    from .multiset import concat_pair_sets, resize_warnings

    combined, slices = concat_pair_sets(pair_sets)
    sources = [targets.reference, *targets.artifacts] + ([teacher] if teacher else [])
    embedded = embed_all(combined, sources, options.batch_size, options.flip, on_batch)
    for model in (embedded[0], embedded[-1] if teacher else None):
        if model is not None and model.embeddings is None:
            raise BackendUnavailable(f"{model.source.label} could not run here: {model.source.skip_reason}")
    per_set = []
    for pair_set, part in zip(pair_sets, slices):
        views = [replace(e, embeddings=None if e.embeddings is None else e.embeddings[part]) for e in embedded]
        per_set.append((pair_set, views))
    sizes = sorted({e.contract.input_size for e in embedded if e.contract is not None})
    result = judge_sets(per_set, teacher is not None, options, resize_warnings(combined, slices, pair_sets, sizes))
    result.report["options"]["artifact_hashes_verified"] = targets.hashes_verified
    return result
