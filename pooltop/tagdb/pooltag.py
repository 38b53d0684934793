"""pooltag.txt / localtag.txt: parse the debugger's tag files, find them, keep the user's overlay.

The format (Debugging Tools for Windows, `Debuggers\\<arch>\\triage\\pooltag.txt`; poolmon's `-g` and
`-c` files) is one tag per line::

    rem comment lines start with rem (// works too)
    Abcd - owner.sys  - what the allocation is
    Ab   - nt!ab      - padding of short tags is lost in the column layout: this is "Ab  "
    Abc? - owner.sys  - wildcards: ? is one byte, * any run of bytes
    Dh 1 - <unknown>  - a tag with a space inside: the first four characters

Real files are 8-bit text (cp1252), CRLF, hand-edited for decades: descriptions contain " - ",
owners are missing or `<unknown>`, tags repeat. The parser never fails: a line it cannot read is
counted (by line number) and skipped.

Tags are kept in the form `pooltop.model.escape_tag` gives them, so a parsed entry is looked up with
the same string a snapshot carries ("Io  ", "\\x01Ab ").
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from pooltop.errors import BadInput, PooltopError
from pooltop.model import escape_tag, unescape_tag

#: owner text for entries that name none
UNKNOWN_OWNER = "<unknown>"

#: a tag file bigger than this is not a tag file (Microsoft's pooltag.txt is well under 1 MiB)
MAX_TAG_FILE_BYTES = 64 << 20

#: longest tag accepted by default: pool tags are 4 bytes. The overlay also accepts Linux slab cache
#: names, which are longer.
POOL_TAG_LEN = 4
OVERLAY_TAG_LEN = 64

# re.ASCII throughout: in cp1252/latin-1 text \x85 and \xa0 are characters, not line breaks or spaces.
_ENTRY = re.compile(r"(?P<tag>\S+?)(?:\s+-(?:\s+|$)|-\s+)(?P<rest>.*)", re.ASCII | re.DOTALL)
#: a 4-character tag with a space inside ("Dh 1", "Ab ?"): the first four characters, when the
#: separator follows them. Tried only where _ENTRY does not match, so "Ab - x" stays tag "Ab".
_SPACED_ENTRY = re.compile(r"(?P<tag>.{4})(?:\s+-(?:\s+|$)|-\s+)(?P<rest>.*)", re.ASCII | re.DOTALL)
_FIELD_SEP = re.compile(r"\s+-(?:\s+|$)", re.ASCII)
_LEADING_DASH = re.compile(r"-(?:\s+|$)", re.ASCII)
_REM = re.compile(r"rem(?:\s|$)", re.ASCII | re.IGNORECASE)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_RAW_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_PLAIN_TAG = re.compile(rb"[\x20-\x5b\x5d-\x7e]*")  # what escape_tag leaves as it is
_SIMPLE_TAG = re.compile(r"[\x21-\x29\x2b-\x3e\x40-\x5b\x5d-\x7e]+")  # printable, no wildcard or escape
_STRIP = " \t\f\v\x1a"  # \x1a: DOS end-of-file marker left in old text files

# An owner names a binary or a component: "afd.sys", "nt!cc", "<unknown>", "ntfs.sys, refs.sys".
_OWNER_TOKEN = re.compile(
    r"<[^<>]*>|[\w.$~+-]+![\w.$~+-]*|[\w.$~+-]+\.(?:sys|dll|exe|drv|efi|ocx|cpl|ax|acm|tsp|mui|com|scr)",
    re.ASCII | re.IGNORECASE,
)
_OWNER_LIST_SEP = re.compile(r"\s*[,/;]\s*|\s+and\s+", re.ASCII)
_BARE_COMPONENTS = frozenset(
    {"nt", "ntoskrnl", "ntkrnlmp", "hal", "win32k", "win32kbase", "win32kfull", "kernel", "ndis", "tcpip"}
)


@dataclass(frozen=True)
class TagEntry:
    """One line of a tag file."""

    tag: str  # escape_tag form; exact tags are padded to 4 ("Io  "), patterns keep their wildcards
    owner: str
    description: str
    line: int  # 1-based
    wildcard: bool = False


@dataclass(frozen=True)
class ParsedTagFile:
    entries: tuple[TagEntry, ...]
    malformed: tuple[int, ...]  # 1-based line numbers of lines that are neither entries nor comments
    line_count: int


@dataclass(frozen=True)
class TagFileRef:
    """A tag file to load, with the label its candidates carry as their `source`."""

    path: Path
    source: str  # "pooltag.txt", "localtag.txt", or the file name of an explicit --tagfile
    explicit: bool = False


# --- parsing ---------------------------------------------------------------------------------------


def parse_tag_file(data: bytes, *, max_tag_len: int = POOL_TAG_LEN) -> ParsedTagFile:
    """Parse a tag file's bytes. Never raises: unreadable lines are reported in `malformed`.

    Each line is decoded on its own (UTF-8 if valid, else cp1252, else latin-1), so one odd byte
    does not change how the rest of the file reads. Tags keep their exact bytes.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Notepad's "Unicode": a user-written localtag.txt or overlay may be UTF-16.
        return parse_tag_text(data.decode("utf-16", errors="replace"), max_tag_len=max_tag_len)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    # bytes.splitlines breaks at \n, \r and \r\n only (str.splitlines would also break at \x85 etc.)
    return _parse_lines((_decode_line(raw) for raw in data.splitlines()), max_tag_len)


