"""Preservation: keeping what is stored trustworthy and handing it on.

Owns verification (fixity, the event log, transaction records) and transfer of
validated packages; the authenticity work (signatures, the DA/T 70 four-property
checks, hand-over) belongs here too.

May import: archive.records, archive.storage and the shared basics.
"""
