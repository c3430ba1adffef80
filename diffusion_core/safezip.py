"""Reading a zip file a user uploaded, safely (torch-free; checkpoint zips and image zips).

A zip names its own members and states their sizes itself, so a hostile one can name
``../../.bashrc`` or ``/etc/passwd`` (path traversal), pack gigabytes into kilobytes (a zip bomb:
deflate reaches about 1000:1), hold millions of members, or hide a symlink. Here:

* :func:`open_zip` reads the end-of-central-directory record first and refuses a central
  directory larger than ``limits`` allow *before* :class:`zipfile.ZipFile` parses it (it would
  otherwise build one Python object per member, whatever their number);
* :func:`checked_members` refuses the whole archive if any member name is absolute, has a drive
  letter or a ``..`` part, appears twice, or is a symlink, if a member is encrypted, if there are
  more than ``max_members`` entries, or if the declared uncompressed sizes exceed the caps; it
  returns the regular files, leaving out folders and the metadata that archivers add
  (``__MACOSX/``, dotfiles such as ``.DS_Store``);
* :func:`read_member` / :func:`copy_member` count the bytes they actually inflate, so a member
  whose header understates its size is refused too.

Nothing is ever extracted under the name the zip gives: callers keep what they want under names
they choose. Every refusal is a ``ValueError`` whose message names the zip (the UI shows it).
"""

from __future__ import annotations

import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["NotAZipError", "ZipLimits", "checked_members", "copy_member", "member_parts",
           "open_zip", "read_member"]

_CHUNK = 1 << 20
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record (22 bytes + comment)
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes, right before the EOCD record
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")  # 56 bytes
_CD_BYTES_PER_MEMBER = 1024  # central directory bytes allowed per member (46 + name + extra)


class NotAZipError(ValueError):
    """The file is not a zip at all (no end-of-central-directory record, or unreadable)."""


@dataclass(frozen=True)
class ZipLimits:
    """What one zip may hold: entries (folders and metadata included), the sum of the
    declared uncompressed sizes, and the largest single member (bytes)."""

    max_members: int
    max_total_bytes: int
    max_member_bytes: int

    def __post_init__(self) -> None:
        for name in ("max_members", "max_total_bytes", "max_member_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} kB"


def _central_directory(fp: BinaryIO, label: str) -> tuple[int, int]:
    """``(entries, central directory bytes)`` from the end-of-central-directory record (and the
    zip64 record it points to); ``ValueError`` if there is none: not a zip file."""
    fp.seek(0, os.SEEK_END)
    size = fp.tell()
    tail_len = min(size, _EOCD.size + 65535 + _ZIP64_LOCATOR.size)  # max comment 64 kB
    fp.seek(size - tail_len)
    tail = fp.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        raise NotAZipError(f"{label} is not a zip file")
    _, _, _, _, entries, cd_size, _, _ = _EOCD.unpack_from(tail, at)
    if (entries == 0xFFFF or cd_size == 0xFFFFFFFF) and at >= _ZIP64_LOCATOR.size:
        sig, _, offset, _ = _ZIP64_LOCATOR.unpack_from(tail, at - _ZIP64_LOCATOR.size)
        if sig == b"PK\x06\x07" and 0 <= offset <= size - _ZIP64_EOCD.size:
            fp.seek(offset)
            record = fp.read(_ZIP64_EOCD.size)
            if record[:4] == b"PK\x06\x06":
                fields = _ZIP64_EOCD.unpack(record)
                entries, cd_size = fields[7], fields[8]
    return int(entries), int(cd_size)


def open_zip(path: str | os.PathLike, limits: ZipLimits, *, label: str | None = None
             ) -> zipfile.ZipFile:
    """Open ``path`` as a zip after checking its central directory's size against ``limits``.

    Raises :class:`NotAZipError` (a ``ValueError``) for a file that is not a zip or is
    damaged, ``ValueError`` for one listing more than ``limits.max_members`` entries (each
    message names ``label``, default the file name); the caller
    closes the returned :class:`zipfile.ZipFile` (a context manager).
    """
    p = Path(path)
    label = label or p.name
    if not p.is_file():
        raise FileNotFoundError(f"{p} is not a file")
    with p.open("rb") as fp:
        entries, cd_size = _central_directory(fp, label)
    if entries > limits.max_members:
        raise ValueError(f"{label} holds {entries} entries, more than the limit of "
                         f"{limits.max_members}")
    if cd_size > _CD_BYTES_PER_MEMBER * limits.max_members:
        raise ValueError(f"{label} has a {_mb(cd_size)} list of contents, too long for the "
                         f"limit of {limits.max_members} entries")
    try:
        return zipfile.ZipFile(p)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, struct.error,
            NotImplementedError) as e:
        raise NotAZipError(f"{label} is not a readable zip file ({e})") from None


