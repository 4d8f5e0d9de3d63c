"""Acceptance: whether a batch may be taken into the archive.

Owns the batch report (report), the acceptance checks and their flags (checks), and
the certificate written for each acceptance (certificate).

May import: archive.preservation, archive.records, archive.storage, archive.capture
(page images for the certificate) and the shared basics.
"""
