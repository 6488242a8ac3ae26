"""Bootstrap intervals, verdicts, decision flips and the memory refusal, on fixed embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from edgefkd.errors import InputError
from edgefkd.verify import statistics
from edgefkd.verify.datasets import PairSet
from edgefkd.verify.judge import judge_set
from edgefkd.verify.parity import Embedded, Gates, ModelSource, ParityOptions
from edgefkd.verify.protocol import pair_scores


def _pair_set(num_pairs: int, seed: int, noise: float = 1.2) -> tuple[PairSet, np.ndarray]:
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((2 * num_pairs, 32)).astype(np.float32)
    same = np.arange(num_pairs) % 2 == 0
    emb[1::2][same] = emb[0::2][same] + noise * rng.standard_normal((int(same.sum()), 32)).astype(np.float32)
    images: list = [b"%d" % i for i in range(2 * num_pairs)]
    return PairSet("synthetic", "bin", images, np.arange(2 * num_pairs).reshape(-1, 2), same), emb


def _embedded(label: str, emb: np.ndarray) -> Embedded:
    return Embedded(ModelSource(label, label, "onnx", "fp32", None), embeddings=emb)


@pytest.mark.parametrize("num_pairs", [10, 30, 176, 1200])
@pytest.mark.parametrize("protocol", ["insightface", "edgefkd"])
def test_identical_embeddings_always_pass(num_pairs, protocol):
    pairs, emb = _pair_set(num_pairs, num_pairs)
    options = ParityOptions(bootstrap=300, protocol=protocol, gates=Gates(max_acc_drop=0.0))
    block, _ = judge_set(pairs, _embedded("ref", emb), [_embedded("copy", emb.copy())], None, options)
    row = block["artifacts"][0]
    gate = row["verification"]["verdict"]
    assert (gate["point"], gate["low"], gate["high"]) == (0.0, 0.0, 0.0)
    assert row["verdict"] == "pass" and row["failures"] == []
    assert row["flips"]["best_accuracy"]["flipped"] == 0 and row["flips"]["best_accuracy"]["mcnemar_p"] == 1.0


def test_noise_that_costs_accuracy_fails_and_small_sets_are_inconclusive():
    big, emb = _pair_set(3000, 1, noise=1.0)
    noisy = emb + 0.9 * np.random.default_rng(2).standard_normal(emb.shape).astype(np.float32)
    options = ParityOptions(bootstrap=300)
    row = judge_set(big, _embedded("ref", emb), [_embedded("noisy", noisy)], None, options)[0]["artifacts"][0]
    gate = row["verification"]["verdict"]
    assert gate["status"] == "fail" and gate["low"] > 0.5, gate
    # The same models on the first 40 pairs: the interval straddles the gate.
    small = PairSet("small", "bin", big.images[:80], big.pairs[:40], big.is_same[:40])
    row = judge_set(small, _embedded("ref", emb[:80]), [_embedded("noisy", noisy[:80])], None, options)[0]["artifacts"][0]
    gate = row["verification"]["verdict"]
    assert gate["status"] == "inconclusive" and gate["low"] <= 0.5 < gate["high"]
    assert "40 pairs cannot resolve a 0.5 pp gate" in gate["sentence"] and "pairs would" in gate["sentence"]
    # Without resampling the verdict is the point estimate's, and it says so.
    point = judge_set(small, _embedded("ref", emb[:80]), [_embedded("noisy", noisy[:80])], None, ParityOptions(bootstrap=0))
    gate = point[0]["artifacts"][0]["verification"]["verdict"]
    assert gate["low"] is None and "point estimate only" in gate["sentence"]


def test_bootstrap_is_seeded_and_paired():
    pairs, emb = _pair_set(200, 3)
    a = pair_scores("insightface", emb, emb, pairs.pairs, pairs.is_same)
    other = emb + 0.3 * np.random.default_rng(4).standard_normal(emb.shape).astype(np.float32)
    b = pair_scores("insightface", other, other, pairs.pairs, pairs.is_same)
    first = statistics.bootstrap_accuracies({"a": a, "b": b}, 10, 500, seed=7)
    again = statistics.bootstrap_accuracies({"b": b, "a": a}, 10, 500, seed=7)
    np.testing.assert_array_equal(first["a"], again["a"])
    assert not np.array_equal(first["a"], statistics.bootstrap_accuracies({"a": a}, 10, 500, seed=8)["a"])
    # Paired: the interval of the difference is narrower than the spread of either accuracy.
    diff = np.ptp(np.percentile(first["a"] - first["b"], [2.5, 97.5]))
    assert diff < np.ptp(np.percentile(first["a"], [2.5, 97.5])) + np.ptp(np.percentile(first["b"], [2.5, 97.5]))


def test_decision_flips_and_exact_mcnemar_by_hand():
    pairs, emb = _pair_set(100, 5, noise=0.5)
    ref = pair_scores("edgefkd", emb, emb, pairs.pairs, pairs.is_same)
    threshold = 0.3
    # The candidate gets three genuine pairs the reference accepts wrong (pushed below the threshold).
    genuine_accepted = np.flatnonzero(pairs.is_same & (ref.similarity > threshold))[:3]
    moved = ref.similarity.copy()
    moved[genuine_accepted] = threshold - 0.1
    cand = pair_scores("edgefkd", emb, emb, pairs.pairs, pairs.is_same)
    object.__setattr__(cand, "similarity", moved)
    flips = statistics.decision_flips(ref, cand, [statistics.OperatingPoint("best_accuracy", threshold)])["best_accuracy"]
    assert (flips["flipped"], flips["reference_right_candidate_wrong"], flips["reference_wrong_candidate_right"]) == (3, 3, 0)
    assert flips["mcnemar_p"] == pytest.approx(2 * 0.5**3)  # two-sided exact binomial, 3 of 3 one way
    diff = statistics.score_differences(ref.cosine, ref.cosine + 0.01)
    assert diff["mean"] == pytest.approx(0.01) and diff["abs_max"] == pytest.approx(0.01)


def test_far_targets_the_set_cannot_resolve_are_said():
    pairs, emb = _pair_set(100, 6)
    ref = pair_scores("insightface", emb, emb, pairs.pairs, pairs.is_same)
    points = statistics.operating_points(ref, -1.0)
    assert [p.name for p in points] == ["best_accuracy", "far_1e-02", "far_1e-03"]
    assert points[1].note and "needs at least 100, have 50" in points[1].note


def test_bootstrap_beyond_memory_is_refused_up_front():
    statistics.check_bootstrap(1000, [6000], 20, 10, "insightface")
    with pytest.raises(InputError, match=r"--bootstrap 1000000000 needs about .* GiB.*at most \d+ resamples fit"):
        statistics.check_bootstrap(10**9, [176], 3, 10, "insightface")


def test_exit_codes_and_the_inconclusive_mapping():
    from edgefkd.verify.verdict import exit_code

    assert exit_code(["pass", "pass"]) == 0
    assert exit_code(["pass", "inconclusive"]) == 3
    assert exit_code(["pass", "inconclusive"], "pass") == 0 and exit_code(["pass", "inconclusive"], "fail") == 1
    assert exit_code(["fail", "inconclusive"], "pass") == 1  # a failure is never mapped away
