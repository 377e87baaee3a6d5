"""The held-out ridge both the sync measure and the retrieval generator rely on."""

from __future__ import annotations

import numpy as np

from lipdub import av_model


def test_cross_predict_is_a_ridge_fitted_on_the_other_folds_valid_frames():
    """Solved from shared sums, each fold's prediction is still the ridge fitted directly on
    the valid frames outside it; frames of a fold too small to train without are left NaN."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 30))
    y = x[:, :2] @ rng.standard_normal((2, 2)) + 0.3 * rng.standard_normal((400, 2))
    valid = rng.random(400) > 0.2
    pred = av_model.cross_predict(x, y, valid, alpha=30.0, block=25)
    for test in av_model.folds(400, 5, 25):
        train = np.setdiff1d(np.flatnonzero(valid), test)
        direct = av_model.Ridge(30.0).fit(x[train], y[train]).predict(x[test])
        np.testing.assert_allclose(pred[test], direct, atol=1e-9)
    assert av_model.correlation(pred[valid, 0], y[valid, 0]) > 0.8
    few = np.zeros(400, bool)
    few[:8] = True  # 8 valid frames: no fold has enough to train on
    assert np.isnan(av_model.cross_predict(x, y, few, alpha=30.0)).all()
