"""The benchmark loop: every artifact in its own worker process, driven by the same runners
that export validation and verify-parity use.

Why one process per artifact: runners that share a process share its memory. Allocators
rarely give memory back and backend libraries load once, so the resident-set growth seen
while the third artifact runs says little about that artifact. Each worker's kernel
high-water mark (`ru_maxrss`) is the honest figure: what a deployment that serves only this
artifact from Python needs, interpreter and backend library included. `model_rss_mb` is the
part above the worker's resident size before the backend was loaded. A fresh process also
makes first-inference latency (load + compile + first batch) a cold start for every
artifact, instead of one that profits from caches an earlier artifact warmed.

Timing happens inside the worker, around `runner.infer` only (time.perf_counter_ns); the
inputs are decoded and prepared with the runner's own contract before any timing. Every
backend is timed end to end with the host clock, TensorRT included (upload, every chunk,
download, synchronisation), so rows are comparable; the TensorRT runner's device-only
`compute_times_ms` is a separate measurement, not mixed into this table.
The parent only schedules: with `interleave`, every worker stays alive and the parent asks
each in turn for a short slice of iterations, so drift in machine load hits all equally.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import BackendUnavailable, EdgeFKDError, InputError
from ..manifest import Manifest
from .host import host_info, usable_cores
from .report import STATUS_ERROR, STATUS_SKIPPED, BenchResult, BenchRow, fill_speedups, noise_warnings
from .stats import summarize_ns

OV_HINTS = ("latency", "throughput")
#: OpenVINO inference precisions a row can ask for; "default" is the plugin's own choice
#: (bf16 on CPUs with AVX512-BF16/AMX, f32 elsewhere).
OV_PRECISIONS = ("f32", "bf16", "f16", "default")
#: Slices per measurement when interleaving: enough for drift to spread evenly.
INTERLEAVE_ROUNDS = 10


@dataclass(frozen=True)
class BenchTarget:
    """One thing to measure: an artifact file, or the PyTorch reference from a manifest."""

    label: str
    backend: str  # the runtime that runs it ("torch", "onnxruntime", "openvino", ...)
    precision: str
    format: str | None = None  # the artifact's format name (None for the PyTorch row)
    file: str | None = None  # absolute path of the artifact (None for the PyTorch row)
    path: str | None = None  # as the manifest/user named it (for display and parity matching)
    bytes: int | None = None
    inference_precision: str | None = None  # OpenVINO only
    checkpoint: str | None = None  # PyTorch only
    arch: str | None = None
    preprocess: dict[str, Any] | None = None
    skip_reason: str | None = None


@dataclass(frozen=True)
class BenchSettings:
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    warmup: int = 10
    iters: int | None = 100
    duration_s: float | None = None
    threads: int | None = None  # None: all usable cores
    device: str = "CPU"
    ov_hint: str = "latency"
    interleave: bool = False
    images: tuple[str, ...] = ()  # face files; empty: random faces

    def __post_init__(self) -> None:
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise InputError(f"batch sizes must be positive integers, got {list(self.batch_sizes)}")
        if self.ov_hint not in OV_HINTS:
            raise InputError(f"--ov-hint must be one of {', '.join(OV_HINTS)}, got {self.ov_hint!r}")
        if (self.iters is None) == (self.duration_s is None):
            raise InputError("give either --iters or --duration, not both")
        if self.iters is not None and self.iters < 1:
            raise InputError(f"--iters must be at least 1, got {self.iters}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise InputError(f"--duration must be positive, got {self.duration_s}")
        if self.warmup < 0:
            raise InputError(f"--warmup must be >= 0, got {self.warmup}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads must be at least 1, got {self.threads}")
        object.__setattr__(self, "batch_sizes", tuple(sorted(set(int(b) for b in self.batch_sizes))))

    @property
    def thread_count(self) -> int:
        return self.threads or usable_cores()


# -- what to measure -------------------------------------------------------------------------
def _artifact_bytes(file: Path) -> int | None:
    """The artifact's size on disk, its companion files (OpenVINO .bin...) included."""
    from ..formats import format_for_path

    if not file.exists():
        return None
    try:
        companions = format_for_path(file).companions(file)
    except InputError:  # a checkpoint, not an artifact of a known format
        companions = []
    return file.stat().st_size + sum(p.stat().st_size for p in companions)


def _expand_openvino(target: BenchTarget, ov_precisions: Sequence[str]) -> list[BenchTarget]:
    """One OpenVINO target per requested inference precision (f32 first: what parity checks)."""
    out = []
    for prec in ov_precisions:
        suffix = "" if prec == "f32" else f"@{prec}"
        out.append(replace(target, label=target.label + suffix, inference_precision=prec))
    return out


