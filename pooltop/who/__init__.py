"""Who allocates it: a cache's allocations attributed to kernel call sites, processes and stacks.

Linux: the kernel's kmem trace events in a private tracefs instance (tracefs.py), read as text
(tracetext.py, reader.py), allocations paired with frees (ledger.py), ranked (attribution.py).
session.WhoTracer runs one trace; command.py is `pooltop who`. Windows: the ETW capture commands
(windows.py, from capture.py, which also writes the bundle's capture scripts for both systems);
live attribution is not built there yet.
"""
