"""NVIDIA GPUs through NVML (nvidia-ml-py), at parity with dcgm-exporter's defaults.

Usage by the runtime::

    collector = await open_gpu(cfg.gpu)       # None: GPU collection off
    if collector is not None:
        source = collector.xid_source()       # XID events; run it as a task
        ...  collector.collect() on a schedule, under asyncio.timeout(cfg.gpu.timeout)
        await collector.aclose()              # after cancelling the source task
"""

from edge_agent.collectors.gpu.collector import GpuCollector, XidSource, open_gpu

__all__ = ["GpuCollector", "XidSource", "open_gpu"]
