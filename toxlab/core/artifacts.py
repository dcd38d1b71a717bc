"""The cache: content-keyed stage results with manifests and atomic writes (DESIGN: caching).

Every stage result lives in `<root>/<stage>/<key>/`, where the key hashes the stage name, the stage's
version, its config and the keys of the results it was built from. An entry is written into a temporary
folder and renamed into place, so a reader sees either a complete entry or none. Its `manifest.json`
records versions, seed, wall time and the SHA-256 of every file; `load` checks them all and treats a
mismatch as a corrupt entry (reported, removed, recomputed), never as a result.

Work that must survive interruption (training checkpoints) goes in `<root>/<stage>/.work-<key>/`, which
`cached` hands to the builder and removes once the entry is in place. While an entry is built, its builder
holds a lock (`<root>/<stage>/.lock-<key>`), so a second process asking for the same entry waits for it
and loads the result rather than building it again in the same work folder.

When `TOXLAB_LEDGER` names a file, every entry returned (found or built) appends a line to it: the stage,
the key and the wall time its build took (a build resumed after a cut counts the cut builds' time too, up to
the last state they saved). `toxlab book` keeps one per chapter, which says what the chapter
costs from an empty cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from toxlab import __version__
from toxlab.core.distributed import rank, world_size
from toxlab.core.errors import CacheError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent builders race to the atomic rename instead
    fcntl = None

MANIFEST = "manifest.json"
LEDGER_ENV = "TOXLAB_LEDGER"


def cache_root() -> Path:
    """`$TOXLAB_CACHE`, else `$XDG_CACHE_HOME/toxlab`, else `~/.cache/toxlab`; created and checked writable."""
    root = os.environ.get("TOXLAB_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "toxlab")
    path = Path(root).resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True)
        probe.close()
    except OSError as err:
        raise CacheError(f"cache root {path} is not writable ({err.strerror}); "
                         f"set TOXLAB_CACHE to a writable folder") from None
    return path


def stage_key(stage: str, version: int, config: dict, upstream: dict[str, str] | None = None,
              seed: int | None = None) -> str:
    """Hash of everything a stage result depends on (canonical JSON, SHA-256, 16 hex digits)."""
    payload = {"stage": stage, "version": version, "config": config, "upstream": upstream or {},
               "seed": seed}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Entry:
    """A complete, verified cache entry."""

    stage: str
    key: str
    path: Path
    manifest: dict

    def file(self, name: str) -> Path:
        return self.path / name

    def json(self, name: str) -> dict:
        return json.loads((self.path / name).read_text())


def versions() -> dict[str, str]:
    import numpy
    import tokenizers
    import torch
    import transformers

    return {"toxlab": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "numpy": numpy.__version__, "platform": platform.platform()}


def entry_dir(stage: str, key: str, root: Path | None = None) -> Path:
    return (root or cache_root()) / stage / key


def load(stage: str, key: str, root: Path | None = None) -> Entry | None:
    """The verified entry, or None if absent. A corrupt entry is reported, removed and returns None."""
    path = entry_dir(stage, key, root)
    if not path.exists():
        return None
    problem = _verify(path)
    if problem is None:
        entry = Entry(stage, key, path, json.loads((path / MANIFEST).read_text()))
        _note(entry)
        return entry
    warnings.warn(f"toxlab: cache entry {path} is corrupt ({problem}); removing it and recomputing",
                  stacklevel=2)
    _remove(path)
    return None


def _note(entry: Entry) -> None:
    """Append the entry to the ledger named by TOXLAB_LEDGER, if any (one JSON line: lines from several
    processes do not interleave, each is one short append)."""
    ledger = os.environ.get(LEDGER_ENV)
    if ledger:
        line = json.dumps({"stage": entry.stage, "key": entry.key, "wall_s": entry.manifest.get("wall_s", 0.0)})
        with open(ledger, "a") as handle:
            handle.write(line + "\n")


def stored(name: str, root: Path | None = None) -> bool:
    """Whether the entry a ledger names "stage/key" is in the cache (present; not verified)."""
    stage, _, key = name.partition("/")
    return (entry_dir(stage, key, root or cache_root()) / MANIFEST).is_file()


def read_ledger(path: Path) -> dict[str, float]:
    """{"stage/key": wall seconds its build took} for every distinct entry a ledger file lists."""
    used = {}
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        used[f"{row['stage']}/{row['key']}"] = float(row["wall_s"])
    return used


# Entries this process has verified, with their files' (name, size, mtime, inode) at the time: loading one
# again re-hashes nothing while those are unchanged (a model entry with its snapshots is about 1 GB at the gpu
# level, and every evaluation loads it). As with git's index, a file modified less than RACY_S before it was
# verified is not remembered: a rewrite within the file system's timestamp resolution could keep its mtime.
_VERIFIED: dict[Path, tuple] = {}
RACY_S = 2.0


def _verify(path: Path) -> str | None:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return "missing or unreadable manifest"
    stats = {}
    for name in [MANIFEST, *files]:
        target = path / name
        if not target.is_file():
            return f"missing file {name}"
        stats[name] = target.stat()
    signature = tuple((name, st.st_size, st.st_mtime_ns, st.st_ino) for name, st in stats.items())
    if _VERIFIED.get(path) == signature:
        return None
    for name, expected in files.items():
        if stats[name].st_size != expected["bytes"] or file_sha256(path / name) != expected["sha256"]:
            _VERIFIED.pop(path, None)
            return f"file {name} does not match its recorded hash"
    if max(st.st_mtime_ns for st in stats.values()) < time.time_ns() - RACY_S * 1e9:
        _VERIFIED[path] = signature
    return None


class CacheMiss(CacheError):
    """Raised inside `lookup_only()` when a stage result is not in the cache."""


_LOOKUP_ONLY = False


@contextmanager
def lookup_only() -> Iterator[None]:
    """Inside this block, stages return cached results or raise CacheMiss; they never compute."""
    global _LOOKUP_ONLY
    previous, _LOOKUP_ONLY = _LOOKUP_ONLY, True
    try:
        yield
    finally:
        _LOOKUP_ONLY = previous


def cached(stage: str, version: int, config: dict, build: Callable[[Path, Path], dict | None],
           upstream: dict[str, str] | None = None, seed: int | None = None,
           root: Path | None = None) -> Entry:
    """Load the entry for these inputs, or build it.

    `build(out_dir, work_dir)` writes its files into `out_dir` (a temporary folder) and may keep resumable
    state in `work_dir` (kept across interruptions); it may return extra manifest fields. The finished
    folder is renamed into place atomically; if another process finished first, its entry wins.
    """
    root = root or cache_root()
    key = stage_key(stage, version, config, upstream, seed)
    found = load(stage, key, root)
    if found is not None:
        return found
    if _LOOKUP_ONLY:
        raise CacheMiss(f"no cached {stage} result for these inputs; run the stage that computes it first")
    final = entry_dir(stage, key, root)
    final.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(final.parent / f".lock-{key}", f"{stage} {key}") as exclusive:
        found = load(stage, key, root)  # another process may have built it while this one waited
        if found is not None:
            return found
        if exclusive:  # holding the lock, any temporary folder for this key is a killed builder's
            for stale in final.parent.glob(f".tmp-{key}-*"):
                _remove(stale)
        return _build(stage, version, config, build, upstream, seed, root, key, final)


def _wait_for(stage: str, key: str, root: Path, timeout_s: float = 1800.0) -> Entry:
    """A non-zero rank's entry: the one rank 0 publishes (every rank builds, so this is a short wait)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        found = load(stage, key, root)
        if found is not None:
            return found
        time.sleep(0.5)
    raise CacheError(f"rank {rank()} waited {timeout_s:.0f} s for rank 0 to write the {stage} entry {key}; "
                     "check rank 0's log")


