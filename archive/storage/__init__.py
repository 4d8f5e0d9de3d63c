"""Storage: the archive on disk and its fixity.

Owns the archive's layout and lock (store), BagIt packages (package), checksums and
atomic writes (fixity), the hash-chained event log (events), access levels and the
audit trail of use (access, audit).

May import: the shared basics (archive.errors, archive.config) only.
"""
