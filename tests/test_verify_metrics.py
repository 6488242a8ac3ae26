"""Verification metrics against small cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgefkd.errors import InputError
from edgefkd.verify import metrics

# Six pairs, sorted by score: P P N P N N (P = same person).
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
LABELS = np.array([1, 1, 0, 1, 0, 0], dtype=bool)


def test_roc_points_auc_and_eer_by_hand():
    far, tar = metrics.roc_curve(SCORES, LABELS)
    third = 1 / 3
    np.testing.assert_allclose(far, [0, 0, 0, third, third, 2 * third, 1])
    np.testing.assert_allclose(tar, [0, third, 2 * third, 2 * third, 1, 1, 1])
    # 8 of the 9 (genuine, impostor) combinations are ordered correctly.
    assert metrics.roc_auc(far, tar) == pytest.approx(8 / 9)
    # At the 4th point FAR = FRR = 1/3.
    assert metrics.equal_error_rate(far, tar) == pytest.approx(1 / 3)


def test_ties_count_one_half_in_auc():
    far, tar = metrics.roc_curve(np.array([0.5, 0.5]), np.array([True, False]))
    assert metrics.roc_auc(far, tar) == pytest.approx(0.5)
    assert metrics.equal_error_rate(far, tar) == pytest.approx(0.5)


def test_best_accuracy_threshold_and_rates_by_hand():
    # Rejecting below 0.55 or below 0.75 both get 5/6 right; of the tied candidates
    # [0.55, 0.75] the middle one (index 2 // 2 = 1) is taken: 0.75.
    threshold = metrics.best_accuracy_threshold(SCORES, LABELS)
    assert threshold == pytest.approx(0.75)
    rates = metrics.rates_at(SCORES, LABELS, threshold)
    assert rates == pytest.approx({"far": 0.0, "frr": 1 / 3, "accuracy": 5 / 6})
    assert metrics.rates_at(SCORES, LABELS, 0.55) == pytest.approx({"far": 1 / 3, "frr": 0.0, "accuracy": 5 / 6})


def test_threshold_at_far_accepts_at_most_the_allowed_impostors():
    # 3 impostors (0.7, 0.5, 0.4); FAR 0.34 allows one of them.
    threshold = metrics.threshold_at_far(SCORES, LABELS, 0.34)
    assert threshold == pytest.approx(0.5)
    assert metrics.rates_at(SCORES, LABELS, threshold)["far"] == pytest.approx(1 / 3)
    strict = metrics.threshold_at_far(SCORES, LABELS, 0.2)
    assert metrics.rates_at(SCORES, LABELS, strict) == pytest.approx({"far": 0.0, "frr": 1 / 3, "accuracy": 5 / 6})


def test_tar_at_far_marks_too_few_impostors():
    low = metrics.tar_at_far(SCORES, LABELS, 1e-2)
    assert low["tar"] is None and "not enough impostor pairs" in low["note"] and low["impostor_pairs"] == 3
    # With 100 impostors FAR 1e-2 allows exactly one false accept.
    rng = np.random.default_rng(0)
    impostor = rng.uniform(-0.2, 0.4, size=100)
    genuine = np.r_[np.linspace(0.5, 0.9, 9), -0.5]  # one genuine pair below every impostor
    scores = np.r_[genuine, impostor]
    labels = np.r_[np.ones(10, bool), np.zeros(100, bool)]
    ok = metrics.tar_at_far(scores, labels, 1e-2)
    assert ok["note"] is None and ok["far"] == pytest.approx(0.01)
    assert ok["tar"] == pytest.approx(0.9)
    assert ok["threshold"] == pytest.approx(np.sort(impostor)[-2])


def test_kfold_accuracy_by_hand():
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.3, 0.7])
    labels = np.array([1, 0, 1, 0, 1, 0], dtype=bool)
    folded = metrics.kfold_accuracy(scores, labels, folds=3)
    # Fold 1 trains on 0.8P 0.2N 0.3P 0.7N: 0.25 and 0.75 tie at 3/4 -> 0.75; tests 0.9P 0.1N: both right.
    # Fold 2 trains on 0.9P 0.1N 0.3P 0.7N: 0.2 and 0.8 tie at 3/4 -> 0.8; rejects its 0.8P: 1 of 2.
    # Fold 3 trains on 0.9P 0.1N 0.8P 0.2N: only 0.5 is perfect; 0.3P and 0.7N both wrong.
    np.testing.assert_allclose(folded.fold_thresholds, [0.75, 0.8, 0.5])
    assert folded.fold_accuracies == [1.0, 0.5, 0.0]
    assert folded.accuracy == pytest.approx(0.5)
    assert folded.accuracy_std == pytest.approx(math.sqrt(1 / 6))
    assert folded.correct.tolist() == [True, True, False, True, False, False]


def test_kfold_needs_enough_pairs():
    with pytest.raises(InputError):
        metrics.kfold_accuracy(SCORES, LABELS, folds=10)


def test_threshold_drift_applies_reference_threshold_unchanged():
    reference = metrics.verify_scores(SCORES, LABELS, folds=3)
    shifted = metrics.verify_scores(SCORES - 0.1, LABELS, folds=3)
    drift = metrics.threshold_drift(reference, shifted)
    best = drift["best_accuracy"]
    assert best["threshold"] == pytest.approx(0.75)
    assert best["reference"] == pytest.approx({"far": 0.0, "frr": 1 / 3, "accuracy": 5 / 6})
    # Shifted scores 0.8P 0.7P 0.6N 0.5P 0.4N 0.3N at 0.75: only 0.8P accepted, 0.7P and 0.5P rejected.
    assert best["artifact"] == pytest.approx({"far": 0.0, "frr": 2 / 3, "accuracy": 4 / 6})
    far_point = drift["far_1e-02"]
    assert far_point["reference"]["far"] == 0.0 and "impostor pairs" in far_point["note"]
    # The re-optimised shifted threshold would hide all of this: same ranking, same AUC.
    assert shifted.auc == pytest.approx(reference.auc)


def test_agreement_by_hand():
    reference = np.array([[1.0, 0.0], [0.0, 1.0]])
    candidate = np.array([[2.0, 0.0], [1.0, 1.0]])
    got = metrics.agreement(reference, candidate)
    c = 1 / math.sqrt(2)
    assert got["cosine_min"] == pytest.approx(c)
    assert got["cosine_mean"] == pytest.approx((1 + c) / 2)
    assert got["cosine_p1"] == pytest.approx(c + 0.01 * (1 - c))  # linear interpolation
    assert got["norm_ratio_min"] == pytest.approx(math.sqrt(2))
    assert got["norm_ratio_max"] == pytest.approx(2.0)


def test_pair_scores_cross_two_embedding_tables():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = np.array([[0.0, 3.0], [1.0, 1.0]])
    np.testing.assert_allclose(metrics.pair_scores(a, b, np.array([[0, 1], [1, 0]])), [1 / math.sqrt(2), 1.0])


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, False)])
def test_roc_auc_and_eer_agree_with_scikit_learn(seed, ties):
    from scipy.optimize import brentq
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(seed)
    labels = rng.random(400) < 0.4
    scores = rng.normal(0.0, 1.0, 400) + 1.3 * labels
    if ties:
        scores = np.round(scores, 1)  # many tied genuine/impostor scores
    far, tar = metrics.roc_curve(scores, labels)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(far, fpr)
    np.testing.assert_allclose(tar, tpr)
    assert metrics.roc_auc(far, tar) == pytest.approx(roc_auc_score(labels, scores))
    # The usual EER recipe on scikit-learn's curve: where TAR = 1 - FAR.
    expected = brentq(lambda x: 1.0 - x - np.interp(x, fpr, tpr), 0.0, 1.0)
    assert metrics.equal_error_rate(far, tar) == pytest.approx(expected, abs=1e-6)
