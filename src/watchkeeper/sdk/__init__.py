"""The Python SDK: log predictions and labels from a serving process or a notebook.

``Client(url, token)`` sends to a Watchkeeper server in the background (batching, retries,
spooling to disk); ``LocalClient(db, project)`` writes straight into a store. Both have
``log``, ``log_batch``, ``log_labels``, ``flush`` and ``close``. See docs/sdk.md.
"""

from __future__ import annotations

from watchkeeper.sdk.client import Client, LocalClient, default_spool_dir
from watchkeeper.sdk.environment import serving_environment

__all__ = ["Client", "LocalClient", "default_spool_dir", "serving_environment"]
