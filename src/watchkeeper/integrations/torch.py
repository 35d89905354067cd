"""Monitor a PyTorch model from inside: forward hooks that log each batch it scores.

:func:`monitor_module` registers two forward hooks: one on the layer you choose (its activations
become the events' embeddings, the input of embedding-drift checks) and one on the whole module
(its outputs become scores, probabilities and predicted classes). Each forward pass in
evaluation mode logs one batch through any client with the SDK's ``log_batch``. The hooks only
read: they return nothing, so the model's outputs are the very same tensors, and a failure to
log is counted and reported, never raised into your inference code.

Needs PyTorch: ``pip install 'watchkeeper[torch]'``.

Examples
--------
>>> import torch
>>> from watchkeeper.integrations.torch import monitor_module
>>> class Recorder:
...     def __init__(self):
...         self.batches = []
...     def log_batch(self, model, **columns):
...         self.batches.append(columns)
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).eval()
>>> client = Recorder()
>>> with monitor_module(net, client, "toy", layer="1", output="logits") as monitor:
...     monitor.annotate(ids=["a", "b", "c"], tags={"source": ["x", "x", "y"]})
...     out = net(torch.randn(3, 4))
>>> batch = client.batches[0]
>>> batch["ids"].tolist(), batch["embeddings"].shape, batch["scores"].shape
(['a', 'b', 'c'], (3, 8), (3,))
>>> bool(((batch["scores"] > 0) & (batch["scores"] < 1)).all())
True
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import numpy as np

from watchkeeper.integrations._logger import BatchLogger, IdMaker

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised in the environment without torch
    raise ImportError(
        "watchkeeper.integrations.torch needs PyTorch: pip install 'watchkeeper[torch]'"
    ) from exc

__all__ = ["ModuleMonitor", "TorchChallenger", "monitor_module"]

_log = logging.getLogger(__name__)

Output = Literal["auto", "logits", "probability", "scores"]


@dataclass
class _Pending:
    ids: Any = None
    features: Mapping[str, Any] | None = None
    tags: Mapping[str, Any] | None = None
    ts: Any = None
    payload_refs: Any = None


@dataclass
class ModuleMonitor:
    """The handle :func:`monitor_module` returns: annotate the next batch, remove the hooks.

    Attributes
    ----------
    batches, events
        How many forward passes and events were logged.
    errors
        How many batches could not be logged (the last error is in ``last_error``).
    shadow
        The :class:`~watchkeeper.shadow.Shadow` each batch is mirrored to, or ``None``; its
        ``stats`` count what it scored and dropped.
    """

    module: torch.nn.Module
    client: BatchLogger
    model: str
    layer: torch.nn.Module
    output: Output
    version: str | None
    features: Callable[[Any], Mapping[str, Any]] | None
    log_training: bool
    id_maker: IdMaker
    batches: int = 0
    events: int = 0
    errors: int = 0
    last_error: BaseException | None = None
    _handles: list[Any] = field(default_factory=list)
    _pending: _Pending = field(default_factory=_Pending)
    _activations: Any = None
    _started: float = 0.0
    shadow: Any = None
    _owns_shadow: bool = False

    def annotate(
        self,
        *,
        ids: Any = None,
        features: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        ts: Any = None,
        payload_refs: Any = None,
    ) -> None:
        """Request ids, extra features, tags, event times (seconds since the epoch) and payload
        references for the next forward pass only."""
        self._pending = _Pending(
            ids=ids, features=features, tags=tags, ts=ts, payload_refs=payload_refs
        )

    def remove(self) -> None:
        """Remove the hooks; the module is left exactly as it was."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self.shadow is not None and self._owns_shadow:
            self.shadow.close()

    def __enter__(self) -> ModuleMonitor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    # --- hooks -------------------------------------------------------------------------------

    def _before(self, module: torch.nn.Module, args: Any) -> None:
        self._started = time.perf_counter()
        self._activations = None
        if self.shadow is not None and hasattr(self.shadow, "begin_serving"):
            self.shadow.begin_serving()

    def _served(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        self.shadow.end_serving()

    def _capture(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if isinstance(output, tuple | list):
            output = output[0]
        if isinstance(output, torch.Tensor):
            self._activations = output.detach()

    def _after(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if module.training and not self.log_training:
            return
        elapsed_ms = (time.perf_counter() - self._started) * 1000.0
        pending, self._pending = self._pending, _Pending()
        try:
            columns = self._columns(args, output, elapsed_ms, pending)
        except Exception as exc:  # never break the caller's inference because logging failed
            self._failed(exc)
            return
        if self.shadow is not None:
            self._mirror(args, columns)
        try:
            self.client.log_batch(self.model, **columns)
        except Exception as exc:
            self._failed(exc)
            return
        self.batches += 1
        self.events += len(columns["ids"])

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = exc
        _log.warning("watchkeeper: could not log a batch of %r: %s", self.model, exc)

    def _mirror(self, args: Any, columns: Mapping[str, Any]) -> None:
        """Hand the batch (as numpy, no copy) and its ids to the shadow; never raise."""
        x = args[0] if args else None
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        extra = {k: columns[k] for k in ("tags", "ts", "features") if k in columns}
        try:
            self.shadow.submit(columns["ids"], x, **extra)
        except Exception as exc:  # a closed or broken shadow must not break serving
            self._failed(exc)

    def _columns(
        self, args: Any, output: Any, elapsed_ms: float, pending: _Pending
    ) -> dict[str, Any]:
        if isinstance(output, tuple | list):
            output = output[0]
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"output: expected a tensor, got {type(output).__name__}")
        out = output.detach().float()
        n = out.shape[0] if out.ndim else 1
        columns: dict[str, Any] = {}
        columns.update(_scores(out.reshape(n, -1), self.output))
        if self._activations is not None:
            act = self._activations.reshape(self._activations.shape[0], -1)
            if act.shape[0] != n:
                raise ValueError(
                    f"layer: its output has {act.shape[0]} rows for a batch of {n}; "
                    "choose a layer whose first dimension is the batch"
                )
            columns["embeddings"] = act.float().cpu().numpy()
        ids = pending.ids if pending.ids is not None else self.id_maker(n)
        columns["ids"] = np.asarray(ids, dtype=object)
        if len(columns["ids"]) != n:
            raise ValueError(f"ids: {len(columns['ids'])} given for a batch of {n}")
        columns["latency_ms"] = np.full(n, elapsed_ms)
        features: dict[str, Any] = {}
        if self.features is not None:
            features.update(self.features(args[0] if args else None))
        if pending.features:
            features.update(pending.features)
        if features:
            columns["features"] = features
        if pending.tags:
            columns["tags"] = dict(pending.tags)
        if pending.ts is not None:
            columns["ts"] = pending.ts
        if pending.payload_refs is not None:
            columns["payload_refs"] = pending.payload_refs
        if self.version is not None:
            columns["version"] = self.version
        return columns


def _scores(out: torch.Tensor, output: Output) -> dict[str, np.ndarray]:
    k = out.shape[1]
    if k == 1:
        col = out[:, 0]
        if output == "logits" or (output == "auto" and bool(((col < 0) | (col > 1)).any())):
            col = torch.sigmoid(col)
        return {"scores": col.cpu().numpy().astype(np.float64)}
    if output in ("logits", "auto") and not (
        output == "auto" and bool((out >= 0).all()) and bool(
            torch.allclose(out.sum(1), torch.ones(1, device=out.device), atol=1e-4))
    ):
        probs = torch.softmax(out, dim=1)
    else:
        probs = out
    p = probs.cpu().numpy().astype(np.float64)
    result = {"probs": p, "predicted": p.argmax(axis=1).astype(str).astype(object)}
    if k == 2:
        result["scores"] = p[:, 1]
    return result


class TorchChallenger:
    """A torch challenger for :class:`~watchkeeper.shadow.Shadow`: a module, or a saved one.

    Scores a mirrored batch (a numpy array or a tensor, as the champion received it) in
    evaluation mode without gradients, and turns the output into ``scores`` / ``probs`` /
    ``predicted`` exactly as :func:`monitor_module` does for the champion. It pickles (the
    module with its weights, or just the path), so it can run in the shadow's own process; a
    path is loaded there, on first use.

    Parameters
    ----------
    module
        A ``torch.nn.Module``, or the path of a TorchScript file (``torch.jit.save``) or of a
        whole pickled module (``torch.save(module)``).
    output
        What the module returns, as in :func:`monitor_module`.

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 1))
    >>> challenger = TorchChallenger(net, output="logits")
    >>> out = challenger(np.zeros((3, 4), dtype=np.float32))
    >>> out["scores"].shape, bool(((out["scores"] > 0) & (out["scores"] < 1)).all())
    ((3,), True)
    """

    def __init__(self, module: torch.nn.Module | str | os.PathLike[str], output: Output = "auto"):
        if not isinstance(module, torch.nn.Module | str | os.PathLike):
            raise TypeError(
                f"shadow: expected a torch.nn.Module or a path, got {type(module).__name__}"
            )
        if isinstance(module, str | os.PathLike) and not os.path.isfile(module):
            raise ValueError(f"shadow: no such file {os.fspath(module)!r}")
        if output not in ("auto", "logits", "probability", "scores"):
            raise ValueError(f"output: {output!r} is not one of auto, logits, probability, scores")
        self.module = module
        self.output = output
        self._net: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"module": self.module, "output": self.output}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.module, self.output, self._net = state["module"], state["output"], None

    def _load(self) -> Any:
        if self._net is None:
            if isinstance(self.module, torch.nn.Module):
                net: Any = self.module
            else:
                try:
                    net = torch.jit.load(os.fspath(self.module), map_location="cpu")  # type: ignore[no-untyped-call]
                except Exception:  # not TorchScript: a whole pickled module
                    net = torch.load(os.fspath(self.module), map_location="cpu", weights_only=False)
                if not isinstance(net, torch.nn.Module | torch.jit.ScriptModule):
                    raise TypeError(
                        f"shadow: {os.fspath(self.module)!r} holds a {type(net).__name__}, not a "
                        "module (a state_dict needs its module: pass the module itself)"
                    )
            self._net = net.eval()
        return self._net

    def __call__(self, inputs: Any) -> dict[str, np.ndarray]:
        net = self._load()
        x = inputs if isinstance(inputs, torch.Tensor) else torch.from_numpy(np.asarray(inputs))
        with torch.no_grad():
            out = net(x)
        if isinstance(out, tuple | list):
            out = out[0]
        out = out.detach().float()
        n = out.shape[0] if out.ndim else 1
        return _scores(out.reshape(n, -1), self.output)


def monitor_module(
    module: torch.nn.Module,
    client: BatchLogger,
    model: str,
    *,
    layer: str | torch.nn.Module | None = None,
    output: Output = "auto",
    version: str | None = None,
    features: Callable[[Any], Mapping[str, Any]] | None = None,
    log_training: bool = False,
    id_prefix: str | None = None,
    digest: str | None = None,
    shadow: Any = None,
    shadow_version: str | None = None,
) -> ModuleMonitor:
    """Log every forward pass of ``module`` through ``client``, a batch at a time.

    Parameters
    ----------
    module
        The model. Its output (first element when it returns a tuple) is a tensor of shape
        ``(N,)``, ``(N, 1)`` (binary) or ``(N, k)`` (``k`` classes).
    client
        A :class:`watchkeeper.Client`, ``LocalClient`` or anything with ``log_batch``. The HTTP
        client buffers and sends in the background, which keeps the overhead small.
    model
        Name of the monitored model in Watchkeeper.
    layer
        Submodule whose output becomes the embedding: its name in ``module.named_modules()``
        (such as ``"embed"`` or ``"encoder.layer.5"``) or the submodule itself. ``None`` logs no
        embeddings.
    output
        What the module returns: ``"logits"`` (sigmoid or softmax is applied), ``"probability"``
        (or ``"scores"``; logged as they are), or ``"auto"``: values outside 0..1, or rows that
        do not sum to one, are taken as logits.
    version
        Model version stamped on every event.
    features
        Optional function of the forward pass's first input returning named feature columns,
        e.g. image properties of an image batch.
    log_training
        Also log forward passes made in training mode (off: training batches are not
        production traffic).
    id_prefix
        Prefix of generated request ids (a random one by default); pass real request ids
        per batch with :meth:`ModuleMonitor.annotate`.
    digest
        Artifact digest of the weights serving (``watchkeeper.registry.load_version(...)
        .digest``), reported with every batch for ``version`` when the client can
        (``report_model_digest``); a mismatch with the registered digest is an integrity
        finding.
    shadow
        A challenger to score the same batches off the serving path: a module, the path of a
        saved one (see :class:`TorchChallenger`), or a :class:`~watchkeeper.shadow.Shadow`
        built yourself (for its queue size, mode...). Each forward pass hands its input and
        request ids to the shadow's bounded queue (never waiting; a full queue drops and
        counts); the challenger's events are logged as ``shadow_version`` under
        ``shadow_model(model)``. :meth:`ModuleMonitor.remove` closes a shadow it built.
    shadow_version
        The challenger's version, required with a module or a path.

    Returns
    -------
    ModuleMonitor
        Use it as a context manager, or call ``remove()`` to take the hooks off.

    Raises
    ------
    ValueError
        When ``layer`` names no submodule, or ``output`` is not one of the choices.
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    if output not in ("auto", "logits", "probability", "scores"):
        raise ValueError(f"output: {output!r} is not one of auto, logits, probability, scores")
    if not model:
        raise ValueError("model: a non-empty name is required")
    target: torch.nn.Module | None
    if layer is None or isinstance(layer, torch.nn.Module):
        target = layer
    else:
        names = dict(module.named_modules())
        if layer not in names:
            some = ", ".join(repr(n) for n in list(names)[1:8])
            raise ValueError(f"layer: {layer!r} is not a submodule; some names: {some}")
        target = names[layer]
    if digest is not None:
        if version is None:
            raise ValueError("digest: give the version the digest belongs to (version=...)")
        reporter = getattr(client, "report_model_digest", None)
        if reporter is not None:
            reporter(version, digest)
    own = None
    if shadow is not None and not hasattr(shadow, "submit"):
        from watchkeeper.shadow import Shadow

        if not isinstance(shadow_version, str) or not shadow_version:
            raise ValueError("shadow_version: give the challenger's version with shadow=...")
        own = Shadow(TorchChallenger(shadow, output=output), client, model, shadow_version)
    monitor = ModuleMonitor(
        module=module,
        client=client,
        model=model,
        layer=target if target is not None else module,
        output=output,
        version=version,
        features=features,
        log_training=log_training,
        id_maker=IdMaker(id_prefix),
        shadow=own if own is not None else shadow,
        _owns_shadow=own is not None,
    )
    monitor._handles.append(module.register_forward_pre_hook(monitor._before))
    if target is not None:
        monitor._handles.append(target.register_forward_hook(monitor._capture))
    monitor._handles.append(module.register_forward_hook(monitor._after))
    if monitor.shadow is not None and hasattr(monitor.shadow, "begin_serving"):
        # after _after (hooks run in order), and even when the forward pass raised: a
        # deferring challenger waits while a request is marked as served
        monitor._handles.append(module.register_forward_hook(monitor._served, always_call=True))
    return monitor
