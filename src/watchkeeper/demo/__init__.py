"""The document-fraud scenario of docs/design.md, run end to end: ``watchkeeper demo``.

- :mod:`watchkeeper.demo.documents`: synthetic genuine documents and photocopies (numpy).
- :mod:`watchkeeper.demo.model`: the small CNN that flags photocopies (needs PyTorch).
- :mod:`watchkeeper.demo.scenario`: training, registration, simulated days through the real
  path, the narrative.
"""

from __future__ import annotations

__all__: list[str] = []
