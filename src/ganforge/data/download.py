"""Official dataset files: found on disk, or downloaded from the official mirrors.

Files are looked for in ROOT/NAME/, then in the system location (see roots.py). A missing file
is downloaded with a progress bar into ROOT/NAME/, checked against its published checksum, and
renamed into place only when complete: an interrupted, truncated or corrupt download never
looks like a dataset. Offline, the error says which files to place where.

$GANFORGE_OFFLINE=1 never tries the network; $GANFORGE_DATA_MIRROR=URL replaces the official
mirrors by URL/NAME/FILE (a data root served over HTTP, e.g. on a local network).

A download is bounded in time as a whole (DEADLINE_S, not only per read: a server that drips a
byte at a time would otherwise hold it forever) and in size (twice the file's known size, and
MAX_DOWNLOAD_BYTES in any case).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ganforge.atomic import atomic_path
from ganforge.data.roots import DATA_ENV, data_root, dataset_dirs
from ganforge.errors import GanforgeError

OFFLINE_ENV = "GANFORGE_OFFLINE"
MIRROR_ENV = "GANFORGE_DATA_MIRROR"
TIMEOUT_S = 30.0  # for each read
DEADLINE_S = 3600.0  # for the whole download: 170 MB (CIFAR) at 50 kB/s
MAX_DOWNLOAD_BYTES = 1 << 30  # no dataset file or weights file is larger
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class DataFile:
    """One official file: its published name and checksums, and other names it may have on disk
    (the gunzipped IDX file, the extracted archive folder)."""

    filename: str
    md5: str
    sha256: str | None = None
    local_names: tuple[str, ...] = ()
    size: int | None = None  # bytes, when known: a download may not exceed twice this

    @property
    def max_bytes(self) -> int:
        return min(2 * self.size, MAX_DOWNLOAD_BYTES) if self.size else MAX_DOWNLOAD_BYTES

    @property
    def names(self) -> tuple[str, ...]:
        return (self.filename, *self.local_names)

    def find_in(self, folder: Path) -> Path | None:
        for name in self.names:
            if (folder / name).exists():
                return folder / name
        return None


def is_offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def mirrors_for(name: str, official: Sequence[str]) -> list[str]:
    """Base URLs to try for dataset `name`: $GANFORGE_DATA_MIRROR/NAME/ if set, else `official`."""
    override = os.environ.get(MIRROR_ENV)
    if override:
        return [f"{override.rstrip('/')}/{name}/"]
    return list(official)


def locate_files(
    name: str, files: Sequence[DataFile], root: str | Path | None = None
) -> list[Path] | None:
    """The paths of all `files` in the first folder that holds every one of them, or None."""
    for folder in dataset_dirs(name, root):
        found = [file.find_in(folder) for file in files]
        if all(found):
            return found  # type: ignore[return-value]
    return None


def ensure_files(
    name: str,
    files: Sequence[DataFile],
    mirrors: Sequence[str],
    root: str | Path | None = None,
    *,
    download: bool = True,
    progress: bool = True,
) -> list[Path]:
    """Paths of dataset `name`'s `files`, downloading the missing ones into ROOT/NAME/."""
    found = locate_files(name, files, root)
    if found is not None:
        return found
    folder = data_root(root) / name
    missing = [file for file in files if file.find_in(folder) is None]
    where = (
        f"place the official files in '{folder}/' (from {mirrors[0] if mirrors else 'its site'})"
        f" or give --data-root (or ${DATA_ENV}) a folder that holds {name}/"
    )
    listing = ", ".join(file.filename for file in missing)
    if not download or is_offline():
        why = f"${OFFLINE_ENV} is set" if is_offline() else "downloads are off"
        raise GanforgeError(f"--data {name}: missing {listing}; {where} ({why})")
    for file in missing:
        failures = []
        for base in mirrors:
            try:
                download_file(
                    base + file.filename,
                    folder / file.filename,
                    md5=file.md5,
                    sha256=file.sha256,
                    progress=progress,
                    max_bytes=file.max_bytes,
                )
                break
            except GanforgeError as exc:
                failures.append(str(exc))
        else:
            raise GanforgeError(
                f"--data {name}: missing {listing}; {where} (download failed: "
                f"{'; '.join(failures) or 'no mirror'})"
            )
    return [file.find_in(folder) for file in files]  # type: ignore[misc]


def download_file(
    url: str,
    dest: str | Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    sha1: str | None = None,
    progress: bool = True,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    deadline_s: float = DEADLINE_S,
) -> Path:
    """Download `url` to `dest` through a temporary file, verifying length and checksums.

    Raises GanforgeError naming the URL on HTTP errors, network errors, a transfer shorter
    than its Content-Length, a checksum mismatch, more than `max_bytes`, or a download not
    finished within `deadline_s` seconds; `dest` is then left untouched.
    """
    dest = Path(dest)
    digests = {"MD5": (hashlib.md5(usedforsecurity=False), md5)}
    if sha256:
        digests["SHA-256"] = (hashlib.sha256(), sha256)
    if sha1:  # the checksum some weights files are published with
        digests["SHA-1"] = (hashlib.sha1(usedforsecurity=False), sha1)
    try:
        with atomic_path(dest) as tmp:
            hashes = [d for d, _ in digests.values()]
            limits = (max_bytes, deadline_s)
            received, expected = _stream_to(url, tmp, hashes, progress, limits)
            if expected is not None and received != expected:
                raise GanforgeError(
                    f"{url}: transfer cut short at {received} of {expected} bytes; nothing was kept"
                )
            for kind, (digest, published) in digests.items():
                if published and digest.hexdigest() != published.lower():
                    raise GanforgeError(
                        f"{url}: {kind} {digest.hexdigest()} does not match the published "
                        f"{published}; the download was discarded"
                    )
    except OSError as exc:  # the local side: the data root is not writable, the disk is full
        raise GanforgeError(f"cannot write '{dest}': {exc}") from None
    return dest


def _stream_to(
    url: str, path: Path, digests: list, progress: bool, limits: tuple[int, float]
) -> tuple[int, int | None]:
    """Copy `url` into `path`, feeding `digests`, within `limits` (max bytes, deadline in s);
    returns (bytes received, Content-Length)."""
    max_bytes, deadline_s = limits
    received, started = 0, time.monotonic()
    too_big = f"{url}: more than the cap of {max_bytes:,} bytes for this file; nothing was kept"
    try:
        with urllib.request.urlopen(url, timeout=min(TIMEOUT_S, deadline_s)) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            if expected is not None and expected > max_bytes:
                raise GanforgeError(too_big)
            bar = tqdm(
                total=expected,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=Path(url).name,
                disable=not progress,
                leave=False,
            )
            with bar, open(path, "wb") as out:
                while chunk := response.read1(CHUNK_BYTES):  # what has arrived, not 1 MiB
                    if received + len(chunk) > max_bytes:
                        raise GanforgeError(too_big)
                    if time.monotonic() - started > deadline_s:
                        raise GanforgeError(
                            f"{url}: not finished within {deadline_s:g} s ({received:,} bytes "
                            "received); nothing was kept"
                        )
                    out.write(chunk)
                    for digest in digests:
                        digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise GanforgeError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        got = received + len(exc.partial)
        raise GanforgeError(
            f"{url}: transfer cut short after {got} bytes; nothing was kept"
        ) from None
    except urllib.error.URLError as exc:
        raise GanforgeError(f"{url}: {exc.reason}") from None
    except TimeoutError:
        raise GanforgeError(f"{url}: no data for {min(TIMEOUT_S, deadline_s):g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise GanforgeError(f"{url}: {exc}") from None
    return received, expected
