"""Embedding many faces with many models: a local process pool, or Ray on a cluster.

The work is cut into shards of whole inference batches. A shard is a list of FaceItems
(image id, where the image lives, optional five landmarks); whoever embeds a shard reads
and aligns its faces itself, so pixels never travel through the driver:

- `local`: a process pool decodes and aligns shards (the part that is pure Python and
  scales with cores) while the driver runs every model on each shard as it arrives;
- `ray`: for each model, actors that open its runner once each embed shards and return
  (image ids, embeddings); a task lost with its worker is retried on a restarted actor.

Both engines cut the same shards and run the same batches through the same runner code,
so the embeddings are bit-identical for the same artifact and backend. Only embeddings are
kept, in float32 or (`storage_dtype="float16"`) half the memory: float32 IJB-C
(~470k faces x 512) is ~1 GB per model.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import InputError
from ..imaging import decode_image, fit_face
from .parity import Embedded, ModelSource, _embed_batch, activate_source

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class FaceItem:
    """One face: a stable id, where it lives (path or fsspec URL), optional (5, 2) landmarks."""

    key: str
    location: str
    landmarks: np.ndarray | None = None


@dataclass
class EngineOptions:
    engine: str = "local"
    #: local: decoding processes (1: decode in the driver); ray: actors per model (None: the cluster's CPUs)
    workers: int | None = None
    ray_address: str | None = None
    batch_size: int = 32
    #: inference batches per shard
    batches_per_shard: int = 8
    flip: bool = False
    storage_dtype: str = "float32"

    def check(self) -> None:
        if self.engine not in ENGINES:
            raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.storage_dtype not in ("float32", "float16"):
            raise InputError(f"--embedding-dtype must be float32 or float16, got {self.storage_dtype!r}")
        if self.batch_size <= 0 or self.batches_per_shard <= 0 or (self.workers is not None and self.workers <= 0):
            raise InputError("batch size, shard size and worker count must be positive")


def read_bytes(location: str) -> bytes:
    """The encoded image at a local path or any fsspec URL (s3://, gs://, http://, ...)."""
    try:
        if "://" in location:
            import fsspec

            with fsspec.open(location, "rb") as fh:
                return fh.read()
        with open(location, "rb") as fh:
            return fh.read()
    except (OSError, ValueError, ImportError) as exc:
        raise InputError(f"cannot read {location}: {exc}") from None


def load_face(item: FaceItem, size: tuple[int, int]) -> np.ndarray:
    """Decode one face and bring it to `size`: landmark alignment when it has landmarks, else fit_face."""
    image = decode_image(read_bytes(item.location), what=item.location)
    if item.landmarks is None:
        return fit_face(image, size)
    from .ijb import align_face

    return align_face(image, item.landmarks, size)


def load_shard(items: Sequence[FaceItem], sizes: Sequence[tuple[int, int]]) -> dict[tuple[int, int], np.ndarray]:
    """Faces of a shard at every input size asked for, (N, H, W, 3) uint8 RGB each."""
    return {tuple(size): np.stack([load_face(item, tuple(size)) for item in items]) for size in sizes}  # type: ignore[misc]


def shards(items: Sequence[FaceItem], options: EngineOptions) -> list[list[FaceItem]]:
    step = options.batch_size * options.batches_per_shard
    return [list(items[i : i + step]) for i in range(0, len(items), step)]


def embed_shard(runner: Any, faces: np.ndarray, options: EngineOptions, batch_limit: int) -> np.ndarray:
    """A shard's embeddings, batch by batch, exactly as verify-parity embeds pairs."""
    step = options.batch_size
    return np.concatenate([_embed_batch(runner, faces[i : i + step], options.flip) for i in range(0, len(faces), step)])


def _store(result: Embedded, start: int, emb: np.ndarray, total: int, dtype: str) -> None:
    if result.embeddings is None:
        result.embeddings = np.empty((total, emb.shape[1]), dtype=dtype)
    result.embeddings[start : start + len(emb)] = emb


def _decoded_shards(parts: list[list[FaceItem]], sizes: list[tuple[int, int]], workers: int) -> Iterator[dict]:
    """Decoded shards in order; with workers > 1 a spawn pool keeps at most 2 per worker in flight."""
    if workers <= 1:
        for part in parts:
            yield load_shard(part, sizes)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the driver already runs backend thread pools that fork would copy mid-state.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = [pool.submit(load_shard, part, sizes) for part in parts[: 2 * workers]]
        for index in range(len(parts)):
            faces = pending.pop(0).result()
            if index + 2 * workers < len(parts):
                pending.append(pool.submit(load_shard, parts[index + 2 * workers], sizes))
            yield faces


def embed_items_local(
    items: Sequence[FaceItem], sources: Sequence[ModelSource], options: EngineOptions,
    on_progress: Callable[[int], None] | None = None,
) -> list[Embedded]:
    results = [Embedded(s) for s in sources]
    active: list[tuple[Embedded, Any]] = []
    try:
        for result in results:
            runner = activate_source(result, options.batch_size)
            if runner is not None:
                active.append((result, runner))
        sizes = sorted({tuple(runner.contract.input_size) for _, runner in active})
        workers = options.workers or os.cpu_count() or 1
        start = 0
        for faces in _decoded_shards(shards(items, options), sizes, workers):  # type: ignore[arg-type]
            count = len(next(iter(faces.values()))) if faces else 0
            for result, runner in active:
                began = time.perf_counter()
                emb = embed_shard(runner, faces[tuple(runner.contract.input_size)], options, result.batch_limit)
                result.embed_seconds += time.perf_counter() - began
                _store(result, start, emb, len(items), options.storage_dtype)
                if on_progress:
                    on_progress(count)
            start += count
    finally:
        for _, runner in active:
            runner.deactivate()
    return results


def embed_items(
    items: Sequence[FaceItem], sources: Sequence[ModelSource], options: EngineOptions,
    on_progress: Callable[[int], None] | None = None,
) -> list[Embedded]:
    """Embeddings of `items` (in their order) by every source; unrunnable sources come back skipped.

    `on_progress(n)` is called as n faces are embedded by one model (total: faces x models).
    """
    options.check()
    if not items:
        raise InputError("no faces to embed")
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        raise InputError("face ids must be unique")
    if options.engine == "ray":
        from .ray_engine import embed_items_ray

        return embed_items_ray(items, sources, options, on_progress)
    return embed_items_local(items, sources, options, on_progress)


__all__ = ["FaceItem", "EngineOptions", "embed_items", "load_face", "load_shard", "read_bytes", "embed_shard"]
