"""PyTorch hooks: same results, the right embeddings and scores, failures contained."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from watchkeeper.integrations.torch import monitor_module  # noqa: E402


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[dict[str, Any]] = []
        self.fail = fail

    def log_batch(self, model: str, **columns: Any) -> None:
        if self.fail:
            raise ConnectionError("server away")
        self.batches.append({"model": model, **columns})


def _net(out: int = 1) -> Any:
    torch.manual_seed(0)
    net = torch.nn.Sequential()
    net.add_module("body", torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.ReLU()))
    net.add_module("embed", torch.nn.Linear(6, 4))
    net.add_module("head", torch.nn.Linear(4, out))
    return net.eval()


def test_outputs_unchanged_and_embeddings_are_the_layer_output() -> None:
    net, x = _net(), torch.randn(7, 5)
    with torch.no_grad():
        before = net(x)
        client = Recorder()
        with monitor_module(net, client, "m", layer="embed", output="logits", version="v1"):
            during = net(x)
        after = net(x)
        expected_embed = net.embed(net.body(x)).numpy()
    assert torch.equal(before, during) and torch.equal(before, after)
    (batch,) = client.batches
    assert batch["model"] == "m" and batch["version"] == "v1"
    np.testing.assert_allclose(batch["embeddings"], expected_embed, rtol=1e-6)
    np.testing.assert_allclose(batch["scores"], torch.sigmoid(before[:, 0]).numpy(), rtol=1e-6)
    assert len(set(batch["ids"])) == 7 and batch["latency_ms"].shape == (7,)
    assert not net._forward_hooks and not net.embed._forward_hooks  # removed on exit


def test_multiclass_outputs_give_probs_and_predicted() -> None:
    net, client = _net(out=3), Recorder()
    monitor_module(net, client, "m", layer=net.embed)
    with torch.no_grad():
        logits = net(torch.randn(4, 5))
    batch = client.batches[0]
    np.testing.assert_allclose(batch["probs"], torch.softmax(logits, 1).numpy(), rtol=1e-6)
    assert batch["predicted"].tolist() == [str(i) for i in logits.argmax(1).tolist()]
    assert "scores" not in batch


def test_binary_two_column_output_scores_positive_class() -> None:
    net, client = _net(out=2), Recorder()
    monitor_module(net, client, "m")
    with torch.no_grad():
        logits = net(torch.randn(3, 5))
    np.testing.assert_allclose(
        client.batches[0]["scores"], torch.softmax(logits, 1)[:, 1].numpy(), rtol=1e-6
    )
    assert "embeddings" not in client.batches[0]


def test_annotate_applies_to_next_batch_only_and_features_function() -> None:
    net, client = _net(), Recorder()
    monitor = monitor_module(
        net, client, "m", layer="embed", features=lambda x: {"mean": x.mean(1).numpy()}
    )
    monitor.annotate(
        ids=["a", "b"], tags={"branch": ["n", "s"]}, features={"k": [1.0, 2.0]}, ts=[5.0, 6.0]
    )
    with torch.no_grad():
        x = torch.randn(2, 5)
        net(x)
        net(torch.randn(2, 5))
    first, second = client.batches
    assert first["ids"].tolist() == ["a", "b"] and first["tags"]["branch"] == ["n", "s"]
    np.testing.assert_allclose(first["features"]["mean"], x.mean(1).numpy())
    assert first["features"]["k"] == [1.0, 2.0] and first["ts"] == [5.0, 6.0]
    assert "tags" not in second and second["ids"][0] != "a"
    assert monitor.batches == 2 and monitor.events == 4


def test_training_passes_are_not_logged_unless_asked() -> None:
    net, client = _net(), Recorder()
    monitor_module(net.train(), client, "m")
    net(torch.randn(2, 5))
    assert client.batches == []
    monitor_module(net, client, "m2", log_training=True)
    net(torch.randn(2, 5))
    assert [b["model"] for b in client.batches] == ["m2"]


def test_logging_failure_never_breaks_inference() -> None:
    net = _net()
    monitor = monitor_module(net, Recorder(fail=True), "m")
    with torch.no_grad():
        out = net(torch.randn(3, 5))
    assert out.shape == (3, 1)
    assert monitor.errors == 1 and isinstance(monitor.last_error, ConnectionError)


def test_wrong_ids_length_is_reported_as_error() -> None:
    net = _net()
    monitor = monitor_module(net, Recorder(), "m")
    monitor.annotate(ids=["only-one"])
    with torch.no_grad():
        net(torch.randn(3, 5))
    assert monitor.errors == 1 and "ids" in str(monitor.last_error)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer": "nope"}, "layer: 'nope' is not a submodule"),
        ({"output": "raw"}, "output: 'raw'"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        monitor_module(_net(), Recorder(), "m", **kwargs)


def test_not_a_module_is_rejected() -> None:
    with pytest.raises(TypeError, match="module"):
        monitor_module(object(), Recorder(), "m")  # type: ignore[arg-type]


def test_without_torch_the_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import watchkeeper.integrations, watchkeeper.integrations.images\n"
        "try:\n"
        "    import watchkeeper.integrations.torch\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'watchkeeper[torch]'" in out.stdout
