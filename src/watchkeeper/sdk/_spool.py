"""An append-only file of batches the server has not acknowledged yet, replayed in order.

Each line is ``<header JSON>\\t<body JSON>\\n``; a sidecar file holds the byte offset of the
first unacknowledged line. The file is locked (``flock``) by the one client that owns it, so two
processes sharing a spool directory get different files; a file left by a dead process is
adopted and replayed by the next client that opens the directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO


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
        self._drop_torn_tail()

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _drop_torn_tail(self) -> None:
        # A crash mid-append can leave a last line without its newline: it was never complete,
        # so it was never counted as spooled; cut it off.
        if not self.path.exists():
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                f.truncate(end)

    def _offset(self) -> int:
        try:
            return int(self.offset_path.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def pending(self) -> bool:
        """Whether some spooled batch is still unacknowledged."""
        return self._size() > self._offset()

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
        offset = self._offset()
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
        """Mark everything before ``offset`` acknowledged; empty the file once all is."""
        if offset >= self._size():
            # Everything delivered: start afresh so the file does not grow forever.
            with open(self.path, "wb"):
                pass
            offset = 0
        tmp = self.offset_path.with_suffix(".offset.tmp")
        tmp.write_text(str(offset))
        os.replace(tmp, self.offset_path)

    def pending_events(self) -> int:
        """Events in unacknowledged spooled batches (reads the file)."""
        offset = self._offset()
        if self._size() <= offset:
            return 0
        total = 0
        with open(self.path, "rb") as f:
            f.seek(offset)
            for line in f:
                if line.endswith(b"\n"):
                    total += int(json.loads(line.partition(b"\t")[0])["n"])
        return total
