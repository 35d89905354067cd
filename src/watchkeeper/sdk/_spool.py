"""An append-only file of batches the server has not acknowledged yet, replayed in order.

The file starts with a header line naming its *generation* (a random token); each later line is
``<header JSON>\\t<body JSON>\\n``. A sidecar file holds ``<generation> <offset>``: the byte
offset of the first unacknowledged line of that generation. The file is locked (``flock``) by
the one client that owns it, so two processes sharing a spool directory get different files; a
file left by a dead process is adopted and replayed by the next client that opens the directory.

Every step survives the process dying at any point:

- ``append`` writes whole lines and fsyncs; a torn last line is cut off at the next open.
- ``advance`` writes the offset to a temporary file, fsyncs it and renames it over the old one.
- Once everything is acknowledged, the file is *replaced*, never truncated in place: a new file
  with a new generation is written aside and renamed over the old one, and only then is the
  offset rewritten. An offset whose generation is not the file's (a crash between the two
  renames) counts as "nothing acknowledged yet in this file", which is true of a new file.

So an acknowledged batch is re-sent only when the process dies between the server's answer and
the offset rename (the server's idempotent ingest then counts it once), and no spooled batch is
ever skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_MAGIC = b"#watchkeeper-spool "


def _try_lock(handle: IO[bytes]) -> bool:
    """An exclusive, non-blocking lock on ``handle``; where ``fcntl`` does not exist (Windows)
    every file counts as free, so give each process its own ``spool_dir`` there."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _write_durably(path: Path, data: bytes, sync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file, fsync (unless ``sync`` is
    False), rename over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def _sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (where directories can be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Outgoing:
    """One request to send: ``kind`` is ``events`` or ``labels``."""

    kind: str
    model: str
    n: int
    body: bytes


class Spool:
    """The spool file of one client (see the module docstring)."""

    def __init__(self, directory: Path, url: str) -> None:
        self.directory = directory
        self.key = hashlib.sha256(url.encode()).hexdigest()[:12]
        self._lock_file: IO[bytes] | None = None
        self.path: Path = directory
        self.offset_path: Path = directory
        self._generation = ""
        self._start = 0  # where the first batch line of the current file begins
        self._acked = 0  # the offset of the first unacknowledged line (kept in memory)

    def open(self) -> None:
        """Create the directory and lock the first free spool file of this server URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        index = 0
        while True:
            lock_path = self.directory / f"{self.key}-{index}.lock"
            handle = open(lock_path, "ab")  # noqa: SIM115 - held open for the client's lifetime
            if not _try_lock(handle):
                handle.close()
                index += 1
                continue
            self._lock_file = handle
            self.path = self.directory / f"{self.key}-{index}.jsonl"
            self.offset_path = self.directory / f"{self.key}-{index}.offset"
            break
        for leftover in (self.path, self.offset_path):  # a crash before a rename left these
            leftover.with_name(leftover.name + ".tmp").unlink(missing_ok=True)
        if not self.path.exists():
            # A new, empty file: nothing to lose if it does not survive a power cut (it is
            # then created again), so no fsync on the start-up path.
            self._renew(sync=False)
        self._drop_torn_tail()
        self._generation, self._start = self._read_generation()
        self._acked = self._read_offset()

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _drop_torn_tail(self) -> None:
        # A crash mid-append can leave a last line without its newline: it was never complete,
        # so it was never counted as spooled; cut it off.
        with open(self.path, "rb+") as f:
            data = f.read()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())

    def _read_generation(self) -> tuple[str, int]:
        """The file's generation and where its batches start; a file written before
        generations existed has none and starts at 0."""
        with open(self.path, "rb") as f:
            first = f.readline()
        if first.startswith(_MAGIC) and first.endswith(b"\n"):
            return first[len(_MAGIC) : -1].decode(), len(first)
        return "", 0

    def _read_offset(self) -> int:
        """The saved offset if it belongs to this file's generation and lies inside it; else the
        start (re-sending is harmless, skipping is not)."""
        try:
            text = self.offset_path.read_text()
        except FileNotFoundError:
            return self._start
        generation, _, number = text.strip().rpartition(" ")
        try:
            offset = int(number)
        except ValueError:
            return self._start
        if generation != self._generation or not self._start <= offset <= self._size():
            return self._start
        return offset

    def _renew(self, sync: bool = True) -> None:
        """Replace the spool file by an empty one of a new generation (write aside, rename)."""
        generation = secrets.token_hex(8)
        _write_durably(self.path, _MAGIC + generation.encode() + b"\n", sync)
        if sync:
            _sync_directory(self.directory)
        self._generation, self._start = generation, len(_MAGIC) + len(generation) + 1

    def _save_offset(self, offset: int) -> None:
        _write_durably(self.offset_path, f"{self._generation} {offset}".encode())
        self._acked = offset

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def pending(self) -> bool:
        """Whether some spooled batch is still unacknowledged."""
        return self._size() > self._acked

    def append(self, batches: list[Outgoing]) -> None:
        """Append batches durably (fsync) after everything already spooled."""
        if not batches:
            return
        with open(self.path, "ab") as f:
            for b in batches:
                header = json.dumps({"kind": b.kind, "model": b.model, "n": b.n}).encode()
                f.write(header + b"\t" + b.body + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def head(self) -> tuple[Outgoing, int] | None:
        """The oldest unacknowledged batch and the offset just after it."""
        offset = self._acked
        if self._size() <= offset:
            return None
        with open(self.path, "rb") as f:
            f.seek(offset)
            line = f.readline()
        if not line.endswith(b"\n"):
            return None
        header, _, body = line[:-1].partition(b"\t")
        meta = json.loads(header)
        return Outgoing(meta["kind"], meta["model"], int(meta["n"]), body), offset + len(line)

    def advance(self, offset: int) -> None:
        """Mark everything before ``offset`` acknowledged; renew the file once all is."""
        self._save_offset(offset)
        if offset >= self._size():
            # Everything delivered: a fresh file, so the spool does not grow forever.
            self._renew()
            self._save_offset(self._start)

    def pending_events(self) -> int:
        """Events in unacknowledged spooled batches (reads the file)."""
        offset = self._acked
        if self._size() <= offset:
            return 0
        total = 0
        with open(self.path, "rb") as f:
            f.seek(offset)
            for line in f:
                if line.endswith(b"\n"):
                    total += int(json.loads(line.partition(b"\t")[0])["n"])
        return total
