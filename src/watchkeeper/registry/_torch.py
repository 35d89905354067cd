"""Loading PyTorch weights from the registry, verified first and never unpickled.

``*.safetensors`` files load with safetensors; ``*.pt``/``*.pth``/``*.bin`` with
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from watchkeeper.registry._load import LoadedArtifact, load_version

_TORCH_SUFFIXES = (".pt", ".pth", ".bin")


def load_state_dict(
    store_or_url: Any,
    project: str,
    model: str,
    alias: str = "champion",
    *,
    version: str | None = None,
    artifacts: str | Path | None = None,
    public_key: str | Path | None = None,
    fallback: bool = True,
    map_location: str = "cpu",
) -> tuple[dict[str, Any], LoadedArtifact]:
    """The state dict of a model version's verified artifact (every safetensors shard merged,
    else the one torch file), and what was loaded: report ``loaded.digest`` through
    ``client.report_model_digest(loaded.version, loaded.digest)`` so monitoring can tell
    which weights serve."""
    loaded = load_version(
        store_or_url, project, model, alias, version=version, artifacts=artifacts,
        public_key=public_key, fallback=fallback,
    )  # fmt: skip
    path = loaded.path
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    shards = [p for p in files if p.suffix == ".safetensors"]
    if shards:
        from safetensors.torch import load_file

        state: dict[str, Any] = {}
        for shard in shards:
            state.update(load_file(str(shard), device=map_location))
        return state, loaded
    weights = [p for p in files if p.suffix in _TORCH_SUFFIXES]
    if len(weights) != 1:
        raise ValueError(
            f"artifact: expected *.safetensors files or one {'/'.join(_TORCH_SUFFIXES)} file in "
            f"{model} {loaded.version}, found {[p.name for p in files][:10]}"
        )
    import torch

    out = torch.load(weights[0], map_location=map_location, weights_only=True)
    if not isinstance(out, dict):
        raise ValueError(
            f"artifact: {weights[0].name} holds a {type(out).__name__}, not a state dict"
        )
    return out, loaded
