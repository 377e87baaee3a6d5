"""Audio -> mouth-shape regression with temporal context (FaceSync-style).

Used twice: the retrieval generator learns how this speaker's sound maps to this
speaker's mouth, and the drift stage scores how well audio predicts the mouth at each
candidate lag.
"""

from __future__ import annotations

import numpy as np


def normalise(features: np.ndarray, speech: np.ndarray | None = None) -> np.ndarray:
    """Per-band mean/variance normalisation over the clip's speech frames (voice and loudness invariant)."""
    ref = features[speech] if speech is not None and speech.sum() >= 10 else features
    return (features - ref.mean(axis=0)) / (ref.std(axis=0) + 1e-3)


def with_context(features: np.ndarray, k: int) -> np.ndarray:
    """Stack each frame with k frames either side (edge-padded): (n, d * (2k + 1))."""
    padded = np.pad(features, ((k, k), (0, 0)), mode="edge")
    return np.concatenate([padded[i : i + len(features)] for i in range(2 * k + 1)], axis=1)


class Ridge:
    """Closed-form ridge regression with an intercept."""

    def __init__(self, alpha: float = 10.0):
        self.alpha = alpha

    def fit(self, x: np.ndarray, y: np.ndarray) -> Ridge:
        x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
        xc, yc = x - x_mean, y - y_mean
        return self.fit_moments(len(x), x_mean, y_mean, xc.T @ xc, xc.T @ yc)

    def fit_moments(self, n: int, x_mean: np.ndarray, y_mean: np.ndarray, xx: np.ndarray, xy: np.ndarray) -> Ridge:
        """Fit from n frames' means and centred cross products (x'x, x'y), however summed."""
        self.x_mean, self.y_mean = x_mean, y_mean
        self.coef = np.linalg.solve(xx + self.alpha * n / 100.0 * np.eye(len(xx)), xy)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (x - self.x_mean) @ self.coef + self.y_mean


def folds(n: int, n_folds: int, block: int) -> list[np.ndarray]:
    """Contiguous blocks assigned round-robin to folds (neighbouring frames stay together)."""
    fold_of = (np.arange(n) // block) % n_folds
    return [np.flatnonzero(fold_of == f) for f in range(n_folds)]


def cross_predict(x: np.ndarray, y: np.ndarray, valid: np.ndarray, alpha: float, n_folds: int = 5, block: int = 25) -> np.ndarray:
    """Held-out predictions of y from x for every frame (fit on the valid frames of the other folds).

    Each fold's ridge is solved from the sums over the valid frames of all folds minus
    its own (one pass over the frames instead of one per fold): the sync measure fits
    this hundreds of times per clip."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    pred = np.full_like(y, np.nan)
    parts = folds(len(x), n_folds, block)
    sums = []
    for test in parts:
        t = test[valid[test]]
        sums.append((len(t), x[t].sum(axis=0), y[t].sum(axis=0), x[t].T @ x[t], x[t].T @ y[t]))
    total = [sum(s[i] for s in sums) for i in range(5)]
    for test, own in zip(parts, sums):
        n, sx, sy, sxx, sxy = (total[i] - own[i] for i in range(5))
        if n < x.shape[1] // 20 + 10:
            continue
        mx, my = sx / n, sy / n
        model = Ridge(alpha).fit_moments(n, mx, my, sxx - n * np.outer(mx, mx), sxy - n * np.outer(mx, my))
        pred[test] = model.predict(x[test])
    return pred


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    ok = ~(np.isnan(a) | np.isnan(b))
    if ok.sum() < 5 or a[ok].std() == 0 or b[ok].std() == 0:
        return 0.0
    return float(np.corrcoef(a[ok], b[ok])[0, 1])
