"""Prefect orchestration: thin flows and tasks over ``archive`` and ``index``."""
