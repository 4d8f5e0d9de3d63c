"""trade-archive's domain library: everything from a scanned PDF to a filed,
checksummed archive package. No Prefect here; ``flows/`` orchestrates it."""

PIPELINE_VERSION = "0.1.0"
