"""Capture: from a scanned PDF to each page's upright image, text and access PDF.

Owns page extraction and images (pages, imaging), what to refuse at intake (intake),
seals, orientation and skew, the OCR engines behind one interface (ocr), text
clean-up, the access PDF's text layer (textpdf), one page's processing (pageproc),
the worker pool that runs pages in processes (parallel) and stage timing.

May import: archive.errors, archive.config, archive.han. Knows nothing of records,
storage or the archive on disk: it turns files into pages and pages into text.
"""
