"""Integrations with the frameworks deep-learning teams already use.

Every submodule imports its framework lazily, so ``import watchkeeper.integrations`` works on a
bare install:

- :mod:`watchkeeper.integrations.images`: image properties as monitored features (numpy only).
- :mod:`watchkeeper.integrations.text`: text properties, and sentence embeddings when the
  ``text`` extra is installed.
- :mod:`watchkeeper.integrations.torch`: forward hooks that log a layer's activations as
  embeddings (``pip install 'watchkeeper[torch]'``).
- :mod:`watchkeeper.integrations.sklearn`: an estimator wrapper that logs inputs, scores and
  latency.
- :mod:`watchkeeper.integrations.tensorboard`: monitor metrics as TensorBoard scalars.

>>> import watchkeeper.integrations
>>> "torch" in watchkeeper.integrations.__doc__
True
"""

from __future__ import annotations

__all__: list[str] = []
