"""Ingest: the use cases that bring scans in.

Owns one document's way from a PDF to a filed package (document), the batch as plain
Python with the task executor injected (batch: the Prefect flow, the tests and
``serve --once`` call the same function), the inbox's hot folder (inbox) and progress
accounting (progress).

May import every other part of archive/; nothing in archive/ imports it.
"""