def parse_tag_text(text: str, *, max_tag_len: int = POOL_TAG_LEN) -> ParsedTagFile:
    """Parse a tag file that is already text. Tag characters must map to bytes (latin-1 or UTF-8)."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not start another
    return _parse_lines(((line, "latin-1") for line in lines), max_tag_len)


def _decode_line(raw: bytes) -> tuple[str, str]:
    if raw.isascii():
        return raw.decode("ascii"), "ascii"
    for codec in ("utf-8", "cp1252"):
        try:
            return raw.decode(codec), codec
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1"), "latin-1"  # maps every byte: cannot fail


def _parse_lines(lines: Iterable[tuple[str, str]], max_tag_len: int) -> ParsedTagFile:
    entries: list[TagEntry] = []
    malformed: list[int] = []
    number = 0
    for number, (text, codec) in enumerate(lines, start=1):
        result = _parse_line(text, codec, number, max_tag_len)
        if isinstance(result, TagEntry):
            entries.append(result)
        elif result is _MALFORMED:
            malformed.append(number)
    return ParsedTagFile(tuple(entries), tuple(malformed), number)


_COMMENT = object()
_MALFORMED = object()


def _parse_line(text: str, codec: str, number: int, max_tag_len: int) -> TagEntry | object:
    line = text.strip(_STRIP)
    if not line:
        return _COMMENT
    if line.startswith("//") or _REM.match(line):
        # A tag spelled "rem" cannot be listed; poolmon skips such lines the same way.
        return _COMMENT
    m = _ENTRY.fullmatch(line) or _SPACED_ENTRY.fullmatch(line)
    if m is None:
        return _MALFORMED
    tag = normalise_tag_field(m["tag"], codec, max_tag_len)
    if tag is None:
        return _MALFORMED
    key, wildcard = tag
    fields = _split_fields(m["rest"].strip(_STRIP))
    if fields is None:
        return _MALFORMED
    owner, description = fields
    return TagEntry(key, owner, description, number, wildcard)


def _split_fields(rest: str) -> tuple[str, str] | None:
    """`owner - description`, or one field that is either. None when nothing is left."""
    if not rest:
        return None
    dash = _LEADING_DASH.match(rest)
    if dash:  # "Abcd -  - description": the owner column is empty
        description = rest[dash.end() :].strip(_STRIP)
        return (UNKNOWN_OWNER, _clean(description)) if description else None
    parts = _FIELD_SEP.split(rest, maxsplit=1)
    if len(parts) == 2:
        owner = parts[0].strip(_STRIP) or UNKNOWN_OWNER
        return _clean(owner), _clean(parts[1].strip(_STRIP))
    single = parts[0]
    if looks_like_owner(single):
        return _clean(single), ""
    return UNKNOWN_OWNER, _clean(single)


def looks_like_owner(text: str) -> bool:
    """True for a binary or component name ("afd.sys", "nt!cc", "<unknown>", "a.sys, b.sys")."""
    tokens = [t for t in _OWNER_LIST_SEP.split(text.strip()) if t]
    return bool(tokens) and all(
        _OWNER_TOKEN.fullmatch(t) is not None or t.lower() in _BARE_COMPONENTS for t in tokens
    )


def _clean(text: str) -> str:
    """No raw control byte from a file may reach a terminal: tabs become spaces, the rest \\xNN."""
    if text.isascii() and text.isprintable():
        return text
    text = text.replace("\t", " ")
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def normalise_tag_field(
    text: str, codec: str = "latin-1", max_len: int = POOL_TAG_LEN
) -> tuple[str, bool] | None:
    """The key of a tag as written in a file or typed by a user, and whether it is a wildcard pattern.

    `\\xNN` escapes are read as bytes. An exact tag (or a `?` pattern) shorter than 4 bytes is padded
    with spaces, as the kernel pads "Io" to "Io  ". A `*` pattern is not padded: the `*` covers the
    rest. None when the text cannot be a tag (raw control bytes, too long, nothing but wildcards).
    """
    if len(text) <= max_len and _SIMPLE_TAG.fullmatch(text):  # nearly every line: a fast path
        return text.ljust(POOL_TAG_LEN), False
    try:
        raw = text.encode(codec)
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            return None
    if _RAW_CONTROL.search(raw):
        return None  # a raw control byte; written as \xNN it is fine (kernel tags can hold any byte)
    if b"\\x" in raw:
        raw = unescape_tag(raw.decode("latin-1"))
    if not raw:
        return None
    stars = raw.count(b"*")
    wildcard = stars > 0 or b"?" in raw
    if wildcard:
        raw = re.sub(rb"\*+", b"*", raw)
        if not raw.replace(b"*", b"").replace(b"?", b""):
            return None  # would match every tag
    width = len(raw) - raw.count(b"*")
    if width > max_len:
        return None
    if b"*" not in raw and len(raw) < POOL_TAG_LEN:
        raw = raw.ljust(POOL_TAG_LEN, b" ")
    return (raw.decode("ascii") if _PLAIN_TAG.fullmatch(raw) else escape_tag(raw)), wildcard


def pattern_bytes(tag: str) -> bytes:
    """The bytes of a parsed tag or pattern (inverse of the escape_tag form entries carry)."""
    return unescape_tag(tag) if "\\" in tag else tag.encode("latin-1", "replace")


def expand_pattern4(pattern: bytes) -> Iterator[bytes]:
    """Every 4-byte `?`-only pattern that matches what `pattern` matches among 4-byte tags.

    "Aml*" -> "Aml?"; "A*c" -> "A??c"; "A*b*" -> "Ab??", "A?b?", "A??b". Pool tags are always 4 bytes,
    so a lookup only has to test a handful of fixed masks instead of every pattern.
    """
    parts = pattern.split(b"*")
    free = POOL_TAG_LEN - sum(len(p) for p in parts)
    if free < 0:
        return
    if len(parts) == 1:
        if free == 0:
            yield pattern
        return
    stars = len(parts) - 1
    for widths in itertools.product(range(free + 1), repeat=stars):
        if sum(widths) != free:
            continue
        out = bytearray(parts[0])
        for width, part in zip(widths, parts[1:], strict=True):
            out += b"?" * width + part
        yield bytes(out)


def pattern_regex(pattern: bytes) -> re.Pattern[bytes]:
    """A compiled full-match regex for a wildcard pattern, for tags that are not 4 bytes long."""
    body = b"".join(b"." if c == 0x3F else b".*" if c == 0x2A else re.escape(bytes([c])) for c in pattern)
    return re.compile(body, re.DOTALL)


# --- reading and discovery -------------------------------------------------------------------------


def read_tag_file(path: Path, *, max_tag_len: int = POOL_TAG_LEN) -> ParsedTagFile:
    """Read and parse one tag file. Raises PooltopError with a one-line reason when it cannot be read."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_TAG_FILE_BYTES + 1)
    except OSError as e:
        raise PooltopError(f"cannot read tag file {path}: {e.strerror or e}") from e
    if len(data) > MAX_TAG_FILE_BYTES:
        raise BadInput(f"{path} is larger than {MAX_TAG_FILE_BYTES >> 20} MiB: not a tag file")
    return parse_tag_file(data, max_tag_len=max_tag_len)


