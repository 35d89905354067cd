"""Synthetic documents: reproducible, the right mix, the new scanner washes colour out."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.demo.documents import SIZE, generate_documents
from watchkeeper.integrations.images import image_properties


def test_same_seed_same_documents_and_exact_share() -> None:
    a = generate_documents(300, photocopy_share=0.2, seed=5)
    b = generate_documents(300, photocopy_share=0.2, seed=5)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.images.shape == (300, SIZE, SIZE, 3) and int(a.labels.sum()) == 60
    assert set(a.branch) <= {"north", "south", "east", "west"}
    assert set(a.scanner) == {"standard"}
    assert not np.array_equal(a.images, generate_documents(300, seed=6).images)


def test_new_scanner_fades_and_washes_out_colour() -> None:
    old = image_properties(generate_documents(400, photocopy_share=0.0, seed=1).images)
    docs = generate_documents(400, photocopy_share=0.0, new_scanner_share=1.0, seed=1)
    new = image_properties(docs.images)
    assert set(docs.scanner) == {"new"}
    assert np.median(new["colourfulness"]) < 0.5 * np.median(old["colourfulness"])
    assert np.median(new["contrast"]) < np.median(old["contrast"])
    assert np.median(new["brightness"]) > np.median(old["brightness"])


def test_variety_within_each_class() -> None:
    p = image_properties(generate_documents(400, photocopy_share=0.5, seed=2).images)
    # Layouts, stamps, photos and noise make every property spread out.
    for name in ("brightness", "contrast", "colourfulness", "sharpness", "noise"):
        assert np.std(p[name]) > 0.05 * abs(np.mean(p[name])), name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -1}, "n: must be non-negative"),
        ({"n": 5, "photocopy_share": 1.5}, "photocopy_share"),
        ({"n": 5, "new_scanner_share": -0.1}, "new_scanner_share"),
        ({"n": 5, "size": 8}, "size"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_documents(**kwargs)  # type: ignore[arg-type]


def test_empty_batch() -> None:
    docs = generate_documents(0)
    assert docs.images.shape == (0, SIZE, SIZE, 3) and len(docs) == 0
