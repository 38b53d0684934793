"""Reading the parts of a PE image that the driver scanner needs, with pefile.

Only headers, the section table and the import directory are parsed up front (`fast_load=True`, then
the import directory alone); the version resource is parsed later and only for images worth reporting.
Anything wrong with a file becomes a `BadImage` whose message says why, so one bad file never stops a
scan of thousands.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import pefile

#: IMAGE_FILE_HEADER.Machine -> the arch name pooltop prints
MACHINES = {
    0x014C: "x86",
    0x8664: "x64",
    0xAA64: "arm64",
    0xA641: "arm64ec",
    0x01C4: "arm",
    0x0200: "ia64",
}

IMAGE_SCN_CNT_CODE = 0x00000020
IMAGE_SCN_MEM_EXECUTE = 0x20000000

_DIR_IMPORT = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_IMPORT"]
_DIR_RESOURCE = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]
_DIR_EXCEPTION = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_EXCEPTION"]
_DIR_SECURITY = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_SECURITY"]

#: WIN_CERTIFICATE.wRevision values (WIN_CERT_REVISION_1_0, WIN_CERT_REVISION_2_0)
_WIN_CERT_REVISIONS = (0x0100, 0x0200)


class BadImage(Exception):
    """The file is not a PE image the scanner can use; str(e) is the reason."""


@dataclass(frozen=True)
class CodeSection:
    """An executable section: its RVA and its bytes as they are in the file."""

    name: str
    rva: int
    data: bytes


@dataclass
class PeImage:
    """What the scanner takes from one PE file."""

    arch: str  # one of MACHINES' values, or "machine 0x...."
    image_base: int
    code_sections: list[CodeSection]
    #: (dll name in lower case, function name) -> RVA of the function's IAT slot
    imports: dict[tuple[str, str], int]
    #: sorted RVAs where functions begin (x64 .pdata); empty when the image has none
    function_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint32))
    pe: pefile.PE | None = None


def load_image(data: bytes) -> PeImage:
    """Parse headers, sections and imports of `data`; raise BadImage with a reason if unusable."""
    if data[:2] != b"MZ":
        raise BadImage("not a PE file (no MZ header)")
    if len(data) < 0x40:  # the DOS header alone is 64 bytes
        raise BadImage(f"truncated PE: {len(data)} bytes, too small for the 64-byte DOS header")
    try:
        pe = pefile.PE(data=data, fast_load=True)
    except pefile.PEFormatError as e:
        raise BadImage(f"malformed PE: {e.value}") from None
    except Exception as e:  # pefile raises assorted errors on hostile headers
        raise BadImage(f"malformed PE: {type(e).__name__}: {e}") from None

    machine = pe.FILE_HEADER.Machine
    arch = MACHINES.get(machine, f"machine {machine:#06x}")
    for section in pe.sections:
        end = section.PointerToRawData + section.SizeOfRawData
        if section.SizeOfRawData and end > len(data):
            raise BadImage(
                f"truncated PE: section {_section_name(section)!r} ends at {end:#x}, "
                f"file has {len(data):#x} bytes"
            )

    imports = _parse_imports(pe)
    code_sections = []
    for section in pe.sections:
        if not section.Characteristics & (IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE):
            continue
        size = section.SizeOfRawData
        if section.Misc_VirtualSize:
            size = min(size, section.Misc_VirtualSize)
        start = section.PointerToRawData
        if size > 0:
            code_sections.append(
                CodeSection(_section_name(section), section.VirtualAddress, data[start : start + size])
            )
    image = PeImage(
        arch=arch,
        image_base=pe.OPTIONAL_HEADER.ImageBase,
        code_sections=code_sections,
        imports=imports,
        pe=pe,
    )
    if arch == "x64":
        image.function_starts = _function_starts(pe, data)
    return image


def _directory(pe: pefile.PE, index: int) -> tuple[int, int]:
    """(VirtualAddress, Size) of a data directory; (0, 0) when the header has fewer entries."""
    entries = pe.OPTIONAL_HEADER.DATA_DIRECTORY
    if index >= len(entries):
        return 0, 0
    return entries[index].VirtualAddress, entries[index].Size


def _section_name(section: pefile.SectionStructure) -> str:
    raw: bytes = section.Name
    return raw.rstrip(b"\0").decode("latin-1")


def _parse_imports(pe: pefile.PE) -> dict[tuple[str, str], int]:
    if not _directory(pe, _DIR_IMPORT)[0]:
        return {}
    try:
        pe.parse_data_directories(directories=[_DIR_IMPORT])
    except Exception as e:  # pefile.PEFormatError and friends on garbage descriptors
        raise BadImage(f"malformed import table: {e}") from None
    entries = getattr(pe, "DIRECTORY_ENTRY_IMPORT", None)
    if not entries:
        problems = [w for w in pe.get_warnings() if "import" in w.lower()]
        if problems:
            raise BadImage(f"malformed import table: {problems[0]}")
        return {}
    imports: dict[tuple[str, str], int] = {}
    garbage = 0
    for entry in entries:
        dll = (entry.dll or b"").decode("latin-1").lower()
        if not _plausible_name(dll):
            garbage += 1
            continue
        for symbol in entry.imports:
            if symbol.name and symbol.name != b"*invalid*" and symbol.address is not None:
                imports[(dll, symbol.name.decode("latin-1"))] = symbol.address - pe.OPTIONAL_HEADER.ImageBase
    if garbage and not imports:
        raise BadImage("malformed import table: no readable DLL names")
    return imports


def _plausible_name(name: str) -> bool:
    return 0 < len(name) < 260 and all(0x20 < ord(c) < 0x7F for c in name)


def _function_starts(pe: pefile.PE, data: bytes) -> np.ndarray:
    """Begin RVAs of the x64 RUNTIME_FUNCTION table, sorted: exact instruction boundaries."""
    rva, size = _directory(pe, _DIR_EXCEPTION)
    empty = np.zeros(0, dtype=np.uint32)
    if not rva or size < 12:
        return empty
    try:
        offset = pe.get_offset_from_rva(rva)
    except Exception:
        return empty
    if offset is None or offset < 0:
        return empty
    count = min(size, max(0, len(data) - offset)) // 12
    if count == 0:
        return empty
    table = np.frombuffer(data, dtype="<u4", count=count * 3, offset=offset).reshape(count, 3)
    starts: np.ndarray = np.unique(table[:, 0].astype(np.uint32))
    return starts


def version_strings(image: PeImage) -> dict[str, str]:
    """FileVersion, CompanyName, ProductName from the version resource ({} when there is none)."""
    pe = image.pe
    if pe is None or not _directory(pe, _DIR_RESOURCE)[0]:
        return {}
    try:
        pe.parse_data_directories(directories=[_DIR_RESOURCE])
    except Exception:
        return {}
    found: dict[str, str] = {}
    for file_info in getattr(pe, "FileInfo", None) or []:
        for entry in file_info:
            for table in getattr(entry, "StringTable", None) or []:
                for key, value in table.entries.items():
                    name = key.decode("latin-1", "replace") if isinstance(key, bytes) else str(key)
                    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    if name in ("FileVersion", "CompanyName", "ProductName") and text.strip():
                        found.setdefault(name, text.strip())
    if "FileVersion" not in found:
        fixed = getattr(pe, "VS_FIXEDFILEINFO", None)
        if fixed:
            ms, ls = fixed[0].FileVersionMS, fixed[0].FileVersionLS
            found["FileVersion"] = f"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}"
    return found


def has_signature(image: PeImage, data: bytes) -> bool:
    """True when the security directory holds a plausible WIN_CERTIFICATE. Not a verification."""
    pe = image.pe
    if pe is None:
        return False
    offset, size = _directory(pe, _DIR_SECURITY)  # a file offset, not an RVA
    if not offset or size < 8 or offset + size > len(data):
        return False
    length, revision, _cert_type = struct.unpack_from("<IHH", data, offset)
    return 8 <= length <= size and revision in _WIN_CERT_REVISIONS
