"""Derive pooltop's negative and odd fixture drivers from the built ones (run by build.sh).

Standard library only, so it runs anywhere build.sh does. Every output is a deterministic function of
basic-x64-O2.sys:

  signed-basic-x64-O2.sys   + a WIN_CERTIFICATE in the security directory (a placeholder blob, not a
                            real Authenticode signature: pooltop only reports "has a signature")
  arm64-basic.sys           Machine patched to ARM64 (0xAA64): no call-site analysis, bytes pass only
  bad-truncated.sys         the first 1,000 bytes (headers intact, sections cut off)
  bad-garbage-imports.sys   the import directory overwritten with pseudo-random bytes
  bad-not-pe.sys            a text file with a driver's name
"""

from __future__ import annotations

import random
import struct
import sys
from pathlib import Path


def pe_offsets(data: bytes) -> tuple[int, int, int]:
    """(offset of the COFF header, of the optional header, of the data directories)."""
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    opt = pe + 24
    magic = struct.unpack_from("<H", data, opt)[0]
    dirs = opt + (112 if magic == 0x20B else 96)
    return pe + 4, opt, dirs


def rva_to_offset(data: bytes, rva: int) -> int:
    coff, opt, _ = pe_offsets(data)
    nsec, opt_size = struct.unpack_from("<H", data, coff + 2)[0], struct.unpack_from("<H", data, coff + 16)[0]
    table = opt + opt_size
    for i in range(nsec):
        vsize, va, rawsize, rawptr = struct.unpack_from("<IIII", data, table + 40 * i + 8)
        if va <= rva < va + max(vsize, rawsize):
            return rawptr + rva - va
    raise ValueError(f"RVA {rva:#x} is in no section")


def signed(data: bytes) -> bytes:
    out = bytearray(data)
    out += b"\0" * (-len(out) % 8)
    blob = b"pooltop fixture: placeholder, not a real signature"
    blob += b"\0" * (-len(blob) % 8)
    cert = struct.pack("<IHH", 8 + len(blob), 0x0200, 0x0002) + blob  # WIN_CERT_TYPE_PKCS_SIGNED_DATA
    _, _, dirs = pe_offsets(data)
    struct.pack_into("<II", out, dirs + 8 * 4, len(out), len(cert))  # IMAGE_DIRECTORY_ENTRY_SECURITY
    return bytes(out + cert)


def arm64(data: bytes) -> bytes:
    out = bytearray(data)
    coff, _, _ = pe_offsets(data)
    struct.pack_into("<H", out, coff, 0xAA64)
    return bytes(out)


def garbage_imports(data: bytes) -> bytes:
    out = bytearray(data)
    _, _, dirs = pe_offsets(data)
    rva, size = struct.unpack_from("<II", data, dirs + 8 * 1)
    start = rva_to_offset(data, rva)
    rng = random.Random(4)
    out[start : start + size] = bytes(rng.randrange(256) for _ in range(size))
    return bytes(out)


def main(bin_dir: str) -> None:
    out = Path(bin_dir)
    base = (out / "basic-x64-O2.sys").read_bytes()
    (out / "signed-basic-x64-O2.sys").write_bytes(signed(base))
    (out / "arm64-basic.sys").write_bytes(arm64(base))
    (out / "bad-truncated.sys").write_bytes(base[:1000])
    (out / "bad-garbage-imports.sys").write_bytes(garbage_imports(base))
    (out / "bad-not-pe.sys").write_bytes(b"This is not a driver, only a text file with a .sys name.\n" * 4)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent / "bin"))