#: In a work folder: when the build now running began, and what the killed builds before it had spent.
ATTEMPT = ".attempt.json"


def _earlier_attempts_s(work: Path) -> float:
    """Seconds that earlier, cut builds of this entry spent up to the last state they left in `work` (its
    newest file), so that a resumed entry's wall_s is what the whole build cost, not its last stretch. Work
    redone after the last checkpoint is counted once, in the stretch that redid it."""
    record = work / ATTEMPT
    if not record.exists():
        return 0.0
    try:
        attempt = json.loads(record.read_text())
        started, earlier = float(attempt["started"]), float(attempt["earlier_s"])
    except (ValueError, KeyError, TypeError):  # an unreadable record: count nothing rather than guess
        return 0.0
    last = max((p.stat().st_mtime for p in work.rglob("*") if p.is_file() and p.name != ATTEMPT), default=started)
    return earlier + max(last - started, 0.0)


def _build(stage, version, config, build, upstream, seed, root, key, final) -> Entry:
    """Build into a temporary folder and rename it into place. Under a multi-process launcher every rank runs
    `build` (training needs all of them) but only rank 0 writes the entry; the others use rank 0's."""
    work = final.parent / f".work-{key}"
    if rank() != 0:  # reads rank 0's resumable state (a checkpoint) from the shared work folder
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".rank{rank()}-{key}-", dir=final.parent) as tmp_dir:
            build(Path(tmp_dir), work)
        return _wait_for(stage, key, root)
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=final.parent))
    try:
        start = time.time()
        earlier = _earlier_attempts_s(work)
        (work / ATTEMPT).write_text(json.dumps({"started": start, "earlier_s": earlier}))
        extra = build(tmp, work) or {}
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
        files = {str(p.relative_to(tmp)): {"sha256": file_sha256(p), "bytes": p.stat().st_size}
                 for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {"stage": stage, "stage_version": version, "key": key, "seed": seed,
                    "upstream": upstream or {}, "wall_s": round(time.time() - start + earlier, 3),
                    "versions": versions(), "files": files, **extra}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        try:
            os.rename(tmp, final)
        except OSError:
            if load(stage, key, root) is None:  # not a concurrent winner: a real failure
                raise
    except BaseException:
        if work.exists() and all(p.name == ATTEMPT for p in work.iterdir()):  # keep only real resumable state
            _remove(work)
        raise
    finally:
        if tmp.exists():
            _remove(tmp)
    if final.exists():
        _remove(work)
    entry = load(stage, key, root)
    if entry is None:
        raise CacheError(f"cache entry {final} could not be written; check free space in {root}")
    return entry


@contextmanager
def _build_lock(path: Path, what: str) -> Iterator[bool]:
    """Hold an exclusive lock on `path` while one entry is built, so that a second process asking for the
    same entry waits and then loads it, instead of building it again beside the first (sharing its work
    folder). The lock file is removed by its holder; a waiter that wakes on a removed file tries again.

    Not used where fcntl is missing (Windows) or under a multi-process launcher (torchrun and `accelerate
    launch` set WORLD_SIZE): there every rank must enter the build together, and rank 0 alone publishes
    (`_build`). Yields
    whether the lock is held. A killed holder's lock is released by the kernel, so it never blocks anyone.
    """
    if fcntl is None or world_size() > 1:
        yield False
        return
    waited = False
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not waited:
                    print(f"toxlab: another process is computing {what}; waiting for it", file=sys.stderr,
                          flush=True)
                    waited = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
        except BaseException:
            os.close(fd)
            raise
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)  # the holder removed this lock file on its way out: take the new one
    try:
        yield True
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.close(fd)


def write_json(path: Path, obj: object) -> None:
    """Write JSON atomically (temp file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=True, default=str)
        handle.write("\n")
    os.replace(tmp, path)


def _remove(path: Path) -> None:
    _VERIFIED.pop(path, None)
    shutil.rmtree(path, ignore_errors=True)
