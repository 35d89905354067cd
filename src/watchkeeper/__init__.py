"""Watchkeeper keeps watch over machine-learning models in production.

Importing the package is cheap: heavy modules (scipy, scikit-learn, SQLAlchemy, FastAPI, torch)
load only when the piece that needs them is first used.

>>> import watchkeeper
>>> watchkeeper.__version__
'0.1.0'
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
