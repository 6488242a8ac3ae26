"""The Ray engine: per model, actors that open its runner once and embed shards.

Models run one after the other, each on as many actors as the cluster has CPUs (or
`workers`), so a model never waits for CPUs held by another model's idle actors. Actors
restart when their worker dies and the shard they held is retried there
(`max_restarts`/`max_task_retries`); shards already returned are kept in the driver. A
shard carries only image ids, locations and landmarks: each actor reads its own faces.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import BackendUnavailable, EdgeFKDError, InputError
from .engine import EngineOptions, FaceItem, _store, embed_shard, load_shard, shards
from .parity import Embedded, ModelSource, describe_runner

#: How often a dead actor is restarted and its shard retried before the run fails.
RETRIES = 3


RAY_EXTRA_HINT = "--engine ray needs Ray, an optional extra: pip install 'edgefkd[ray]'"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(RAY_EXTRA_HINT) from None
    return ray


def connect(address: str | None) -> Any:
    """Join the cluster at `address`; "auto"/None joins a running one, else starts a local one."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    if address in (None, "auto"):
        try:
            ray.init(address="auto", log_to_driver=False)
        except ConnectionError:
            ray.init(log_to_driver=False)
    else:
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, ValueError) as exc:
            raise InputError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    return ray


class ShardEmbedder:
    """A Ray actor body: one runner, opened once, embedding shards it reads itself."""

    def __init__(self, opener: Callable[[], Any], source: ModelSource, options: EngineOptions,
                 torch_threads: int | None = None) -> None:
        self.options = options
        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        self.record = Embedded(source)
        self.runner = None
        try:
            self.runner = opener()
            self.runner.activate()
        except BackendUnavailable as exc:
            source.skip_reason = str(exc)
            return
        except ImportError as exc:
            source.skip_reason = f"backend not installed: {exc}"
            return
        describe_runner(self.record, self.runner, options.batch_size)

    def describe(self) -> dict[str, Any]:
        r = self.record
        return {
            "skip_reason": r.source.skip_reason, "precision": r.source.precision, "contract": r.contract,
            "backend": {**r.backend, "node": os.uname().nodename}, "activate_seconds": r.activate_seconds,
            "batch_limit": r.batch_limit,
        }

    def embed(self, index: int, items: list[FaceItem]) -> tuple[int, list[str], np.ndarray, float]:
        size = tuple(self.runner.contract.input_size)  # type: ignore[union-attr]
        faces = load_shard(items, [size])[size]  # type: ignore[list-item]
        began = time.perf_counter()
        emb = embed_shard(self.runner, faces, self.options, self.record.batch_limit)
        return index, [item.key for item in items], emb, time.perf_counter() - began


def _ship_user_code(ray: Any) -> None:
    """Models built from a user's `file.py:factory` live in a module workers cannot import: send it by value."""
    from ray import cloudpickle

    for name, module in list(sys.modules.items()):
        if name.startswith("edgefkd_user_arch_") and module is not None:
            cloudpickle.register_pickle_by_value(module)


def _get(ray: Any, ref: Any, label: str) -> Any:
    """ray.get, turning a task's EdgeFKDError back into itself and anything else into one line."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, EdgeFKDError):
            raise cause from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:240]
        raise EdgeFKDError(f"{label}: a Ray task failed after {RETRIES} retries: {first}") from None


def _torch_threads(source: ModelSource) -> int | None:
    """The driver's torch thread count for a PyTorch source.

    Eager CPU kernels split reductions by thread, so the reference embeds bit-identically
    to the local engine only with the same count (Ray would otherwise give it one thread).
    """
    if source.format != "pytorch" or "torch" not in sys.modules:
        return None
    return int(sys.modules["torch"].get_num_threads())


def _embed_one(ray: Any, result: Embedded, parts: list[list[FaceItem]], total: int, options: EngineOptions,
               on_progress: Callable[[int], None] | None) -> None:
    remote = ray.remote(num_cpus=1, max_restarts=RETRIES, max_task_retries=RETRIES)(ShardEmbedder)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    count = max(1, min(options.workers or cpus, cpus, len(parts)))
    actors = [remote.remote(result.source.open, result.source, options, _torch_threads(result.source)) for _ in range(count)]
    try:
        info = _get(ray, actors[0].describe.remote(), result.source.label)
        if info["skip_reason"]:
            result.source.skip_reason = info["skip_reason"]
            return
        result.source.precision = info["precision"]
        result.contract, result.backend = info["contract"], info["backend"]
        result.activate_seconds, result.batch_limit = info["activate_seconds"], info["batch_limit"]
        offsets = np.cumsum([0] + [len(p) for p in parts])
        pending = [actors[i % count].embed.remote(i, part) for i, part in enumerate(parts)]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            index, keys, emb, seconds = _get(ray, done[0], result.source.label)
            if keys != [item.key for item in parts[index]]:
                raise EdgeFKDError(f"{result.source.label}: shard {index} came back with other faces")
            _store(result, int(offsets[index]), emb, total, options.storage_dtype)
            result.embed_seconds += seconds
            if on_progress:
                on_progress(len(keys))
    finally:
        for actor in actors:
            ray.kill(actor)


def embed_items_ray(
    items: Sequence[FaceItem], sources: Sequence[ModelSource], options: EngineOptions,
    on_progress: Callable[[int], None] | None = None,
) -> list[Embedded]:
    """Every source's embeddings of `items`, in order; progress counts faces per model."""
    ray = connect(options.ray_address)
    results = [Embedded(s) for s in sources]
    parts = shards(items, options)
    for result in results:
        if result.source.open is None:
            continue
        _ship_user_code(ray)
        _embed_one(ray, result, parts, len(items), options, on_progress)
    return results
