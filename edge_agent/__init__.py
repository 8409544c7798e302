"""edge-agent: telemetry for sites running ASIC miners and NVIDIA GPU servers."""

__version__ = "0.1.0"
