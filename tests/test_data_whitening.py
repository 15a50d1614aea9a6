"""PCA and whitening: agreement with scikit-learn and the defining covariance identities."""

import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA

from d2lcnn.data.whitening import PCA, fit_pca, pca_reconstruct, pca_transform, zca_whiten


def correlated(n=500, d=6, seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d)) * np.linspace(3.0, 0.2, d)  # distinct variances
    return rng.standard_normal((n, d)) @ mix.T + rng.standard_normal(d)  # (n, d), nonzero mean


def cov(z):
    zc = z - z.mean(axis=0)
    return zc.T @ zc / len(z)


def test_fit_matches_sklearn_up_to_sign_and_ddof():
    x = correlated()
    pca = fit_pca(x)
    sk = SkPCA().fit(x)
    n = len(x)
    np.testing.assert_allclose(pca.mean, sk.mean_, rtol=1e-12)
    np.testing.assert_allclose(pca.variances, sk.explained_variance_ * (n - 1) / n, rtol=1e-10)
    dots = np.sum(pca.components * sk.components_.T, axis=0)  # +-1 per direction
    np.testing.assert_allclose(np.abs(dots), 1.0, atol=1e-10)


def test_decomposition_and_sign_convention():
    x = correlated(d=5)
    pca = fit_pca(x)
    u, lam = pca.components, pca.variances
    np.testing.assert_allclose(u @ np.diag(lam) @ u.T, cov(x), atol=1e-10)
    np.testing.assert_allclose(u.T @ u, np.eye(5), atol=1e-12)
    assert np.all(np.diff(lam) <= 0)
    biggest = u[np.argmax(np.abs(u), axis=0), np.arange(5)]
    assert np.all(biggest > 0)


def test_rotation_decorrelates_and_whitening_gives_identity():
    x = correlated()
    pca = fit_pca(x)
    z = pca_transform(x, pca)
    np.testing.assert_allclose(cov(z), np.diag(pca.variances), atol=1e-10)
    np.testing.assert_allclose(cov(pca_transform(x, pca, whiten=True)), np.eye(6), atol=1e-10)
    sk = SkPCA(whiten=True).fit(x)
    n = len(x)  # sklearn whitens with the N - 1 variance
    np.testing.assert_allclose(
        np.abs(pca_transform(x, pca, whiten=True)), np.abs(sk.transform(x)) * np.sqrt(n / (n - 1)),
        atol=1e-9,
    )


@pytest.mark.parametrize("eps", [0.01, 1.0])
def test_eps_shrinks_the_whitened_variances(eps):
    x = correlated()
    pca = fit_pca(x)
    c = cov(pca_transform(x, pca, whiten=True, eps=eps))
    np.testing.assert_allclose(c, np.diag(pca.variances / (pca.variances + eps)), atol=1e-10)


def test_zca_is_symmetric_whitening_and_keeps_image_shape():
    rng = np.random.default_rng(1)
    imgs = correlated(n=400, d=12).reshape(400, 1, 3, 4)
    pca = fit_pca(imgs)
    w = zca_whiten(imgs, pca)
    assert w.shape == imgs.shape
    np.testing.assert_allclose(cov(w.reshape(400, -1)), np.eye(12), atol=1e-9)
    # the ZCA matrix (the map of unit vectors) is symmetric
    basis = pca.mean + np.eye(12)
    m = zca_whiten(basis, pca)
    np.testing.assert_allclose(m, m.T, atol=1e-10)
    # among whitenings (ZCA times any rotation R) ZCA moves the data least
    q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    xc = imgs.reshape(400, -1) - pca.mean
    assert np.sum((w.reshape(400, -1) - xc) ** 2) < np.sum((w.reshape(400, -1) @ q - xc) ** 2)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_reconstruction_error_is_the_dropped_variance(k):
    x = correlated()
    pca = fit_pca(x)
    x_hat = pca_reconstruct(pca_transform(x, pca, k=k), pca)
    mse = np.mean(np.sum((x - x_hat) ** 2, axis=1))
    np.testing.assert_allclose(mse, pca.variances[k:].sum(), rtol=1e-9, atol=1e-12)


def test_rank_deficient_data_needs_eps():
    x = correlated(d=4)
    x = np.concatenate([x, np.zeros((len(x), 2))], axis=1)  # two constant features
    pca = fit_pca(x)
    assert pca.variances[-2:].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="zero variance"):
        pca_transform(x, pca, whiten=True)
    assert np.all(np.isfinite(zca_whiten(x, pca, eps=1e-3)))
    assert pca_transform(x, pca, k=4, whiten=True).shape == (len(x), 4)


def test_bad_arguments():
    x = correlated()
    pca = fit_pca(x)
    assert isinstance(pca, PCA)
    with pytest.raises(ValueError, match="k must be"):
        pca_transform(x, pca, k=0)
    with pytest.raises(ValueError, match="k must be"):
        pca_transform(x, pca, k=7)
    with pytest.raises(ValueError, match="eps must be"):
        pca_transform(x, pca, whiten=True, eps=-1.0)
    with pytest.raises(ValueError, match="features per sample"):
        pca_transform(x[:, :3], pca)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        fit_pca(np.ones(5))
    with pytest.raises(TypeError, match="pca must be"):
        pca_transform(x, (pca.mean, pca.variances, pca.components))
    with pytest.raises(ValueError, match="z must be"):
        pca_reconstruct(np.ones((3, 7)), pca)
    with pytest.raises(TypeError, match="real numeric"):
        fit_pca(np.array([["a", "b"]]))
