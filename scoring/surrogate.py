"""A sparse linear surrogate of responses' scores under random ablations (LASSO). No Django.

The estimate mode (issue 11, after ContextCite) scores the context K times,
each time with a random half of the memories left out, plus once whole. For
each response, its score y_k under ablation k is modelled as

    y_k ≈ c + Σ_j b_j · x_kj          x_kj = 1 when memory j was present

and b_j, the fitted effect of memory j, is the estimate of the cell's delta
(baseline − without, in nats). The fit is a LASSO,

    min_b  1/(2K) · ||y − c − X b||² + α · ||b||₁

solved by FISTA (accelerated proximal gradient), every response at once as
matrix products: a response's coefficients are confined to the memories
`allowed` for it (those before it: a causal model cannot be changed by a
memory after the response, so that effect is exactly 0, never fitted).

α is chosen per response by FOLDS-fold cross-validation over a grid relative
to α_max (the smallest α that zeroes every coefficient); the held-out R² at
the chosen α is the fit's quality (slightly optimistic: the same folds chose
α). A response whose score never changes across the ablations gets no fit
(R² None, every effect 0).
"""

import numpy as np

FOLDS = 4
ALPHA_GRID = (0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
ITERATIONS = 300
# Stop early once no coefficient moves more than this (nats) in an iteration.
TOLERANCE = 1e-6
# Scores varying less than this (nats, standard deviation) are constant.
FLAT = 1e-9


def lasso(x, y, alphas, allowed, iterations=ITERATIONS):
    """FISTA for centred x (K×N) and y (K×R), one α per column of y; the
    coefficients (N×R) are zero outside `allowed` (N×R booleans)."""
    k = max(len(x), 1)
    lipschitz = float(np.linalg.norm(x, 2) ** 2) / k if x.size else 0.0
    coef = np.zeros((x.shape[1], y.shape[1]))
    if lipschitz <= 0:
        return coef
    z, t = coef, 1.0
    threshold = np.asarray(alphas, dtype=float) / lipschitz
    xty = x.T @ y / k
    gram = x.T @ x / k
    for i in range(iterations):
        step = z - (gram @ z - xty) / lipschitz
        new = np.sign(step) * np.maximum(np.abs(step) - threshold, 0.0) * allowed
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        z = new + ((t - 1) / t_next) * (new - coef)
        done = i % 10 == 9 and np.abs(new - coef).max(initial=0.0) < TOLERANCE
        coef, t = new, t_next
        if done:
            break
    return coef


def _centred_fit(x, y, alphas, allowed):
    """(coef, x_mean, y_mean) of a LASSO with an intercept, on rows x, y."""
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    return lasso(x - x_mean, y - y_mean, alphas, allowed), x_mean, y_mean


def alpha_max(x, y, allowed):
    """Per response: the smallest α whose fit is all zero."""
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    return (np.abs(xc.T @ yc) * allowed).max(axis=0, initial=0.0) / max(len(x), 1)


def fit(x, y, allowed, *, seed=0, folds=FOLDS, grid=ALPHA_GRID):
    """Fit every response. x: K×N presence (0/1), y: K×R scores, allowed: N×R.

    Returns (effects N×R, r2: a list of R held-out R², None for a response
    with no fit). Folds are drawn with `seed`, so a run refits identically.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    allowed = np.asarray(allowed, dtype=bool)
    n_rows, n_resp = y.shape
    varies = (y.std(axis=0) > FLAT) & allowed.any(axis=0)
    top = alpha_max(x, y, allowed)
    grid = np.asarray(grid)
    g = len(grid)
    # Every (response, α) pair is one column: one FISTA run per fold.
    wide_y = np.repeat(y, g, axis=1)
    wide_alpha = (top[:, None] * grid[None, :]).reshape(-1)
    wide_allowed = np.repeat(allowed, g, axis=1)
    order = np.random.default_rng(seed).permutation(n_rows)
    errors = np.zeros(n_resp * g)
    folds = max(2, min(folds, n_rows))
    for part in np.array_split(order, folds):
        train = np.setdiff1d(order, part)
        coef, x_mean, y_mean = _centred_fit(x[train], wide_y[train], wide_alpha, wide_allowed)
        predicted = y_mean + (x[part] - x_mean) @ coef
        errors += ((wide_y[part] - predicted) ** 2).sum(axis=0)
    errors = errors.reshape(n_resp, g)
    best = errors.argmin(axis=1)
    chosen = top * grid[best]
    effects, _, _ = _centred_fit(x, y, chosen, allowed)
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    r2 = []
    for r in range(n_resp):
        if not varies[r]:
            effects[:, r] = 0.0
            r2.append(None)
        else:
            r2.append(float(1 - errors[r, best[r]] / total[r]))
    return effects, r2
