"""PCA and whitening of a data matrix (NumPy).

Fit once on the TRAINING data, then apply the same transform to every split::

    pca = fit_pca(x_train)                              # mean, variances, directions
    z = pca_transform(x, pca, k=20)                     # (N, 20) decorrelated coordinates
    x_hat = pca_reconstruct(z, pca)                     # back to (N, D): the best rank-20 fit
    x_w = pca_transform(x, pca, whiten=True, eps=0.1)   # (N, D) unit-variance coordinates
    x_zca = zca_whiten(x, pca, eps=0.1)                 # whitened, but still looks like x

With ``X`` the centred ``(N, D)`` data and ``Sigma = X^T X / N = U diag(lambda) U^T`` its
covariance (eigenvalues ``lambda`` descending, eigenvectors the columns of ``U``):

* PCA (decorrelation):  ``Z = X U``, so ``Cov(Z) = diag(lambda)``;
* PCA whitening:        ``Z = X U diag(1 / sqrt(lambda + eps))``, so ``Cov(Z) ~= I``;
* ZCA whitening:        ``X_zca = X U diag(1 / sqrt(lambda + eps)) U^T``: the same whitened
  coordinates rotated back to pixel space, the whitening that changes ``X`` least.

``eps >= 0`` keeps directions with (almost) no variance, such as pixels that are 0 in every
image, from being blown up; with ``eps > 0`` the whitened variances are
``lambda / (lambda + eps)`` instead of exactly 1.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["PCA", "fit_pca", "pca_transform", "pca_reconstruct", "zca_whiten"]


class PCA(NamedTuple):
    """A fitted PCA: what :func:`fit_pca` returns."""

    mean: np.ndarray  # (D,) mean of the training data
    variances: np.ndarray  # (D,) eigenvalues of the covariance, descending, >= 0
    components: np.ndarray  # (D, D) column j = unit eigenvector of variances[j]


def _as_matrix(x, fn: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"{fn}: x must be (N, D) or (N, ...) with N >= 1, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise TypeError(f"{fn}: x must be a real numeric array, got dtype {x.dtype}")
    return x.reshape(len(x), -1).astype(np.float64)  # (N, D)


def _check_fit(x2d: np.ndarray, pca: PCA, fn: str) -> None:
    if not isinstance(pca, PCA):
        raise TypeError(f"{fn}: pca must be a PCA from fit_pca, got {type(pca).__name__}")
    if x2d.shape[1] != len(pca.mean):
        raise ValueError(
            f"{fn}: x has {x2d.shape[1]} features per sample but the PCA was fitted on "
            f"{len(pca.mean)}"
        )


def _check_eps(eps, fn: str) -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not eps >= 0:
        raise ValueError(f"{fn}: eps must be a number >= 0, got {eps!r}")
    return float(eps)


def fit_pca(x: np.ndarray) -> PCA:
    """Mean, covariance eigenvalues and eigenvectors of a data set.

    The covariance is the population one, ``X^T X / N`` of the centred data (as
    :func:`~d2lcnn.data.channel_stats` uses ``ddof=0``; scikit-learn's ``PCA`` divides by
    ``N - 1``). Each eigenvector's sign is fixed so that its entry of largest magnitude is
    positive, which makes the result reproducible across LAPACK builds.

    Args:
        x: ``(N, D)`` samples in rows, or ``(N, ...)`` (e.g. images ``(N, C, H, W)``),
            flattened to ``(N, D)``.

    Returns:
        :class:`PCA` ``(mean (D,), variances (D,), components (D, D))``, float64, with
        ``variances`` descending and ``cov = components @ diag(variances) @ components.T``.

    Raises:
        ValueError: if ``x`` is not at least 2-D. TypeError: for a non-numeric ``x``.
    """
    x = _as_matrix(x, "fit_pca")
    mean = x.mean(axis=0)  # (D,)
    xc = x - mean  # (N, D)
    cov = xc.T @ xc / len(x)  # (D, D), symmetric positive semi-definite
    variances, components = np.linalg.eigh(cov)  # ascending
    variances, components = variances[::-1], components[:, ::-1]  # descending
    variances = np.clip(variances, 0.0, None)  # rounding can give -1e-17 for rank-deficient data
    rows = np.argmax(np.abs(components), axis=0)  # (D,) entry of largest |.| per column
    components = components * np.sign(components[rows, np.arange(components.shape[1])])
    return PCA(mean, variances, np.ascontiguousarray(components))


def pca_transform(
    x: np.ndarray, pca: PCA, *, k: int | None = None, whiten: bool = False, eps: float = 0.0
) -> np.ndarray:
    """Coordinates of the centred data along the first ``k`` principal directions.

    ``z = (x - mean) @ components[:, :k]``, divided by ``sqrt(variances[:k] + eps)`` when
    ``whiten``.

    Args:
        x: ``(N, D)`` or ``(N, ...)`` with ``D`` features per sample, as in :func:`fit_pca`.
        pca: from :func:`fit_pca`.
        k: number of directions kept, ``1 <= k <= D``; default ``D`` (a rotation).
        whiten: scale every coordinate to (about) unit variance. Default False.
        eps: added to the variances before the square root when whitening, >= 0. With
            ``eps = 0`` every kept variance must be positive. Default 0.

    Returns:
        ``(N, k)`` float64.

    Raises:
        ValueError: for a bad ``k`` or ``eps``, mismatched ``D``, or whitening a direction of
            zero variance with ``eps = 0``.
    """
    fn = "pca_transform"
    x = _as_matrix(x, fn)
    _check_fit(x, pca, fn)
    d = len(pca.mean)
    k = d if k is None else k
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= d:
        raise ValueError(f"{fn}: k must be an int in [1, {d}], got {k!r}")
    eps = _check_eps(eps, fn)
    z = (x - pca.mean) @ pca.components[:, :k]  # (N, k)
    if whiten:
        scale = pca.variances[:k] + eps  # (k,)
        if not np.all(scale > 0):
            raise ValueError(
                f"{fn}: {int(np.sum(scale <= 0))} of the {k} kept directions have zero variance; "
                f"pass eps > 0 or a smaller k"
            )
        z = z / np.sqrt(scale)
    return z


def pca_reconstruct(z: np.ndarray, pca: PCA) -> np.ndarray:
    """Map (non-whitened) PCA coordinates back to feature space: ``mean + z @ U_k^T``.

    With ``k`` coordinates this is the best rank-``k`` approximation of the data in squared
    error; its mean squared error per sample is the sum of the dropped variances.

    Args:
        z: ``(N, k)`` from :func:`pca_transform` with ``whiten=False``.
        pca: the same fit.

    Returns:
        ``(N, D)`` float64 (reshape to images yourself).

    Raises:
        ValueError: if ``z`` is not ``(N, k)`` with ``1 <= k <= D``.
    """
    z = np.asarray(z, dtype=np.float64)
    d = len(pca.mean)
    if z.ndim != 2 or not 1 <= z.shape[1] <= d:
        raise ValueError(f"pca_reconstruct: z must be (N, k) with 1 <= k <= {d}, got {z.shape}")
    return pca.mean + z @ pca.components[:, : z.shape[1]].T  # (N, D)


def zca_whiten(x: np.ndarray, pca: PCA, *, eps: float = 0.0) -> np.ndarray:
    """ZCA ("zero-phase") whitening: whiten along the principal directions, rotate back.

    ``x_zca = (x - mean) @ U diag(1 / sqrt(variances + eps)) U^T``. The matrix is symmetric,
    and among all whitening matrices it moves the data least, so whitened images still look
    like images (edges enhanced, smooth regions flattened).

    Args:
        x: ``(N, D)`` or ``(N, ...)``; the result has the same shape.
        pca: from :func:`fit_pca`.
        eps: regularizer added to the variances, >= 0. Default 0 (then every variance must be
            positive).

    Returns:
        Float64, ``x``'s shape.

    Raises:
        ValueError: as :func:`pca_transform`.
    """
    z = pca_transform(x, pca, whiten=True, eps=eps)  # (N, D)
    return (z @ pca.components.T).reshape(np.shape(x))
