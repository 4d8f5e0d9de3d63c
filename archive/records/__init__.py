"""Records: what the archive says about each document and transaction.

Owns the platform manifest, metadata read from the text (metadata, amounts), the
document record (document.json), archivists' corrections (corrections, kept as new
versions), transaction records (transaction.json), filing under a transaction, and
the export view of documents and pages.

May import: archive.storage and the shared basics.
"""
