"""IJB template verification and 1:N search: the reader and alignment on a fixture in the
official IJB-C layout built from the real shared faces, the metrics against independent
computations (scikit-learn's ROC, a plain argsort) on fixed embeddings, and verify-parity
end to end on the real MobileFaceNet export (a planted preprocessing defect must fail)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from edgefkd.cli import main
from edgefkd.verify.engine import load_face
from edgefkd.verify.identification import enrol, identify, read_identity_csv
from edgefkd.verify.ijb import pool_templates, read_ijb, template_pair_scores
from edgefkd.verify.templates import ijb_verification
from ijb_fixture import build_identification_split, build_ijb_fixture, read_faces


@pytest.fixture(scope="session")
def ijb_dir(tmp_path_factory, fixtures_dir) -> Path:
    return build_ijb_fixture(fixtures_dir / "faces", tmp_path_factory.mktemp("ijb") / "IJBC")


@pytest.fixture(scope="session")
def identification_split(tmp_path_factory, fixtures_dir) -> tuple[Path, Path]:
    return build_identification_split(fixtures_dir / "faces", tmp_path_factory.mktemp("ident"))


def test_reader_and_alignment_undo_the_loose_crop_placement(ijb_dir, fixtures_dir):
    ijb = read_ijb(ijb_dir, "ijbc")
    assert ijb.describe() == {
        "source": str(ijb_dir), "format": "ijb-ijbc", "faces": 150, "templates": 55, "media": 75,
        "pairs": 1485, "same": 26, "different": 1459,
    }
    from PIL import Image

    originals = read_faces(fixtures_dir / "faces")
    for item in ijb.items[:6]:
        original = np.asarray(Image.open(originals[int(item.key.split("_")[0]) - 1][0]).convert("RGB"), dtype=float)
        aligned = load_face(item, (112, 112)).astype(float)
        # Inside the border the warp back lands within a couple of grey levels of the original crop.
        assert np.abs(aligned - original)[8:-8, 8:-8].mean() < 4.0
        assert np.abs(aligned - original[:, ::-1])[8:-8, 8:-8].mean() > 8.0
        assert load_face(item, (112, 96)).shape == (112, 96, 3)


def _fixed_embeddings(labels: list[str], seed: int = 0, noise: float = 0.9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = {name: rng.normal(size=64) for name in sorted(set(labels))}
    return np.stack([centres[name] + noise * rng.normal(size=64) for name in labels]).astype(np.float32)


def test_template_metrics_match_an_independent_computation(ijb_dir):
    from sklearn.metrics import roc_auc_score, roc_curve

    ijb = read_ijb(ijb_dir, "IJBC")
    identity = {}
    for t1, t2 in ijb.template_pairs[ijb.is_same]:
        identity[t2] = identity.setdefault(t1, t1)
    face_identity = [str(identity.get(t, t)) for t in ijb.templates]
    emb = _fixed_embeddings(face_identity, noise=3.0)
    weights = ijb.scores
    ids, feats = pool_templates(emb, ijb.templates, ijb.medias, weights)
    # Direct loops: unit image vectors x score, mean per media, mean of media, unit length.
    for k, template in enumerate(ids):
        medias = []
        for media in np.unique(ijb.medias[ijb.templates == template]):
            rows = (ijb.templates == template) & (ijb.medias == media)
            unit = emb[rows] / np.linalg.norm(emb[rows], axis=1, keepdims=True)
            medias.append((unit * weights[rows, None]).mean(axis=0))
        expected = np.mean(medias, axis=0)
        np.testing.assert_allclose(feats[k], expected / np.linalg.norm(expected), atol=1e-6)

    scores = template_pair_scores(ids, feats, feats, ijb.template_pairs)
    ver = ijb_verification(scores, ijb.is_same)
    assert ver["auc"] == pytest.approx(roc_auc_score(ijb.is_same, scores), abs=1e-12)
    fpr, tpr, _ = roc_curve(ijb.is_same, scores, drop_intermediate=False)
    for key, point in ver["tar_at_far"].items():
        far = float(key)
        if far < 1 / 1459:
            assert point["tar"] is None and "not enough impostor pairs" in point["note"]
        else:
            assert point["tar"] == pytest.approx(tpr[fpr <= far].max(), abs=1e-12)
    assert 0.5 < ver["auc"] < 1.0  # noisy enough that the check is not trivially 1.0


def test_identification_matches_argsort(identification_split):
    gallery, probes = (read_identity_csv(p, role=r) for p, r in zip(identification_split, ("gallery", "probe")))
    emb = _fixed_embeddings(gallery.identities + probes.identities, seed=1, noise=4.0)
    g_emb, p_emb = emb[: len(gallery.items)], emb[len(gallery.items):]
    names, entries = enrol(g_emb, gallery.identities)
    result = identify(names, entries, p_emb, probes.identities).summary

    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    sims = unit(p_emb) @ unit(g_emb).T  # one gallery face per identity here
    order = np.argsort(-sims, axis=1)
    g_ids = np.array(gallery.identities)
    mated = np.isin(probes.identities, g_ids)
    ranks = np.array([list(g_ids[order[i]]).index(probes.identities[i]) + 1 for i in np.flatnonzero(mated)])
    assert result["mated_probes"] == 42 and result["non_mated_probes"] == 11
    assert result["rank1"] == pytest.approx((ranks == 1).mean())
    assert result["rank5"] == pytest.approx((ranks <= 5).mean())
    assert 0 < result["rank1"] < 1
    # Open set: threshold passing at most 1 of the 11 non-mated probes' best scores (FPIR 0.1).
    best = sims.max(axis=1)
    threshold = np.sort(best[~mated])[::-1][1]
    top1_right = g_ids[order[mated, 0]] == np.array(probes.identities)[mated]
    expected = (top1_right & (best[mated] > threshold)).mean()
    assert result["tpir_at_fpir"]["1e-01"]["tpir"] == pytest.approx(expected)
    assert result["tpir_at_fpir"]["1e-02"]["tpir"] is None


def _verify(*args: object) -> int:
    return main(["verify-parity", *map(str, args)])


def test_verify_parity_ijb_and_search_end_to_end(mobilefacenet_export, mobilefacenet_pt, ijb_dir, identification_split, tmp_path):
    from edgefkd.formats.onnx import set_onnx_metadata
    from edgefkd.manifest import Manifest
    from edgefkd.runners import artifact_contract

    export = Path(mobilefacenet_export)
    fp32 = export / Manifest.read(export).find("onnx", "fp32")[0].path
    # A copy whose metadata claims BGR input: the same weights fed swapped channels.
    swapped = fp32.with_name("model_swapped_channels.onnx")
    shutil.copyfile(fp32, tmp_path / swapped.name)
    swapped = tmp_path / swapped.name
    contract = artifact_contract(fp32).to_dict()
    set_onnx_metadata(swapped, {"edgefkd.preprocess": json.dumps({**contract, "channel_order": "bgr"})})
    gallery, probes = identification_split
    report = tmp_path / "report"
    code = _verify(fp32, swapped, "--reference", mobilefacenet_pt, "--arch", "mobilefacenet-foamliu",
                   "--ijb", ijb_dir, "--ijb-set", "IJBC", "--gallery", gallery, "--probes", probes,
                   "--teacher", mobilefacenet_pt, "--teacher-arch", "mobilefacenet-foamliu",
                   "--bootstrap", "200", "--workers", "2", "--report", report)
    assert code == 1
    data = json.loads((report / "report.json").read_text())
    good, bad = data["artifacts"]
    assert good["verdict"] == "pass" and bad["verdict"] == "fail"
    assert good["ijb"]["agreement"]["cosine_p1"] > 0.9999
    ref_tar = data["ijb"]["reference"]["tar_at_far"]
    assert good["ijb"]["verification"]["tar_at_far"]["1e-03"]["tar"] == ref_tar["1e-03"]["tar"] > 0.8
    assert ref_tar["1e-04"]["tar"] is None and "1459" in ref_tar["1e-04"]["note"]
    assert data["ijb"]["gate_far"] == 1e-3
    assert good["identification"]["rank1_drop_pp"] == 0.0 and good["identification"]["rank1"] > 0.9
    failed_gates = {v["gate"] for v in bad["verdicts"] if v["status"] == "fail"}
    assert "cosine_p1" in failed_gates
    assert (report / "roc.png").stat().st_size > 0 and "IJB 1:1" in (report / "report.md").read_text()

    # 1:N alone, no teacher: the reference enrols the gallery; the cosine gate is judged on the probes.
    search = tmp_path / "search"
    assert _verify(swapped, "--reference", mobilefacenet_pt, "--arch", "mobilefacenet-foamliu", "--gallery", gallery,
                   "--probes", probes, "--report", search) == 1
    only = json.loads((search / "report.json").read_text())
    assert only["ijb"] is None and only["identification"]["baseline"]["model"] == "pytorch"
    (row,) = only["artifacts"]
    assert row["identification"]["agreement"]["cosine_p1"] < 0.99 and {"gate": "cosine_p1", "status": "fail"}.items() <= row["verdicts"][0].items()
    assert not (search / "roc.png").exists()


@pytest.mark.parametrize("extra, message", [
    (["--ijb", "missing_dir"], "IJB file not found"),
    (["--gallery", "g.csv"], "--gallery and --probes go together"),
    (["--pairs", "p.csv", "--ijb", "x"], "separate runs"),
    (["--ijb", "x", "--engine", "spark"], "--engine must be one of"),
])
def test_bad_template_options_exit_2_with_one_line(mobilefacenet_export, tmp_path, capsys, extra, message):
    report = tmp_path / "report"
    assert _verify(mobilefacenet_export, *extra, "--report", report) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]
    assert not report.exists()


def test_engine_ray_without_ray_names_the_extra(mobilefacenet_export, ijb_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the [ray] extra looks like
    assert _verify(mobilefacenet_export, "--ijb", ijb_dir, "--engine", "ray", "--report", tmp_path / "r") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "edgefkd[ray]" in err[0]