def member_parts(name: str) -> tuple[str, ...]:
    """The path parts of a member name (``\\`` read as ``/``, empty and ``.`` parts dropped);
    ``ValueError`` for an absolute name, a drive letter or a ``..`` part."""
    s = name.replace("\\", "/")
    if s.startswith("/") or (len(s) >= 2 and s[1] == ":") or "\x00" in s:
        raise ValueError(f"unsafe member name {name!r} (an absolute path)")
    parts = tuple(p for p in s.split("/") if p not in ("", "."))
    if ".." in parts:
        raise ValueError(f"unsafe member name {name!r} (it points outside the zip with '..')")
    return parts


def _is_metadata(parts: tuple[str, ...]) -> bool:
    """macOS resource forks (``__MACOSX/``) and hidden files or folders (``.DS_Store``)."""
    return parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def checked_members(zf: zipfile.ZipFile, limits: ZipLimits, *, label: str
                    ) -> tuple[list[tuple[zipfile.ZipInfo, tuple[str, ...]]], int]:
    """``([(info, parts), …] of the regular files, number of metadata files left out)``.

    Refuses (``ValueError`` naming ``label``) the whole archive for: more than
    ``max_members`` entries; an unsafe name (:func:`member_parts`); a name that appears twice;
    a symlink; an encrypted member; a declared size above ``max_member_bytes``; declared sizes
    summing to more than ``max_total_bytes``. Folders are dropped; files under ``__MACOSX/``
    or with a dot-part are counted and left out.
    """
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise ValueError(f"{label} holds {len(infos)} entries, more than the limit of "
                         f"{limits.max_members}")
    out: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    seen: set[tuple[str, ...]] = set()
    ignored = total = 0
    for info in infos:
        try:
            parts = member_parts(info.filename)
        except ValueError as e:
            raise ValueError(f"{label}: {e}; refused") from None
        if parts in seen:
            raise ValueError(f"{label}: member {info.filename!r} appears twice; refused")
        seen.add(parts)
        if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):
            raise ValueError(f"{label}: member {info.filename!r} is a symbolic link; refused")
        if info.flag_bits & 0x1:
            raise ValueError(f"{label}: member {info.filename!r} is password-protected")
        if info.file_size > limits.max_member_bytes:
            raise ValueError(f"{label}: member {info.filename!r} unpacks to "
                             f"{_mb(info.file_size)}, more than the limit of "
                             f"{_mb(limits.max_member_bytes)} per file")
        total += info.file_size
        if total > limits.max_total_bytes:
            raise ValueError(f"{label} unpacks to more than {_mb(limits.max_total_bytes)} "
                             f"(the limit for the whole zip)")
        if info.is_dir() or not parts:
            continue
        if _is_metadata(parts):
            ignored += 1
            continue
        out.append((info, parts))
    return out, ignored


def _chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, label: str):
    """The member's bytes in chunks, refusing more than ``limit`` bytes or a damaged stream."""
    n = 0
    try:
        with zf.open(info) as f:
            while chunk := f.read(_CHUNK):
                n += len(chunk)
                if n > limit:
                    raise ValueError(f"{label}: member {info.filename!r} unpacks to more than "
                                     f"{_mb(limit)}; refused")
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            struct.error, OSError) as e:
        raise ValueError(f"{label}: member {info.filename!r} could not be read ({e})") from None


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, *, label: str) -> bytes:
    """The member's bytes (at most ``limit``; more, or a damaged member, is a ``ValueError``)."""
    return b"".join(_chunks(zf, info, limit, label))


def copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: str | os.PathLike,
                limit: int, *, label: str) -> int:
    """Write the member to ``dest`` (a name the caller chose) in chunks; returns its size."""
    n = 0
    with open(dest, "wb") as out:
        for chunk in _chunks(zf, info, limit, label):
            out.write(chunk)
            n += len(chunk)
    return n
