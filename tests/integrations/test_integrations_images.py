"""Image properties: known values, the photocopy stands out, layouts, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.demo.documents import generate_documents
from watchkeeper.integrations.images import PROPERTY_NAMES, image_properties


def test_constant_images_have_known_values() -> None:
    grey = np.full((2, 10, 20, 3), 128, dtype=np.uint8)
    p = image_properties(grey)
    assert list(p) == list(PROPERTY_NAMES)
    np.testing.assert_allclose(p["brightness"], 128 / 255, rtol=1e-6)
    np.testing.assert_allclose(p["contrast"], 0.0, atol=1e-6)
    np.testing.assert_allclose(p["colourfulness"], 0.0, atol=1e-4)
    np.testing.assert_allclose(p["grayscale_score"], 1.0)
    np.testing.assert_allclose(p["sharpness"], 0.0, atol=1e-9)
    np.testing.assert_allclose(p["noise"], 0.0, atol=1e-9)
    assert p["height"].tolist() == [10, 10] and p["width"].tolist() == [20, 20]
    assert p["aspect_ratio"].tolist() == [2.0, 2.0]


def test_colourfulness_matches_hasler_susstrunk_formula(rng: np.random.Generator) -> None:
    img = rng.integers(0, 256, size=(1, 16, 16, 3)).astype(np.float64)
    r, g, b = img[0, ..., 0], img[0, ..., 1], img[0, ..., 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    expected = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(
        rg.mean() ** 2 + yb.mean() ** 2
    )
    got = image_properties(img.astype(np.uint8))["colourfulness"][0]
    assert got == pytest.approx(expected, rel=1e-4)


def test_noise_estimate_recovers_gaussian_sigma(rng: np.random.Generator) -> None:
    clean = np.full((4, 64, 64), 0.5)
    noisy = clean + rng.normal(0, 0.05, clean.shape)
    est = image_properties(noisy)["noise"]
    np.testing.assert_allclose(est, 0.05, rtol=0.1)


def test_sharpness_drops_when_blurred(rng: np.random.Generator) -> None:
    img = rng.random((1, 32, 32))
    blurred = sum(img[:, i : i + 30, j : j + 30] for i in range(3) for j in range(3)) / 9
    assert image_properties(blurred)["sharpness"][0] < image_properties(img)["sharpness"][0] / 5


def test_photocopy_stands_out() -> None:
    docs = generate_documents(400, photocopy_share=0.5, seed=3)
    p = image_properties(docs.images)
    copy, genuine = docs.labels == 1, docs.labels == 0
    # Most photocopies are grey and dull; most originals are neither.
    assert np.median(p["grayscale_score"][copy]) > 0.95 > np.median(p["grayscale_score"][genuine])
    assert np.median(p["colourfulness"][copy]) < 15 < np.median(p["colourfulness"][genuine])


def test_layouts_and_sizes_agree(rng: np.random.Generator) -> None:
    nhwc = rng.integers(0, 256, size=(3, 8, 12, 3), dtype=np.uint8)
    a = image_properties(nhwc)
    b = image_properties(nhwc.transpose(0, 3, 1, 2), channels_last=False)
    c = image_properties([nhwc[0], nhwc[1][:5], nhwc[2]])  # a list with mixed sizes
    for name in PROPERTY_NAMES:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-6)
        np.testing.assert_allclose(a[name][[0, 2]], c[name][[0, 2]], rtol=1e-6)
    assert c["height"].tolist() == [8, 5, 8]
    floats = image_properties(nhwc.astype(np.float32) / 255)
    np.testing.assert_allclose(floats["colourfulness"], a["colourfulness"], rtol=1e-4)
    rgba = np.concatenate([nhwc, np.zeros_like(nhwc[..., :1])], axis=3)
    np.testing.assert_allclose(image_properties(rgba)["brightness"], a["brightness"])


def test_large_batches_are_chunked_consistently(rng: np.random.Generator) -> None:
    imgs = rng.integers(0, 256, size=(600, 32, 32, 3), dtype=np.uint8)
    whole = image_properties(imgs)
    first = image_properties(imgs[:7])
    np.testing.assert_allclose(whole["contrast"][:7], first["contrast"], rtol=1e-6)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (np.zeros((2, 8)), "batch: expected"),
        (np.zeros((2, 8, 8, 2)), "2 channels"),
        (np.zeros((1, 2, 8, 3)), "at least 3x3"),
        (np.full((1, 8, 8, 3), np.nan), "NaN"),
        (np.full((1, 8, 8, 3), "a"), "not numeric"),
    ],
)
def test_bad_input_names_the_field(batch: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        image_properties(batch)


def test_bad_item_in_a_list_is_named() -> None:
    with pytest.raises(ValueError, match=r"batch\[1\]"):
        image_properties([np.zeros((8, 8, 3)), np.zeros((8, 8, 2))])
