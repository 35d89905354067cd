"""Image properties as monitored features, computed over a whole batch at once.

An image model's inputs are pixels, which no drift test reads well. These few numbers per image
are what changes when the world changes under the model: a new scanner (brightness, contrast,
colourfulness), a photocopy instead of an original (grayscale score, colourfulness, noise), a
blurred camera (sharpness), a different source (size, aspect ratio). Log them as features and
every feature check of Watchkeeper applies to images.

All properties are vectorised over the batch with numpy; large batches are processed in chunks
so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PROPERTY_NAMES: tuple[str, ...] = (
    "brightness",
    "contrast",
    "colourfulness",
    "grayscale_score",
    "sharpness",
    "noise",
    "height",
    "width",
    "aspect_ratio",
)
"""The keys of :func:`image_properties`, in order."""

# A pixel whose channels differ by less than this (on a 0..1 scale) looks grey to a person.
_GREY_CHROMA = 0.06
# Float32 working memory per chunk: the temporaries are a few times the chunk's pixels.
_CHUNK_BYTES = 48 * 2**20
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def image_properties(
    batch: np.ndarray | Sequence[np.ndarray],
    *,
    channels_last: bool = True,
) -> dict[str, np.ndarray]:
    """Per-image properties of a batch of images.

    Parameters
    ----------
    batch
        Either one array of shape ``(N, H, W, C)`` (``C`` in 1, 3 or 4; alpha is ignored) or
        ``(N, H, W)`` for grayscale, or a sequence of ``(H, W, C)`` / ``(H, W)`` arrays of
        possibly different sizes. Integer images are read on their dtype's full range (``uint8``
        0..255, ``uint16`` 0..65535); float images must already be in 0..1.
    channels_last
        ``False`` for PyTorch's ``(N, C, H, W)`` layout.

    Returns
    -------
    dict[str, numpy.ndarray]
        One ``float64`` array of length ``N`` per name in :data:`PROPERTY_NAMES`:

        - ``brightness``: mean luma (ITU-R BT.601), 0..1.
        - ``contrast``: standard deviation of luma (RMS contrast), 0..0.5.
        - ``colourfulness``: Hasler and Süsstrunk's (2003) metric
          ``sigma_rgyb + 0.3 * mu_rgyb`` on the 0..255 scale of the paper, so its bands apply:
          below about 15 an image is "not colourful", above about 33 "moderately" so.
        - ``grayscale_score``: share of pixels whose channels differ by less than 0.06 (how much
          of the image looks grey); 1.0 for a black-and-white photocopy.
        - ``sharpness``: variance of the 4-neighbour Laplacian of luma (low means blurred).
        - ``noise``: Immerkær's (1996) fast estimate of the standard deviation of Gaussian
          noise in luma, 0..1 scale.
        - ``height``, ``width`` in pixels and ``aspect_ratio`` = width / height.

    Raises
    ------
    ValueError
        When ``batch`` has the wrong number of dimensions or channels, an image is smaller than
        3x3, or holds NaN or infinite values.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> colour = rng.integers(0, 256, size=(2, 32, 48, 3), dtype=np.uint8)
    >>> grey = np.repeat(colour.mean(axis=3, keepdims=True), 3, axis=3).astype(np.uint8)
    >>> p = image_properties(np.concatenate([colour, grey]))
    >>> p["grayscale_score"].round(2).tolist()
    [0.01, 0.01, 1.0, 1.0]
    >>> bool(p["colourfulness"][0] > 50 > p["colourfulness"][2])
    True
    >>> p["aspect_ratio"].tolist()
    [1.5, 1.5, 1.5, 1.5]
    """
    if isinstance(batch, np.ndarray):
        images = _as_nhwc(batch, channels_last, "batch")
        return _properties_same_size(images)
    # A list of images of different sizes: group equal shapes and compute each group at once.
    arrays = [_as_nhwc(np.asarray(img)[None], channels_last, f"batch[{i}]") for i, img in
              enumerate(batch)]
    out = {name: np.empty(len(arrays), dtype=np.float64) for name in PROPERTY_NAMES}
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, arr in enumerate(arrays):
        groups.setdefault(arr.shape[1:], []).append(i)
    for index in groups.values():
        stacked = np.concatenate([arrays[i] for i in index])
        part = _properties_same_size(stacked)
        for name in PROPERTY_NAMES:
            out[name][index] = part[name]
    return out


def _as_nhwc(array: np.ndarray, channels_last: bool, field: str) -> np.ndarray:
    if array.ndim == 3:
        array = array[..., None] if channels_last else array[:, None]
    if array.ndim != 4:
        raise ValueError(
            f"{field}: expected (N, H, W, C) or (N, H, W) images, got shape {array.shape}"
        )
    if not channels_last:
        array = np.moveaxis(array, 1, 3)
    _, h, w, c = array.shape
    if c not in (1, 3, 4):
        raise ValueError(f"{field}: {c} channels; expected 1 (grey), 3 (RGB) or 4 (RGBA)")
    if h < 3 or w < 3:
        raise ValueError(f"{field}: images of {h}x{w} pixels; at least 3x3 are needed")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{field}: dtype {array.dtype} is not numeric")
    return array


def _scale(array: np.ndarray) -> float:
    if array.dtype.kind in "iu":
        return float(np.iinfo(array.dtype).max)
    return 1.0


def _properties_same_size(images: np.ndarray) -> dict[str, np.ndarray]:
    n, h, w, c = images.shape
    out = {name: np.empty(n, dtype=np.float64) for name in PROPERTY_NAMES}
    out["height"][:] = h
    out["width"][:] = w
    out["aspect_ratio"][:] = w / h
    scale = _scale(images)
    per_image = h * w * max(c, 3) * 4 * 6
    step = max(1, _CHUNK_BYTES // per_image)
    for start in range(0, n, step):
        chunk = images[start : start + step, ..., :3].astype(np.float32) / np.float32(scale)
        if chunk.dtype.kind == "f" and not np.isfinite(chunk).all():
            raise ValueError("batch: images contain NaN or infinite values")
        _chunk_properties(chunk, out, slice(start, start + len(chunk)))
    return out


def _chunk_properties(x: np.ndarray, out: dict[str, np.ndarray], rows: slice) -> None:
    n = x.shape[0]
    if x.shape[3] == 1:
        luma = x[..., 0]
        out["colourfulness"][rows] = 0.0
        out["grayscale_score"][rows] = 1.0
    else:
        luma = x @ _LUMA
        r, g, b = x[..., 0], x[..., 1], x[..., 2]
        # Hasler & Süsstrunk work on 0..255 values; scale so their published bands hold.
        rg = (r - g).reshape(n, -1) * 255.0
        yb = (0.5 * (r + g) - b).reshape(n, -1) * 255.0
        sigma = np.sqrt(rg.var(axis=1) + yb.var(axis=1))
        mu = np.sqrt(rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2)
        out["colourfulness"][rows] = sigma + 0.3 * mu
        chroma = x.max(axis=3) - x.min(axis=3)
        out["grayscale_score"][rows] = (chroma < _GREY_CHROMA).reshape(n, -1).mean(axis=1)
    flat = luma.reshape(n, -1)
    out["brightness"][rows] = flat.mean(axis=1)
    out["contrast"][rows] = flat.std(axis=1)
    lap = (
        luma[:, :-2, 1:-1] + luma[:, 2:, 1:-1] + luma[:, 1:-1, :-2] + luma[:, 1:-1, 2:]
        - 4.0 * luma[:, 1:-1, 1:-1]
    )
    out["sharpness"][rows] = lap.reshape(n, -1).var(axis=1)
    # Immerkær's mask [[1,-2,1],[-2,4,-2],[1,-2,1]] is the outer product of [1,-2,1] with
    # itself, so two 1-D second differences give it; it cancels edges of first and second order.
    d = luma[:, :-2, :] - 2.0 * luma[:, 1:-1, :] + luma[:, 2:, :]
    d = d[:, :, :-2] - 2.0 * d[:, :, 1:-1] + d[:, :, 2:]
    h, w = luma.shape[1], luma.shape[2]
    total = np.abs(d).reshape(n, -1).sum(axis=1, dtype=np.float64)
    out["noise"][rows] = np.sqrt(np.pi / 2.0) * total / (6.0 * (w - 2) * (h - 2))
