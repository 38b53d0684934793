"""Record this machine's /proc/slabinfo, meminfo, uptime, kernel hostname/osrelease/version, the machine's arch and /sys/kernel/slab alias links
into a folder, so tests can run LinuxSource against a real machine's data.

    python tests/data/linux/record_tree.py tests/data/linux/NAME   (as root)

Only the alias *links* are recorded (name -> merged cache directory), not the cache directories.
"""

import os
import shutil
import sys

dest = sys.argv[1]
os.makedirs(os.path.join(dest, "proc"), exist_ok=True)
for name in ("slabinfo", "meminfo", "uptime", "sys/kernel/hostname", "sys/kernel/osrelease",
             "sys/kernel/version"):
    os.makedirs(os.path.dirname(os.path.join(dest, "proc", name)), exist_ok=True)
    shutil.copyfile(f"/proc/{name}", os.path.join(dest, "proc", name))
with open(os.path.join(dest, "proc", "sys", "kernel", "arch"), "w") as f:
    f.write(os.uname().machine + "\n")
slab = os.path.join(dest, "sys", "kernel", "slab")
os.makedirs(slab, exist_ok=True)
for entry in os.scandir("/sys/kernel/slab"):
    target = os.path.join(slab, entry.name)
    # The links may dangle in the copy: pooltop only reads where they point.
    if entry.is_symlink() and not os.path.lexists(target):
        os.symlink(os.readlink(entry.path), target)
