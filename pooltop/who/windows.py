"""`pooltop who TAG` on Windows: how to answer the question with ETW until pooltop does it live.

The commands come from who.capture (the same ones the vendor bundle carries), so the two never
drift apart.
"""

from __future__ import annotations

from pooltop.model import printable
from pooltop.who.capture import windows_commands, xperf_start_command

WPRP_FILE = "capture/pool.wprp"


def capture_instructions(tag: str) -> str:
    """The text `pooltop who TAG` prints on Windows."""
    capture = windows_commands([tag])
    wprp = next(f.text for f in capture.files if f.name == WPRP_FILE)
    lines = [
        f"pooltop who {printable(tag)}: live attribution on Windows is not built yet.",
        "The same question (which code and which process allocate the tag) is answered by an ETW pool",
        "trace with allocation stacks, filtered to the tag. From an elevated command prompt on the",
        "leaking machine, with the Windows Performance Toolkit (Windows ADK or SDK):",
        "",
        f"  {xperf_start_command([tag])}",
        "  (let the tag grow for several minutes)",
        "  xperf -d pool.etl",
        "",
        "Or with Windows Performance Recorder: save the profile below as pool.wprp, then",
        "",
        "  wpr -start pool.wprp!PooltopPool -filemode",
        "  (let the tag grow for several minutes)",
        "  wpr -stop pool-wpr.etl",
        "",
        "Open the trace in Windows Performance Analyzer (wpa pool.etl): Memory > Pool, outstanding",
        "allocations (inserted, not freed, in the trace) by tag and stack, with symbols loaded.",
        *(f"note: {n}" for n in capture.notes),
        "",
        "pool.wprp:",
        wprp.rstrip("\n"),
    ]
    return "\n".join(lines) + "\n"