KIT_VERSIONS = ("10", "8.1", "8.0")
KIT_ARCHES = ("x64", "x86", "arm64")
_PROGRAM_FILES_VARS = ("ProgramFiles(x86)", "ProgramFiles", "ProgramW6432")


def kit_pooltag_paths(environ: Mapping[str, str]) -> list[Path]:
    """Where the Debugging Tools for Windows put pooltag.txt, most likely first."""
    roots: list[str] = []
    for var in _PROGRAM_FILES_VARS:
        root = environ.get(var)
        if root and root not in roots:
            roots.append(root)
    return [
        Path(root, "Windows Kits", version, "Debuggers", arch, "triage", "pooltag.txt")
        for root in roots
        for version in KIT_VERSIONS
        for arch in KIT_ARCHES
    ]


def _is_file(path: Path) -> bool:
    """is_file() that says False for a folder we may not enter (pathlib raises EACCES)."""
    try:
        return path.is_file()
    except OSError:
        return False


def discover_tag_files(
    explicit: Sequence[str | os.PathLike[str]] = (),
    *,
    environ: Mapping[str, str] | None = None,
    windows: bool | None = None,
    cwd: Path | None = None,
) -> list[TagFileRef]:
    """The tag files to load, in precedence order.

    1. the explicit files (`--tagfile`), in the order given, whether or not they exist (the caller
       reports a missing one);
    2. the first pooltag.txt of an installed Windows Kit (only on Windows), else ./pooltag.txt;
    3. localtag.txt next to that pooltag.txt, then ./localtag.txt.

    `environ`, `windows` and `cwd` default to this process's; tests pass a fake tree.
    """
    environ = os.environ if environ is None else environ
    windows = sys.platform == "win32" if windows is None else windows
    cwd = Path.cwd() if cwd is None else cwd
    refs: list[TagFileRef] = []
    seen: set[Path] = set()

    def add(path: Path, source: str, is_explicit: bool = False) -> None:
        try:
            key = path.resolve()
        except OSError:
            key = path.absolute()
        if key not in seen:
            seen.add(key)
            refs.append(TagFileRef(path, source, is_explicit))

    for p in explicit:
        path = Path(p)
        add(path, path.name or str(path), True)

    pooltag: Path | None = None
    if windows:
        pooltag = next((p for p in kit_pooltag_paths(environ) if _is_file(p)), None)
    if pooltag is None and _is_file(cwd / "pooltag.txt"):
        pooltag = cwd / "pooltag.txt"
    if pooltag is not None:
        add(pooltag, "pooltag.txt")
    for local in ([pooltag.with_name("localtag.txt")] if pooltag else []) + [cwd / "localtag.txt"]:
        if _is_file(local):
            add(local, "localtag.txt")
    return refs