def targets_from_manifest(
    export_dir: str | os.PathLike[str], ov_precisions: Sequence[str] = ("f32",), include_torch: bool = True,
    verify_hash: bool = True, trust_manifest: bool = False,
) -> list[BenchTarget]:
    """PyTorch reference (baseline) + every artifact the export's manifest lists.

    Artifacts that cannot run here (a deferred TensorRT engine, a backend that is not
    installed, a file that is gone) become targets with a skip reason. Paths leading out
    of the export folder and changed files are refused (Manifest.artifact_file), and so is
    a manifest arch that would import code unless `trust_manifest`.
    """
    from ..errors import MissingArtifactError
    from ..models.loading import check_manifest_arch

    root = Path(export_dir)
    manifest = Manifest.read(root)
    targets: list[BenchTarget] = []
    if include_torch:
        check_manifest_arch(manifest.model.get("arch"), root / "manifest.json", trust_manifest)
        ckpt_text = str(manifest.model.get("checkpoint") or "")
        ckpt = Path(ckpt_text)
        if ckpt_text and not ckpt.is_absolute() and not ckpt.exists() and (root / ckpt).exists():
            ckpt = root / ckpt
        reason = None if ckpt_text and ckpt.is_file() else f"reference checkpoint {ckpt_text or '?'} not found"
        if reason is None and ckpt.suffix == ".pt2":
            from ..models.pt2_safety import check_pt2_archive

            check_pt2_archive(ckpt)  # here, not in the worker: a refused file is an error, not a skipped row
        targets.append(
            BenchTarget(
                label="pytorch-eager",
                backend="torch",
                precision="fp32",
                path=ckpt_text or None,
                checkpoint=str(ckpt.resolve()) if reason is None else None,
                arch=manifest.model.get("arch"),
                preprocess=manifest.preprocess.to_dict(),
                bytes=_artifact_bytes(ckpt),
                skip_reason=reason,
            )
        )
    from ..formats import artifact_file, format_names, get_format, runnable_reason

    for entry in manifest.artifacts:
        file = artifact_file(root, entry).resolve()
        reason = runnable_reason(root, entry)
        if reason is None:
            Manifest.artifact_file(root, entry, verify_hash)
        backend = get_format(entry.format).runtime_name if entry.format in format_names() else entry.format
        target = BenchTarget(
            label=entry.path, backend=backend, precision=entry.precision, format=entry.format, file=str(file),
            path=entry.path, bytes=entry.bytes if entry.bytes is not None else _artifact_bytes(file), skip_reason=reason,
        )  # fmt: skip
        targets += _expand_openvino(target, ov_precisions) if entry.format == "openvino" and reason is None else [target]
    return targets


def targets_from_files(files: Sequence[str | os.PathLike[str]], ov_precisions: Sequence[str] = ("f32",)) -> list[BenchTarget]:
    """Standalone artifacts; each carries its contract in its own metadata."""
    from ..formats import format_for_path

    targets: list[BenchTarget] = []
    for name in files:
        file = Path(name)
        fmt = format_for_path(file)
        reason = None if file.exists() else f"artifact file missing: {file}"
        target = BenchTarget(
            label=file.name, backend=fmt.runtime_name, precision="?", format=fmt.name, file=str(file.resolve()),
            path=str(file), bytes=_artifact_bytes(file), skip_reason=reason or fmt.available(),
        )  # fmt: skip
        targets += _expand_openvino(target, ov_precisions) if fmt.name == "openvino" and target.skip_reason is None else [target]
    return targets


# -- the worker (runs in its own process) ----------------------------------------------------
def _peak_rss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if os.uname().sysname == "Darwin" else peak * 1024  # Linux reports KiB


def _open_target_runner(target: BenchTarget, settings: BenchSettings) -> Any:
    from ..runners import open_runner

    if target.backend == "torch":
        from ..models.loading import load_student
        from ..runners.torch_runner import TorchRunner

        pre = target.preprocess or {}
        student = load_student(
            target.checkpoint, target.arch, input_size=tuple(pre["input_size"]) if pre else None,
            mean=tuple(pre["mean"]) if pre else None, std=tuple(pre["std"]) if pre else None,
            channel_order=pre.get("channel_order"),
        )  # fmt: skip
        return TorchRunner(student.module, student.contract, name=target.label, threads=settings.thread_count)
    precision = None if target.precision == "?" else target.precision
    # Every runner gets every option; each format's runner takes those it understands.
    providers = None
    if target.backend == "onnxruntime" and settings.device.upper() not in ("CPU", "AUTO"):
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return open_runner(
        target.file, precision=precision, device=settings.device,
        inference_precision=None if target.inference_precision == "default" else target.inference_precision,
        performance_hint=settings.ov_hint.upper(), threads=settings.thread_count, providers=providers, name=target.label,
    )  # fmt: skip


