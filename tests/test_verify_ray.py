"""The Ray engine on a local 2-CPU cluster (started once for this module): the same report as
the local engine, bit for bit, and a worker killed mid-run is retried with nothing lost."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgefkd.manifest import Manifest
from edgefkd.verify.engine import EngineOptions, embed_items
from edgefkd.verify.identification import read_identity_csv
from edgefkd.verify.ijb import read_ijb
from edgefkd.verify.parity import ModelSource, ReferenceOptions, resolve_targets
from edgefkd.verify.templates import TemplateOptions, run_templates
from ijb_fixture import build_identification_split, build_ijb_fixture

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def onnx_fp32(mobilefacenet_export) -> Path:
    export = Path(mobilefacenet_export)
    return export / Manifest.read(export).find("onnx", "fp32")[0].path


@pytest.fixture(scope="module")
def ijb_set(tmp_path_factory, fixtures_dir):
    return read_ijb(build_ijb_fixture(fixtures_dir / "faces", tmp_path_factory.mktemp("ijb") / "IJBC"), "IJBC")


def _without_timing(value):
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in ("timing", "backend")}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def test_ray_report_equals_local(ray_cluster, onnx_fp32, ijb_set, fixtures_dir, tmp_path):
    from edgefkd.verify.templates_report import _json_default

    gallery_csv, probes_csv = build_identification_split(fixtures_dir / "faces", tmp_path)
    gallery, probes = read_identity_csv(gallery_csv, role="gallery"), read_identity_csv(probes_csv, role="probe")
    reports = []
    for engine in (EngineOptions("local", workers=2, batch_size=16), EngineOptions("ray", batch_size=16)):
        targets = resolve_targets([onnx_fp32], ReferenceOptions())
        result = run_templates(targets, None, ijb_set, gallery, probes, TemplateOptions(engine, bootstrap=50))
        reports.append(json.loads(json.dumps(_without_timing(result.report), default=_json_default)))
    local, distributed = reports
    assert distributed["options"].pop("engine") == "ray" and local["options"].pop("engine") == "local"
    assert distributed == local
    assert local["artifacts"][0]["ijb"]["agreement"]["cosine_p1"] > 0.9999


def test_killed_worker_is_retried_and_nothing_is_lost(ray_cluster, onnx_fp32, ijb_set, tmp_path):
    from edgefkd.runners import open_runner

    marker = tmp_path / "kill-next-shard"
    marker.touch()

    def open_dying_runner():
        runner = open_runner(onnx_fp32)
        original = runner.infer
        calls = {"n": 0}

        def infer(batch):
            calls["n"] += 1
            # The first call probes the batch axis; die in the middle of embedding a shard, once.
            if calls["n"] == 3 and marker.exists():
                marker.unlink()
                os._exit(1)
            return original(batch)

        runner.infer = infer
        return runner

    options = EngineOptions("ray", workers=2, batch_size=8, batches_per_shard=2)
    items = ijb_set.items[:96]
    (dying,) = embed_items(items, [ModelSource("dying", str(onnx_fp32), "onnx", "fp32", open_dying_runner)], options)
    assert not marker.exists(), "the worker was never killed"
    reference = ModelSource("plain", str(onnx_fp32), "onnx", "fp32", lambda: open_runner(onnx_fp32))
    (local,) = embed_items(items, [reference], EngineOptions("local", workers=1, batch_size=8, batches_per_shard=2))
    assert dying.embeddings is not None and dying.embeddings.shape == (96, 128)
    assert np.array_equal(dying.embeddings, local.embeddings)
