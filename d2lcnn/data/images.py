"""Real photographs for the chapters' filter and feature-map demos, loaded offline.

The images are the ones that ship *inside* the installed scikit-image wheel (its
``skimage/data`` folder), so loading them never touches the network: scikit-image only
downloads (with the optional ``pooch``) the images that are not bundled, and we use none
of those. We read the files directly instead of calling ``skimage.data.<name>()`` so that
a missing file fails here, with a clear message, instead of attempting a download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["SAMPLE_IMAGES", "sample_image", "sample_image_path"]

# name -> file inside skimage/data. All are photographs (no synthetic test patterns).
_FILES = {
    "camera": "camera.png",  # (512, 512) gray: a photographer with a camera on a tripod
    "astronaut": "astronaut.png",  # (512, 512, 3): Eileen Collins
    "chelsea": "chelsea.png",  # (300, 451, 3): a cat
    "coffee": "coffee.png",  # (400, 600, 3): a cup of coffee
    "coins": "coins.png",  # (303, 384) gray: Greek coins
    "moon": "moon.png",  # (512, 512) gray: the lunar surface
    "brick": "brick.png",  # (512, 512) gray: a brick wall (texture)
    "grass": "grass.png",  # (512, 512) gray: grass (texture)
    "gravel": "gravel.png",  # (512, 512) gray: gravel (texture)
    "rocket": "rocket.jpg",  # (427, 640, 3): a rocket on the launch pad
}

#: Names accepted by :func:`sample_image`.
SAMPLE_IMAGES: tuple[str, ...] = tuple(_FILES)


def _check_name(name: str) -> str:
    if name not in _FILES:
        raise ValueError(
            f"sample_image: name must be one of {', '.join(SAMPLE_IMAGES)}; got {name!r}"
        )
    return _FILES[name]


def _parse_size(size) -> tuple[int, int]:
    def is_int(v):
        return isinstance(v, int | np.integer) and not isinstance(v, bool)

    if is_int(size):
        hw = (int(size), int(size))
    elif isinstance(size, tuple | list) and len(size) == 2 and all(is_int(v) for v in size):
        hw = (int(size[0]), int(size[1]))
    else:
        hw = (0, 0)
    if min(hw) < 1:
        raise ValueError(
            f"sample_image: size must be None, a positive int or a pair of positive ints, "
            f"got {size!r}"
        )
    return hw


def sample_image_path(name: str = "camera") -> Path:
    """Path of a bundled sample image inside the installed scikit-image package.

    Raises:
        ValueError: if ``name`` is not in :data:`SAMPLE_IMAGES`.
        FileNotFoundError: if this scikit-image installation does not bundle the file.
    """
    filename = _check_name(name)
    import skimage.data  # lazy: importing skimage is slow and nothing may run on import

    path = Path(skimage.data.__file__).parent / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"sample_image: {filename!r} is not bundled with the installed scikit-image "
            f"(looked in {path.parent}); it would have to be downloaded, which we never do"
        )
    return path


def sample_image(
    name: str = "camera",
    *,
    gray: bool = True,
    size: int | tuple[int, int] | None = None,
    dtype=np.float32,
) -> np.ndarray:
    """Load a real photograph bundled with scikit-image, as floats in ``[0, 1]``.

    Args:
        name: one of :data:`SAMPLE_IMAGES`. Default ``"camera"``.
        gray: if True (default) return luminance ``(H, W)`` (RGB photos are converted with
            ``skimage.color.rgb2gray``, i.e. ITU-R 709 weights); if False return ``(H, W, 3)``
            RGB (gray-only photos are repeated over the three channels).
        size: ``None`` (default) keeps the original size; an int ``S`` gives ``(S, S)``; a
            pair gives ``(H, W)``. Resizing uses ``skimage.transform.resize`` with
            anti-aliasing, so downsampling does not alias.
        dtype: a floating dtype for the result. Default ``np.float32``.

    Returns:
        ``(H, W)`` if ``gray`` else ``(H, W, 3)``, values in ``[0, 1]``, C-contiguous.

    Raises:
        ValueError: for an unknown ``name``, a non-positive ``size`` or a non-float ``dtype``.

    Example:
        >>> img = sample_image("camera", size=64)
        >>> img.shape, img.dtype
        ((64, 64), dtype('float32'))
    """
    path = sample_image_path(name)
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"sample_image: dtype must be a floating dtype, got {dtype}")
    if size is not None:
        hw = _parse_size(size)
    from skimage import color, io, transform, util

    img = util.img_as_float64(io.imread(path))  # uint8 -> [0, 1]
    if img.ndim == 3 and img.shape[-1] == 4:  # drop an alpha channel if a file has one
        img = img[..., :3]
    if gray and img.ndim == 3:
        img = color.rgb2gray(img)  # (H, W)
    elif not gray and img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)  # (H, W, 3)
    if size is not None:
        out_shape = (*hw, *img.shape[2:])
        img = transform.resize(img, out_shape, anti_aliasing=True, mode="reflect")
    img = np.clip(img, 0.0, 1.0)  # resize can overshoot by rounding
    return np.ascontiguousarray(img, dtype=dtype)
