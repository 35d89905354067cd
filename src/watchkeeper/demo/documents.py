"""Synthetic scanned documents: genuine colour originals and black-and-white photocopies.

Everything is drawn with numpy over the whole batch at once (coordinate grids broadcast against
per-document parameters), so a thousand 64x64 documents take about a second.

A genuine document has off-white paper, lines of text in words, and usually colour: a header
band, a rubber stamp, a photo, a logo. Some genuine documents are plain black-and-white letters:
they are what makes the task hard, because they look like copies. A photocopy is a document
passed through a copier: grey, harder contrast, toner specks, a shadow at one edge, softer
strokes; a few are made on a colour copier and keep a little colour.

The "new scanner" of the scenario washes out nearly all the colour of every document it scans
and fades it a little: genuine originals then look much like copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 64
"""Side of the square images, in pixels."""

BRANCHES = np.array(["north", "south", "east", "west"], dtype=object)


@dataclass(frozen=True)
class Documents:
    """A batch of scanned documents.

    Parameters
    ----------
    images
        ``uint8`` RGB images, shape ``(n, SIZE, SIZE, 3)``.
    labels
        ``1`` for a photocopy (the positive class), ``0`` for a genuine original.
    branch
        Which branch scanned the document (a segment tag).
    scanner
        ``"standard"`` or ``"new"`` for each document.
    """

    images: np.ndarray
    labels: np.ndarray
    branch: np.ndarray
    scanner: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def generate_documents(
    n: int,
    *,
    photocopy_share: float = 0.1,
    new_scanner_share: float = 0.0,
    seed: int | np.random.Generator = 0,
    size: int = SIZE,
) -> Documents:
    """Draw ``n`` documents, a ``photocopy_share`` of them photocopies.

    Parameters
    ----------
    n
        Number of documents.
    photocopy_share
        Share of photocopies: exactly ``round(photocopy_share * n)`` of the documents.
    new_scanner_share
        Share of documents scanned by the new scanner, which fades them and washes out colour.
    seed
        Seed or generator; the same seed gives the same documents.
    size
        Side of the images in pixels.

    Examples
    --------
    >>> docs = generate_documents(200, photocopy_share=0.5, seed=1)
    >>> docs.images.shape, docs.images.dtype.name
    ((200, 64, 64, 3), 'uint8')
    >>> int(docs.labels.sum())
    100
    """
    if n < 0:
        raise ValueError(f"n: must be non-negative, got {n}")
    for name, share in (("photocopy_share", photocopy_share),
                        ("new_scanner_share", new_scanner_share)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name}: must be within [0, 1], got {share}")
    if size < 16:
        raise ValueError(f"size: at least 16 pixels, got {size}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    # Exactly this many copies, in random order: a day's mix is a fact about the day, as in
    # docs/design.md's example where about 100 of 1,000 documents are photocopies.
    labels = np.zeros(n, dtype=np.int8)
    labels[: round(photocopy_share * n)] = 1
    labels = rng.permutation(labels)
    images = _originals(n, size, rng)
    copies = labels == 1
    if copies.any():
        images[copies] = _photocopy(images[copies], rng)
    new = rng.random(n) < new_scanner_share
    if new.any():
        images[new] = _new_scanner(images[new], rng)
    images = _skew(images, rng)
    # Sensor noise, of a level that varies from document to document.
    sigma = rng.uniform(0.005, 0.02, (n, 1, 1, 1))
    images += rng.standard_normal(images.shape, dtype=np.float32) * sigma.astype(np.float32)
    out = np.clip(images * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Documents(
        images=out,
        labels=labels,
        branch=BRANCHES[rng.integers(0, len(BRANCHES), n)],
        scanner=np.where(new, "new", "standard").astype(object),
    )


def _u(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    """Per-document uniform parameter, shaped to broadcast over (n, H, W)."""
    return rng.uniform(low, high, n).astype(np.float32)[:, None, None]


def _hue_colours(rng: np.random.Generator, n: int, saturation: tuple[float, float]) -> np.ndarray:
    """Saturated RGB colours of random hue, shape (n, 1, 1, 3)."""
    hue = rng.uniform(0, 1, n)
    sat = rng.uniform(*saturation, n)
    val = rng.uniform(0.45, 0.85, n)
    k = (np.array([5.0, 3.0, 1.0])[None, :] + hue[:, None] * 6.0) % 6.0
    rgb = val[:, None] - val[:, None] * sat[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    out: np.ndarray = rgb.astype(np.float32)[:, None, None, :]
    return out


def _paint(images: np.ndarray, mask: np.ndarray, colour: np.ndarray, alpha: float = 1.0) -> None:
    """Blend ``colour`` into ``images`` where ``mask`` (n, H, W) holds, in place."""
    # Only the masked pixels are touched: far fewer than the whole batch.
    doc, y, x = np.nonzero(mask)
    per_doc = np.broadcast_to(colour, (images.shape[0], 1, 1, 3))[:, 0, 0, :]
    a = np.float32(alpha)
    images[doc, y, x] = images[doc, y, x] * (1.0 - a) + a * per_doc[doc]


def _originals(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    yy, xx = yy[None], xx[None]
    s = size / 64.0
    paper = np.stack(
        [rng.uniform(0.9, 0.99, n), rng.uniform(0.89, 0.98, n), rng.uniform(0.84, 0.96, n)], 1
    ).astype(np.float32)[:, None, None, :]
    images = np.broadcast_to(paper, (n, size, size, 3)).copy()
    # A plain letter has no colour at all: the hard genuine case.
    plain = rng.random(n) < 0.12
    colourful = ~plain[:, None, None]

    # Header band or left side bar, in a brand colour.
    layout = rng.integers(0, 3, n)[:, None, None]
    band_h = _u(rng, 5 * s, 10 * s, n)
    header = ((layout == 0) & (yy < band_h)) | ((layout == 1) & (xx < band_h))
    header_colour = _hue_colours(rng, n, (0.5, 0.95))
    grey_header = np.repeat(header_colour.mean(axis=3, keepdims=True), 3, axis=3)
    _paint(images, header & (rng.random(n) < 0.85)[:, None, None],
           np.where(plain[:, None, None, None], grey_header, header_colour))

    # Text: lines of words, with ragged right edges.
    top = np.where(layout == 0, band_h + 3 * s, _u(rng, 3 * s, 8 * s, n))
    left = np.where(layout == 1, band_h + 3 * s, _u(rng, 3 * s, 8 * s, n))
    spacing = rng.integers(4, 8, n).astype(np.float32)[:, None, None] * s
    line = np.floor((yy - top) / spacing)
    in_line = ((yy - top) % spacing) < np.maximum(1.0, spacing * 0.4)
    ragged = size - 4 * s - (np.sin(line * 2.7 + _u(rng, 0, 6, n)) + 1.0) * 9.0 * s
    word = rng.integers(5, 10, n).astype(np.float32)[:, None, None]
    in_word = ((xx + line * 3.0 + _u(rng, 0, 9, n)) % word) < word - 1.5
    bottom = size - _u(rng, 4 * s, 20 * s, n)
    text = in_line & in_word & (yy >= top) & (yy < bottom) & (xx >= left) & (xx < ragged)
    ink = rng.uniform(0.05, 0.3, n)
    ink_colour = np.stack([ink, ink, ink + rng.uniform(0, 0.25, n) * (~plain)], 1)
    _paint(images, text, ink_colour.astype(np.float32)[:, None, None, :])

    # A photo in a corner: a smooth colourful gradient (grey in a plain letter).
    has_photo = (rng.random(n) < 0.4)[:, None, None]
    pw = _u(rng, 12 * s, 20 * s, n)
    px = np.where(rng.random(n) < 0.5, size - pw[:, 0, 0] - 3 * s, 3 * s).astype(
        np.float32)[:, None, None]
    py = _u(rng, 14 * s, 30 * s, n)
    photo = has_photo & (xx >= px) & (xx < px + pw) & (yy >= py) & (yy < py + pw * 1.2)
    u = (xx - px) / pw
    v = (yy - py) / pw
    phase = _u(rng, 0, 6.3, n)
    photo_rgb = np.stack(
        [0.5 + 0.4 * np.sin(3 * u + phase), 0.5 + 0.4 * np.sin(4 * v + phase * 1.3),
         0.5 + 0.4 * np.cos(2 * (u + v) + phase * 0.7)], axis=-1
    ).astype(np.float32)
    photo_rgb = np.where(colourful[..., None], photo_rgb,
                         photo_rgb.mean(axis=3, keepdims=True))
    images[photo] = photo_rgb[photo]

    # A rubber stamp: a ring, red, blue or violet, half transparent (black in a plain letter).
    has_stamp = (rng.random(n) < 0.7)[:, None, None]
    cx, cy = _u(rng, 14 * s, 50 * s, n), _u(rng, 30 * s, 54 * s, n)
    radius = _u(rng, 5 * s, 10 * s, n)
    dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    ring = has_stamp & (np.abs(dist - radius) < 1.2 * s)
    stamp_colours = np.array([[0.8, 0.1, 0.15], [0.15, 0.2, 0.75], [0.5, 0.15, 0.6]],
                             dtype=np.float32)
    stamp = stamp_colours[rng.integers(0, 3, n)][:, None, None, :]
    stamp = np.where(plain[:, None, None, None], np.float32(0.25), stamp)
    _paint(images, ring, stamp, alpha=0.75)

    # A small logo square.
    lx, ly = _u(rng, 40 * s, 56 * s, n), _u(rng, 1 * s, 8 * s, n)
    logo = (rng.random(n) < 0.5)[:, None, None] & colourful & (np.abs(xx - lx) < 3 * s) & (
        np.abs(yy - ly) < 3 * s)
    _paint(images, logo, _hue_colours(rng, n, (0.6, 1.0)))
    return images


def _photocopy(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n, h, w = (int(v) for v in images.shape[:3])
    luma = images @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    # Copiers push mid-tones apart and print on greyer, flatter white.
    low = _u(rng, 0.05, 0.25, n)
    high = _u(rng, 0.7, 0.9, n)
    grey = np.clip((luma - low) / (high - low), 0.0, 1.0)
    white = _u(rng, 0.82, 0.96, n)
    grey = grey * white + _u(rng, 0.0, 0.08, n) * (1.0 - grey)
    # A shadow along one edge, where the lid did not close.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    edge = rng.integers(0, 4, n)[:, None, None]
    d = np.select([edge == 0, edge == 1, edge == 2], [xx[None], yy[None], (w - 1 - xx)[None]],
                  (h - 1 - yy)[None])
    grey *= 1.0 - _u(rng, 0.0, 0.35, n) * np.exp(-d / _u(rng, 1.5, 5.0, n))
    # Softer strokes: a 3x3 box blur on half of the copies.
    soft = rng.random(n) < 0.5
    if soft.any():
        g = np.pad(grey[soft], ((0, 0), (1, 1), (1, 1)), mode="edge")
        grey[soft] = sum(g[:, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0
    # Toner specks.
    specks = rng.random((n, h, w)) < _u(rng, 0.0, 0.02, n)
    grey = np.where(specks, grey * 0.3, grey)
    out = np.repeat(grey[..., None], 3, axis=3)
    # A colour copier keeps a little of the original's colour: the hard positive case.
    colour_copy = rng.random(n) < 0.12
    if colour_copy.any():
        keep = rng.uniform(0.25, 0.6, colour_copy.sum()).astype(np.float32)[:, None, None, None]
        orig = images[colour_copy]
        mean = orig.mean(axis=3, keepdims=True)
        out[colour_copy] += keep * (orig - mean)
    clipped: np.ndarray = np.clip(out, 0.0, 1.0)
    return clipped


def _new_scanner(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = int(images.shape[0])
    luma = (images @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
    saturation = rng.uniform(0.05, 0.2, n).astype(np.float32)[:, None, None, None]
    washed = luma + saturation * (images - luma)
    fade = rng.uniform(0.85, 0.95, n).astype(np.float32)[:, None, None, None]
    faded: np.ndarray = 1.0 - (1.0 - washed) * fade
    return faded


def _skew(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shear each document by a small random angle (a page fed slightly askew)."""
    n, h, w = (int(v) for v in images.shape[:3])
    slope = rng.uniform(-0.08, 0.08, n)
    rows = np.arange(h) - h / 2
    shift = np.rint(slope[:, None] * rows[None, :]).astype(np.intp)  # (n, h)
    cols = np.clip(np.arange(w)[None, None, :] - shift[:, :, None], 0, w - 1)  # (n, h, w)
    return np.take_along_axis(images, cols[..., None], axis=2)
