"""The verification protocols against an independent computation, and the weighted (bootstrap)
path against the protocol re-run on an explicitly resampled pair list."""

from __future__ import annotations

import numpy as np
import pytest

from edgefkd.errors import InputError
from edgefkd.verify import metrics
from edgefkd.verify.protocol import fold_ids, pair_scores, protocol_accuracy, weighted_fold_accuracy
from edgefkd.verify.statistics import fold_weights


def insightface_reference(emb1: np.ndarray, emb2: np.ndarray, issame: np.ndarray, folds: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """insightface verification.py's calculate_roc accuracy, written out plainly with scikit-learn."""
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import normalize

    thresholds = np.arange(0, 4, 0.01)
    dist = np.sum(np.square(np.subtract(normalize(emb1), normalize(emb2))), 1)
    accuracy, chosen = np.zeros(folds), np.zeros(folds)
    for fold, (train, test) in enumerate(KFold(n_splits=folds, shuffle=False).split(np.arange(len(issame)))):
        acc_train = np.array([np.mean(np.less(dist[train], t) == issame[train]) for t in thresholds])
        best = np.argmax(acc_train)
        chosen[fold] = thresholds[best]
        accuracy[fold] = np.mean(np.less(dist[test], thresholds[best]) == issame[test])
    return accuracy, chosen


def _embeddings(num_pairs: int, seed: int, noise: float = 1.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs 2i, 2i+1 of clustered float32 embeddings: half genuine (a noisy copy), half impostor."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((2 * num_pairs, 64)).astype(np.float32)
    same = rng.random(num_pairs) < 0.5
    emb[1::2][same] = emb[0::2][same] + noise * rng.standard_normal((int(same.sum()), 64)).astype(np.float32)
    return emb, np.arange(2 * num_pairs).reshape(-1, 2), same


@pytest.mark.parametrize("num_pairs,seed,noise", [(176, 0, 1.2), (605, 1, 1.5), (1000, 2, 1.8), (57, 3, 1.0)])
def test_insightface_protocol_matches_an_independent_computation(num_pairs, seed, noise):
    emb, pairs, same = _embeddings(num_pairs, seed, noise)
    expected_acc, expected_thr = insightface_reference(emb[0::2], emb[1::2], same)
    result = protocol_accuracy(pair_scores("insightface", emb, emb, pairs, same))
    np.testing.assert_array_equal(result.fold_accuracies, expected_acc)
    np.testing.assert_allclose(result.fold_thresholds, expected_thr)
    assert result.accuracy == pytest.approx(expected_acc.mean()) and result.accuracy_std == pytest.approx(expected_acc.std())
    assert 0.5 < result.accuracy < 1.0  # a case where thresholds matter


def test_insightface_takes_the_first_best_threshold():
    # Two pairs far apart: every threshold between the genuine and the impostor distance is best.
    emb = np.array([[1, 0], [1, 0.01], [1, 0], [-1, 0]] * 5, dtype=np.float32)
    same = np.array([True, False] * 5)
    pairs = np.arange(20).reshape(-1, 2)
    result = protocol_accuracy(pair_scores("insightface", emb, emb, pairs, same), num_folds=5)
    # The genuine distance is 1e-4: the first grid threshold above it is 0.01.
    assert result.fold_thresholds == pytest.approx([0.01] * 5)
    assert result.accuracy == 1.0


def test_edgefkd_protocol_is_the_cosine_lfw_protocol():
    emb, pairs, same = _embeddings(176, 4)
    scores = pair_scores("edgefkd", emb, emb, pairs, same)
    expected = metrics.kfold_accuracy(metrics.pair_scores(emb, emb, pairs), same)
    assert protocol_accuracy(scores).fold_accuracies == expected.fold_accuracies


@pytest.mark.parametrize("protocol", ["insightface", "edgefkd"])
def test_weighted_path_reruns_the_protocol_on_each_resample(protocol):
    """A resample as weights gives what the protocol gives on the resampled list written out."""
    num_pairs, folds = 123, 10
    emb, pairs, same = _embeddings(num_pairs, 5)
    scores = pair_scores(protocol, emb, emb, pairs, same)
    fold = fold_ids(num_pairs, folds)
    ones, _ = weighted_fold_accuracy(scores, np.ones((1, num_pairs)), fold, folds)
    assert ones[0] == pytest.approx(protocol_accuracy(scores).accuracy)
    rng = np.random.default_rng(9)
    weights = fold_weights(rng, fold, folds, 40)
    assert (weights.sum(axis=1) == num_pairs).all()
    weighted, _ = weighted_fold_accuracy(scores, weights, fold, folds)
    for r in range(40):
        # The resample written out fold by fold keeps each fold's size, so consecutive folds line up.
        order = np.concatenate([np.repeat(np.flatnonzero(fold == f), weights[r, fold == f].astype(int)) for f in range(folds)])
        if protocol == "insightface":
            expected = insightface_reference(emb[0::2][order], emb[1::2][order], same[order])[0].mean()
            assert weighted[r] == pytest.approx(expected)
        else:
            expected = metrics.kfold_accuracy(scores.similarity[order], same[order]).accuracy
            assert weighted[r] == pytest.approx(expected)


def test_protocol_refuses_unknown_names_and_too_few_pairs():
    emb, pairs, same = _embeddings(8, 6)
    with pytest.raises(InputError, match="unknown protocol"):
        pair_scores("lfw", emb, emb, pairs, same)
    with pytest.raises(InputError, match="needs at least 10 pairs"):
        protocol_accuracy(pair_scores("insightface", emb, emb, pairs, same))
