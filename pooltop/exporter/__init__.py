"""The Prometheus exporter behind `pooltop serve`.

    frame.py    pure: which rows one sample exports (top N by bytes + watch level and above), their
                labels and values, Windows' wrapping alloc/free counts turned into monotonic counters
    metrics.py  metric names and help (one table), and the prometheus_client Collector that turns the
                latest frame into metric families
    service.py  the sampling thread (one sample at a time), the HTTP server and the run loop
    command.py  the `pooltop serve` click command (imports prometheus_client only when it runs)

Python API, for any Source (live, or a recording replayed for a demo):

    from pooltop.exporter.service import ExportOptions, PoolExporter, serve_until
    exporter = PoolExporter(my_source, ExportOptions(interval=1.0, top=50))
    serve_until(exporter, "127.0.0.1", 9877, stop_event)
"""

from __future__ import annotations
