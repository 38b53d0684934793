"""pooltop: find kernel memory leaks (Windows pool tags, Linux slab caches)."""

__version__ = "0.1.0"