def _worker_faces(images: Sequence[str], size: tuple[int, int], count: int) -> np.ndarray:
    """`count` faces at `size`: the given images cycled, else random pixels (seeded)."""
    from ..imaging import load_faces

    if images:
        picked = [images[i % len(images)] for i in range(min(count, len(images)))]
        faces = load_faces(picked, size)
        return faces[np.arange(count) % len(faces)]
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(count, *size, 3), dtype=np.uint8)


def _time_sync(runner: Any, x: np.ndarray, iters: int | None, duration_s: float | None) -> list[int]:
    """Per-call timings in ns: the host clock around one synchronous `infer`."""
    timings: list[int] = []
    deadline = time.perf_counter() + duration_s if duration_s is not None else math.inf
    while (iters is None or len(timings) < iters) and (iters is not None or time.perf_counter() < deadline or not timings):
        start = time.perf_counter_ns()
        runner.infer(x)
        timings.append(time.perf_counter_ns() - start)
    return timings


def _time_openvino_async(runner: Any, x: np.ndarray, iters: int | None, duration_s: float | None) -> tuple[list[int], int, int]:
    """OpenVINO throughput mode: keep the plugin's optimal number of infer requests in flight.

    Returns per-request latencies, the wall time of the whole slice, and the number of
    requests in flight. The requests are waited on in submission order (no Python completion
    callbacks: tearing down a compiled model after an AsyncInferQueue with a Python callback
    deadlocked here), so a latency runs from submission to the moment its completion is
    observed, an upper bound by at most one request's time. Uses the runner's compiled
    model, so the artifact is loaded and configured exactly as every command loads it.
    """
    import openvino as ov

    compiled = runner.compiled
    nireq = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    requests = [compiled.create_infer_request() for _ in range(nireq)]
    for request in requests:
        request.set_input_tensor(0, ov.Tensor(x))
    submitted_at: list[int | None] = [None] * nireq
    latencies: list[int] = []
    start = time.perf_counter_ns()
    deadline = time.perf_counter() + duration_s if duration_s is not None else math.inf
    submitted = 0
    slot = 0
    while (iters is not None and submitted < iters) or (iters is None and (time.perf_counter() < deadline or not submitted)):
        if submitted_at[slot] is not None:
            requests[slot].wait()
            latencies.append(time.perf_counter_ns() - submitted_at[slot])  # type: ignore[operator]
        submitted_at[slot] = time.perf_counter_ns()
        requests[slot].start_async()
        submitted += 1
        slot = (slot + 1) % nireq
    for offset in range(nireq):  # drain in submission order
        index = (slot + offset) % nireq
        if submitted_at[index] is not None:
            requests[index].wait()
            latencies.append(time.perf_counter_ns() - submitted_at[index])  # type: ignore[operator]
    return latencies, time.perf_counter_ns() - start, nireq


def _uses_async(target: BenchTarget, settings: BenchSettings) -> bool:
    return target.backend == "openvino" and settings.ov_hint == "throughput"


def _worker_main(conn: Any, target: BenchTarget, settings: BenchSettings) -> None:
    """Load one artifact, report its cold first inference, then time slices on request."""
    import psutil

    try:
        rss_before = psutil.Process().memory_info().rss
        # First inference = open (read metadata / load the checkpoint) + activate (compile)
        # + the first batch; preparing the inputs in between is not part of it.
        start = time.perf_counter_ns()
        runner = _open_target_runner(target, settings)
        open_ns = time.perf_counter_ns() - start
        faces = _worker_faces(settings.images, runner.contract.input_size, max(settings.batch_sizes))
        inputs = {b: runner.contract.prepare(faces[:b]) for b in settings.batch_sizes}
        start = time.perf_counter_ns()
        runner.activate()
        runner.infer(inputs[settings.batch_sizes[0]])
        first_ns = open_ns + time.perf_counter_ns() - start
        ready = {
            "first_ns": first_ns,
            "precision": runner.precision,
            "describe": runner.describe(),
        }
        conn.send(("ready", ready))
        while True:
            command, batch, warmup, iters, duration_s = conn.recv()
            if command == "stop":
                break
            x = inputs[batch]
            for _ in range(warmup):
                runner.infer(x)
            if _uses_async(target, settings):
                timings, wall_ns, nireq = _time_openvino_async(runner, x, iters, duration_s)
                conn.send(("timings", {"ns": timings, "wall_ns": wall_ns, "nireq": nireq}))
            else:
                conn.send(("timings", {"ns": _time_sync(runner, x, iters, duration_s)}))
        runner.deactivate()
        peak = _peak_rss_bytes()
        conn.send(("done", {"peak_rss": peak, "rss_before": rss_before}))
    except BackendUnavailable as exc:
        conn.send(("skipped", str(exc)))
    except EdgeFKDError as exc:
        conn.send(("error", str(exc)))
    except Exception as exc:  # a backend's own failure must not take the whole run down
        conn.send(("error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:240] if str(exc) else ''}"))
    finally:
        conn.close()