# --- the user's overlay ----------------------------------------------------------------------------


def default_overlay_path() -> Path:
    """The user's own tags: same line format, wins over every other source."""
    return Path(platformdirs.user_config_dir("pooltop", appauthor=False)) / "tags.txt"


def add_overlay_entry(tag: str, owner: str, description: str = "", *, path: Path | None = None) -> Path:
    """Add (or replace) the user's entry for `tag` in the overlay file and return the file's path.

    Lines for the same tag are replaced; every other line is kept byte for byte. The file is written
    to a temporary file beside it and moved into place, so a crash never leaves half a file.
    """
    path = default_overlay_path() if path is None else path
    parsed_tag = normalise_tag_field(tag.strip(_STRIP), "utf-8", OVERLAY_TAG_LEN)
    if parsed_tag is None or any(c.isspace() for c in tag.strip(" ")):
        raise BadInput(f"not a tag: {tag!r}")
    key, _ = parsed_tag
    owner = owner.strip() or UNKNOWN_OWNER
    description = description.strip()
    for name, value in (("owner", owner), ("description", description)):
        if _CONTROL.search(value) or "\t" in value:
            raise BadInput(f"the {name} must be one line of printable text")
    if _FIELD_SEP.search(owner) or _LEADING_DASH.match(owner):
        raise BadInput(f"the owner may not contain ' - ': {owner!r}")

    try:
        old = path.read_bytes() if path.exists() else b""
    except OSError as e:
        raise PooltopError(f"cannot read {path}: {e.strerror or e}") from e
    if old.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise BadInput(f"{path} is UTF-16 text: save it as UTF-8 to let pooltop add to it")
    newline = b"\r\n" if b"\r\n" in old else b"\n"
    kept: list[bytes] = []
    for raw in old.splitlines(keepends=True):
        entry = _parse_line(*_decode_line(raw.rstrip(b"\r\n")), 0, OVERLAY_TAG_LEN)
        if not (isinstance(entry, TagEntry) and entry.tag == key):
            kept.append(raw)
    if kept and not kept[-1].endswith((b"\n", b"\r")):
        kept[-1] += newline
    line = f"{_written_tag(key)} - {owner} - {description}".rstrip()  # 3 fields: owner stays owner
    kept.append(line.encode("utf-8") + newline)
    _atomic_write(path, b"".join(kept))
    return path


def _written_tag(key: str) -> str:
    """A tag as the parser reads it back: inner spaces, a trailing '-' and a comment-like start escaped."""
    text = key.rstrip(" ").replace(" ", "\\x20") or "\\x20"  # the parser pads trailing spaces back
    if text.endswith("-"):
        text = text[:-1] + "\\x2d"  # "Ab- - owner" would read as tag "Ab"
    if text.startswith("//") or _REM.match(text + " "):
        text = f"\\x{ord(text[0]):02x}{text[1:]}"
    return text


def _atomic_write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise PooltopError(f"cannot write {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise PooltopError(f"cannot write {path}: {e.strerror or e}") from e
