"""Preservation: keeping what is stored trustworthy and handing it on.

Owns verification (fixity, the event log, transaction records, signatures), transfer
of validated packages, and the authenticity work: the centre's signatures and trusted
time (signing, with demo keys and a demo TSA in keys), the DA/T 70 four-property check
(fourprops) and the hand-over to the archives bureau (handover).

May import: archive.records, archive.storage and the shared basics.
"""