class _Worker:
    """The parent's handle on one worker process."""

    def __init__(self, target: BenchTarget, settings: BenchSettings) -> None:
        ctx = mp.get_context("spawn")
        self.target = target
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, target, settings), daemon=True)
        self.process.start()
        child.close()
        self.failure: tuple[str, str] | None = None
        self.ready: dict[str, Any] = {}
        self.timings: dict[int, list[int]] = {}
        self.async_wall: dict[int, list[tuple[int, int]]] = {}
        self.nireq: int | None = None
        self.memory: dict[str, int] = {}

    def _receive(self) -> tuple[str, Any] | None:
        try:
            kind, payload = self.conn.recv()
        except (EOFError, ConnectionResetError):
            self.process.join(timeout=10)
            self.failure = (STATUS_ERROR, f"worker process died (exit code {self.process.exitcode})")
            return None
        if kind in ("skipped", "error"):
            self.failure = (STATUS_SKIPPED if kind == "skipped" else STATUS_ERROR, payload)
            return None
        return kind, payload

    def wait_ready(self) -> bool:
        message = self._receive()
        if message is not None:
            self.ready = message[1]
        return message is not None

    def measure(self, batch: int, warmup: int, iters: int | None, duration_s: float | None) -> None:
        if self.failure:
            return
        self.conn.send(("measure", batch, warmup, iters, duration_s))
        message = self._receive()
        if message is None:
            return
        payload = message[1]
        self.timings.setdefault(batch, []).extend(payload["ns"])
        if "wall_ns" in payload:
            self.async_wall.setdefault(batch, []).append((len(payload["ns"]), payload["wall_ns"]))
            self.nireq = payload["nireq"]

    def stop(self) -> None:
        if not self.failure:
            self.conn.send(("stop", 0, 0, 0, 0))
            message = self._receive()
            if message is not None:
                self.memory = message[1]
        self.process.join(timeout=30)
        if self.process.is_alive():  # our own child, stuck in a backend: end it
            self.process.kill()
            self.process.join()
        self.conn.close()

    def rows(self, settings: BenchSettings) -> list[BenchRow]:
        t = self.target
        precision = self.ready.get("precision", t.precision) if t.precision == "?" else t.precision
        base = dict(artifact=t.label, backend=t.backend, precision=precision, path=t.path, bytes=t.bytes,
                    inference_precision=t.inference_precision)  # fmt: skip
        if self.failure:
            return [BenchRow(batch=None, status=self.failure[0], reason=self.failure[1], **base)]
        timer = "perf_counter_ns"
        peak = self.memory.get("peak_rss")
        rows = []
        for batch in settings.batch_sizes:
            stats = summarize_ns(self.timings[batch])
            if batch in self.async_wall:
                done = sum(n for n, _ in self.async_wall[batch])
                wall = sum(w for _, w in self.async_wall[batch])
                throughput = done * batch / (wall / 1e9)
            else:
                throughput = stats.throughput_ips(batch)
            rows.append(
                BenchRow(
                    batch=batch, latency=stats, throughput_ips=throughput,
                    first_inference_ms=self.ready["first_ns"] / 1e6,
                    peak_rss_mb=peak / 2**20 if peak else None,
                    model_rss_mb=(peak - self.memory["rss_before"]) / 2**20 if peak else None,
                    mode="async" if batch in self.async_wall else "sync", timer=timer, **base,
                )  # fmt: skip
            )
        return rows


# -- scheduling ------------------------------------------------------------------------------
#: Untimed iterations at the start of every interleaved slice (see run_benchmark).
SLICE_REWARM = 5


