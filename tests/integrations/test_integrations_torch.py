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


def _challenger() -> Any:
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))


def test_shadow_option_mirrors_every_batch_to_the_challenger_process(tmp_path: Any) -> None:
    from watchkeeper.sdk import LocalClient
    from watchkeeper.shadow import shadow_model
    from watchkeeper.store import Store

    net, challenger = _net(), _challenger().eval()
    path = tmp_path / "challenger.pt"
    torch.save(challenger, path)  # a whole module: loaded in the child on first use
    client = LocalClient(str(tmp_path / "wk.db"), project="p")
    batches = [torch.randn(6, 5) for _ in range(5)]
    with monitor_module(
        net, client, "m", output="logits", version="v1", shadow=path, shadow_version="v2"
    ) as mon:
        assert mon.shadow.mode == "process"
        with torch.no_grad():
            for i, x in enumerate(batches):
                mon.annotate(ids=[f"b{i}-{j}" for j in range(6)], tags={"seg": ["s"] * 6})
                net(x)
        assert mon.shadow.flush(timeout=180)
        assert mon.shadow.stats.scored == 30 and mon.shadow.stats.dropped == 0
    assert mon.shadow.stats.queued == 0 and mon.errors == 0
    store = Store(str(tmp_path / "wk.db"))
    champion, shadow = store.read_window("p", "m"), store.read_window("p", shadow_model("m"))
    store.close()
    assert sorted(map(str, shadow.ids)) == sorted(map(str, champion.ids)) and len(shadow) == 30
    assert set(shadow.versions) == {"v2"} and set(champion.versions) == {"v1"}
    assert set(shadow.tags["seg"]) == {"s"}
    with torch.no_grad():
        expected = torch.sigmoid(challenger(torch.cat(batches))[:, 0]).numpy()
    order = {f"b{i}-{j}": i * 6 + j for i in range(5) for j in range(6)}
    got = np.empty(30)
    got[[order[str(i)] for i in shadow.ids]] = shadow.scores
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_shadow_option_takes_a_shadow_and_checks_its_arguments(tmp_path: Any) -> None:
    from watchkeeper.integrations.torch import TorchChallenger
    from watchkeeper.shadow import Shadow

    net, client = _net(), Recorder()
    sh = Shadow(TorchChallenger(_challenger(), output="logits"), client, "m", "v2")
    assert sh.mode == "thread"  # an in-memory recorder is not copied into a child
    with monitor_module(net, client, "m", output="logits", shadow=sh) as mon, torch.no_grad():
        out = net(torch.randn(4, 5))
    assert out.shape == (4, 1)
    assert sh.submit(["late"], np.zeros((1, 5), np.float32))  # remove() left it open
    sh.close()
    (champion,) = [b for b in client.batches if b["model"] == "m"]
    mirrored, late = [b for b in client.batches if b["model"] == "m:shadow"]
    assert list(late["ids"]) == ["late"]
    assert mirrored["model"] == "m:shadow" and mirrored["version"] == "v2"
    assert list(mirrored["ids"]) == list(champion["ids"]) and mon.errors == 0
    with pytest.raises(ValueError, match="shadow_version"):
        monitor_module(net, client, "m", shadow=_challenger())
    with pytest.raises(ValueError, match="shadow: no such file"):
        monitor_module(net, client, "m", shadow=tmp_path / "nope.pt", shadow_version="v2")
    with pytest.raises(TypeError, match=r"shadow: expected a torch\.nn\.Module"):
        monitor_module(net, client, "m", shadow=42, shadow_version="v2")


def test_forward_passes_are_marked_as_served_for_a_deferring_shadow(tmp_path: Any) -> None:
    from watchkeeper.integrations.torch import TorchChallenger
    from watchkeeper.sdk import LocalClient
    from watchkeeper.shadow import _SERVING, Shadow

    net = _net()
    client = LocalClient(str(tmp_path / "wk.db"), project="p")
    sh = Shadow(TorchChallenger(_challenger(), output="logits"), client, "m", "v2",
                mode="process", defer=True)  # fmt: skip
    seen: list[int] = []
    # what the shadow's mark reads while the forward pass runs
    probe = net.register_forward_hook(lambda *a: seen.append(int(sh._words[_SERVING])))
    with monitor_module(net, client, "m", output="logits", version="v1", shadow=sh) as mon:
        with torch.no_grad():
            net(torch.randn(4, 5))
            with pytest.raises(RuntimeError):
                net(torch.randn(4, 7))  # the wrong width: the forward pass raises
        assert seen == [1]  # marked while serving (the failing pass never reached the probe)
        assert sh._words[_SERVING] == 0  # and unmarked after both, the failing one included
        assert sh.flush(timeout=180) and sh.stats.scored == 4 and mon.errors == 0
    probe.remove()
    sh.close()
