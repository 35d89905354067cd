"""Doctest collection: Alembic's env.py and revision files run only inside Alembic."""

collect_ignore_glob = ["migrations/*"]