def _slices(settings: BenchSettings, rounds: int) -> list[tuple[int | None, float | None]]:
    """Split one measurement into `rounds` slices of iterations or seconds."""
    if settings.iters is not None:
        rounds = max(1, min(rounds, settings.iters))
        base, extra = divmod(settings.iters, rounds)
        return [(base + (1 if i < extra else 0), None) for i in range(rounds)]
    assert settings.duration_s is not None
    return [(None, settings.duration_s / rounds)] * rounds


def run_benchmark(
    targets: Sequence[BenchTarget],
    settings: BenchSettings,
    progress: Callable[[str, int], None] | None = None,
) -> BenchResult:
    """Measure every target at every batch size; skipped targets become rows with reasons.

    `progress(description, advance)` is called as work completes; the total number of
    steps is `progress_total(targets, settings)`.
    """
    step = progress or (lambda description, advance: None)
    runnable = [t for t in targets if t.skip_reason is None]
    rows = [BenchRow(artifact=t.label, backend=t.backend, precision=t.precision, batch=None, path=t.path, bytes=t.bytes,
                     status=STATUS_SKIPPED, reason=t.skip_reason) for t in targets if t.skip_reason]  # fmt: skip
    workers: list[_Worker] = []

    def start(target: BenchTarget) -> _Worker:
        step(f"loading {target.label}", 0)
        worker = _Worker(target, settings)
        workers.append(worker)
        worker.wait_ready()
        step(f"loaded {target.label}", 1)
        return worker

    try:
        if settings.interleave:
            for target in runnable:
                start(target)
            slices = _slices(settings, INTERLEAVE_ROUNDS)
            for batch in settings.batch_sizes:
                for worker in workers:
                    worker.measure(batch, settings.warmup, 0, None)
                for index, (iters, duration_s) in enumerate(slices):
                    # Rotate the starting worker so none always runs right after a given other.
                    shift = index % max(1, len(workers))
                    for worker in workers[shift:] + workers[:shift]:
                        # A few untimed runs per slice: the worker that ran before leaves
                        # cold caches and thread pools still spin-waiting; timing at once
                        # doubled batch-1 p50s and their CV in a measured run.
                        worker.measure(batch, SLICE_REWARM, iters, duration_s)
                    step(f"batch {batch}: round {index + 1}/{len(slices)}", len(workers))
        else:
            for target in runnable:
                worker = start(target)
                for batch in settings.batch_sizes:
                    step(f"{target.label} batch {batch}", 0)
                    worker.measure(batch, settings.warmup, settings.iters, settings.duration_s)
                    step(f"{target.label} batch {batch}", len(_slices(settings, INTERLEAVE_ROUNDS)))
                worker.stop()
    finally:
        for worker in workers:
            if worker.process.is_alive() or not worker.conn.closed:
                worker.stop()
    for worker in workers:
        rows += worker.rows(settings)
    fill_speedups(rows)
    result = BenchResult(host=host_info(settings.thread_count), settings=settings_record(settings), rows=rows)
    result.warnings += noise_warnings(rows)
    return result


def progress_total(targets: Sequence[BenchTarget], settings: BenchSettings) -> int:
    runnable = sum(1 for t in targets if t.skip_reason is None)
    return runnable * (1 + len(settings.batch_sizes) * len(_slices(settings, INTERLEAVE_ROUNDS)))


def settings_record(settings: BenchSettings) -> dict[str, Any]:
    """The `settings` object of benchmark.json."""
    record = asdict(settings)
    record["batch_sizes"] = list(settings.batch_sizes)
    record["threads"] = settings.thread_count
    record["images"] = len(settings.images)
    record["inputs"] = f"{len(settings.images)} real face images" if settings.images else "random faces (seed 0)"
    record["memory"] = (
        "peak_rss_mb: kernel high-water mark (ru_maxrss) of a worker process that held only this artifact "
        "(Python, numpy and the backend library included); model_rss_mb: the part above the worker's "
        "resident size before the artifact was loaded"
    )
    return record


def default_image_files(images_dir: str | os.PathLike[str] | None, limit: int) -> tuple[str, ...]:
    """Face files for real inputs (the first `limit` of the folder, sorted), or none."""
    from ..imaging import list_images

    if images_dir is None:
        return ()
    files = list_images(images_dir)
    if not files:
        raise InputError(f"no images found in {images_dir}")
    return tuple(str(p) for p in files[:limit])


__all__ = [
    "BenchTarget", "BenchSettings", "targets_from_manifest", "targets_from_files", "run_benchmark",
    "progress_total", "default_image_files", "OV_HINTS", "OV_PRECISIONS",
]  # fmt: skip
