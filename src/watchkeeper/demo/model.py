"""The scenario's photocopy detector: a small CNN trained on the CPU in about a minute.

Needs PyTorch (``pip install 'watchkeeper[torch]'``); the import is checked by
:func:`require_torch` so the message names the extra.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import Tensor
    from torch.nn import Module


def require_torch() -> Any:
    """Import torch, or raise an ImportError that says which extra installs it."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised in the minimal environment
        raise ImportError(
            "the document-fraud demo needs PyTorch: pip install 'watchkeeper[torch]'"
        ) from exc
    return torch


def build_model(seed: int = 0) -> torch.nn.Module:
    """A three-block CNN; ``model.embed`` is the 32-wide layer the scenario monitors.

    Examples
    --------
    >>> model = build_model(seed=0)
    >>> [name for name, _ in model.named_children()]
    ['features', 'embed', 'head']
    """
    torch = require_torch()
    nn = torch.nn
    torch.manual_seed(seed)
    # Photocopy cues (grey, flat colour, toner specks) survive halving the resolution, and a
    # 32x32 input makes training four times cheaper; batch norm lets it converge in a few epochs.
    model: Module = nn.Sequential(
        _named(
            features=nn.Sequential(
                nn.AvgPool2d(2),
                nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            ),
            embed=nn.Sequential(nn.Linear(32, 32), nn.ReLU()),
            head=nn.Linear(32, 1),
        )
    )
    return model


def _named(**modules: Any) -> Any:
    from collections import OrderedDict

    return OrderedDict(modules)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``uint8`` ``(N, H, W, 3)`` images as a ``float32`` ``(N, 3, H, W)`` tensor in 0..1."""
    torch = require_torch()
    tensor: Tensor = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    return tensor.float() / 255.0


@dataclass(frozen=True)
class TrainingReport:
    """How training went: epochs, seconds, and the final training loss."""

    epochs: int
    seconds: float
    loss: float
    n_train: int


def train_model(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int = 5,
    batch_size: int = 64,
    seed: int = 0,
    threads: int = 2,
) -> tuple[Module, TrainingReport]:
    """Train :func:`build_model` with Adam, a one-cycle learning rate and a logistic loss.

    The one-cycle schedule ends at a tiny learning rate, so the last epoch's model is the one to
    keep (intermediate epochs, at the peak rate, are not).
    """
    torch = require_torch()
    torch.set_num_threads(threads)
    model = build_model(seed)
    x = to_tensor(images)
    y = torch.from_numpy(labels.astype(np.float32))
    if epochs < 1:
        raise ValueError(f"epochs: at least 1, got {epochs}")
    if len(images) != len(labels) or len(images) < batch_size:
        raise ValueError(f"images: {len(images)} images and {len(labels)} labels; need as many "
                         f"of each, and at least batch_size={batch_size}")
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = epochs * ((len(images) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=5e-3, total_steps=steps)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    loss_value = float("nan")
    done = 0
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            optimiser.zero_grad()
            loss = loss_fn(model(x[idx]).squeeze(1), y[idx])
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
        loss_value = total / len(x)
        done += 1
    model.eval()
    return model, TrainingReport(done, time.perf_counter() - start, loss_value, len(x))


def predict(
    model: torch.nn.Module, images: np.ndarray, *, batch_size: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Photocopy probabilities and ``embed``-layer activations, without logging anything."""
    torch = require_torch()
    scores, embeddings = [], []
    captured: list[Any] = []
    embed = model.get_submodule("embed")
    handle = embed.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                logits = model(to_tensor(images[i : i + batch_size])).squeeze(1)
                scores.append(torch.sigmoid(logits).numpy().astype(np.float64))
                embeddings.append(captured.pop().numpy().astype(np.float32))
    finally:
        handle.remove()
    if not scores:
        return np.empty(0), np.empty((0, 32), dtype=np.float32)
    return np.concatenate(scores), np.concatenate(embeddings)
