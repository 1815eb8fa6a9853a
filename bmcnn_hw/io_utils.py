"""Safe output writes: atomic files (temp file + rename), atomically replaced and locked output
directories, special files written through; and hashing."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

from .errors import BmcnnError, ConfigError


def umask() -> int:
    """The process's umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that no reader sees half of it and no special file is replaced.

    - A regular (or missing) file is written through a temp file in the same directory and a rename.
      It gets the permissions a plain ``open`` would give (0666 less the umask), not the temp
      file's 0600, so others on a shared machine can read results as they expect.
    - A symlink to a regular file (or a dangling one) replaces the file it points at; the link stays.
    - A device, FIFO or socket (``/dev/stdout``, a pipe made with ``mkfifo``) is written through,
      as a shell redirection would; renaming over it would destroy the node.

    Raises:
        OSError: naming ``path`` on any failure (a full disk, a directory in the way); the temp
            file is removed and a previous file at ``path`` is left as it was.
    """
    path = Path(path)
    try:
        kind = _kind(path)
        if kind == "directory":
            raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", str(path))
        if kind == "special":
            _write_through(path, data)
        else:
            _write_by_rename(Path(os.path.realpath(path)) if path.is_symlink() else path, data)
    except OSError as exc:
        if exc.filename is None or Path(exc.filename).name.startswith(_temp_prefix(path)):
            # a failed write() names no file and a failed temp file is ours: name the user's path
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
        raise


def check_output_file(path: Path, option: str) -> None:
    """Refuse, before any work, an output file that could not be written: ``path`` (given with
    ``option``) is a directory, or no file can be created where it goes.

    Raises:
        ConfigError: one line naming ``option`` and ``path``.
    """
    path = Path(path)
    kind = _kind(path)
    if kind == "directory":
        raise ConfigError(f"{option} {path}: is a directory; give a file name")
    if kind == "missing":
        _check_creatable(path.parent, option, path)


def check_output_dir(path: Path, option: str) -> None:
    """Refuse, before any work, an output directory that could not be made or written: ``path``
    (given with ``option``) is a file, or it or its nearest existing parent is not writable.

    Raises:
        ConfigError: one line naming ``option`` and ``path``.
    """
    path = Path(path)
    kind = _kind(path)
    if kind not in ("missing", "directory"):
        raise ConfigError(f"{option} {path}: exists and is not a directory")
    _check_creatable(path if kind == "directory" else path.parent, option, path)


def _check_creatable(directory: Path, option: str, path: Path) -> None:
    """``directory`` (or its nearest existing ancestor, where missing parents would be made)
    must be a writable directory."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{option} {path}: {existing} is not a directory")
    try:  # trying is the only sure test (root passes os.access where /proc or a read-only mount refuse)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ConfigError(f"{option} {path}: {existing} is not writable ({exc.strerror})") from None


def _kind(path: Path) -> str:
    """``missing``, ``regular``, ``directory`` or ``special`` for what ``path`` names (links followed)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # the latter: a file where a parent directory goes
        return "missing"
    if stat.S_ISDIR(mode):
        return "directory"
    return "regular" if stat.S_ISREG(mode) else "special"


def _write_through(path: Path, data: bytes) -> None:
    # The node may be this process's own stdout or stderr (/dev/stdout, a pipe): what print()
    # still buffers must go first, or the report overtakes lines printed before it.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    with open(path, "wb") as handle:
        handle.write(data)


def _write_by_rename(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            os.fchmod(handle.fileno(), 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _temp_prefix(path: Path) -> str:
    """A hidden name prefix beside ``path`` that keeps temp names within the 255-byte limit however
    long ``path``'s own legal name is (a 254-byte name plus a dot and a random tail would not)."""
    return "." + path.name.encode()[:100].decode(errors="ignore") + "."


class OutputBusy(BmcnnError):
    """Another process is writing the same output directory."""


@contextlib.contextmanager
def output_lock(target: Path):
    """Hold an exclusive lock on writing ``target`` (a hidden lock file beside it), or fail at once.

    The lock file is removed on release; a process that locked a just-removed file retries on the
    new one, so two writers never both hold it.

    Raises:
        OutputBusy: another process holds the lock.
    """
    lock_path = target.parent / f"{_temp_prefix(target)}lock"
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666 & ~umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputBusy(f"{target}: another process is writing it (lock {lock_path.name}); "
                             "wait for it to finish or choose another output") from None
        if _same_file(fd, lock_path):
            break
        os.close(fd)
    try:
        yield
    finally:
        lock_path.unlink(missing_ok=True)
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def replaced_directory(target: Path):
    """Yield a temp directory beside ``target``; when the block finishes, it replaces ``target``.

    - Checked before the block runs: ``target`` is a directory, a link to one, or missing (a
      link's directory is replaced and the link kept), and no other process is writing it (a
      lock beside it: a second writer fails at once with :class:`OutputBusy`).
    - Old and new directory are swapped by one atomic ``renameat2(RENAME_EXCHANGE)`` where the
      kernel and file system have it (else two renames), so ``target`` is never half-written; an
      interrupted or failing block leaves ``target`` as it was and the temp directory removed.
    - The new directory gets the permissions ``mkdir`` would give (the umask).
    """
    target = Path(os.path.realpath(target)) if Path(target).is_symlink() else Path(target)
    if _kind(target) not in ("missing", "directory"):
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a directory", str(target))
    with _locked_staging(target) as staging:
        made = staging.stat()
        try:
            yield staging
            _check_still_there(staging, made, target)
            staging.chmod(0o777 & ~umask())  # mkdtemp's 0700 -> what mkdir would give
            _swap_in(staging, target)  # afterwards staging holds the old directory, removed on exit
        except OSError as exc:
            _check_still_there(staging, made, target)  # a write failed because the directory went: say so
            raise _named_in(exc, staging, target) from None


@contextlib.contextmanager
def staged_files(target: Path):
    """Yield a temp directory beside ``target``; when the block finishes, every file written into it
    is moved into ``target`` (created if missing; other files there are kept).

    For a set of files that goes into a directory the user may share with other files (``rtl
    --out``): a failing or interrupted block (a full disk, Ctrl-C) leaves ``target`` as it was,
    and the moves are renames on one file system, which need no space. Errors name paths in
    ``target``, never the temp directory.
    """
    target = Path(target)
    with _locked_staging(target) as staging:
        try:
            yield staging
            target.mkdir(exist_ok=True)
            for path in sorted(staging.iterdir()):
                os.replace(path, target / path.name)
        except OSError as exc:
            raise _named_in(exc, staging, target) from None


@contextlib.contextmanager
def _locked_staging(target: Path):
    """A temp directory beside ``target`` while holding ``target``'s output lock; removed (with
    whatever it holds then) when the block ends. A failure to make it names ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(target):
        try:
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=_temp_prefix(target)))
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, str(target)) from None
        try:
            yield staging
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def _check_still_there(staging: Path, made: os.stat_result, target: Path) -> None:
    """Raise when ``staging`` was removed (and perhaps re-created by a later write) during the
    block: what it holds then is not everything that was written."""
    try:
        same = os.path.samestat(made, staging.stat())
    except FileNotFoundError:
        same = False
    if not same:
        raise FileNotFoundError(errno.ENOENT, "its directory was removed while it was being written", str(target))


def _named_in(exc: OSError, staging: Path, target: Path) -> OSError:
    """``exc`` with a path inside ``staging`` told as the same path inside ``target`` (the user's name)."""
    name = exc.filename
    if name is None or not str(name).startswith(str(staging)):
        return exc
    return type(exc)(exc.errno, exc.strerror, str(target) + str(name)[len(str(staging)):])


def _swap_in(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; an old ``target`` ends at ``staging``, to be removed."""
    if not target.exists():
        os.replace(staging, target)
    elif not _exchange(staging, target):  # two renames: the old directory is never deleted in place
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=_temp_prefix(target)))
        os.replace(target, old)
        os.replace(staging, target)
        os.replace(old, staging)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2`` with ``RENAME_EXCHANGE``); False where unsupported."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def write_text_atomic(path: Path, text: str) -> None:
    """Atomically write UTF-8 text."""
    write_atomic_bytes(path, text.encode())


def write_json_atomic(path: Path, obj) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_figure(fig, out_stem: Path, dpi: int = 120) -> list[Path]:
    """A matplotlib figure as ``out_stem.png`` and ``out_stem.svg``, each written atomically."""
    import io

    paths = []
    for ext in ("png", "svg"):
        path, buffer = Path(f"{out_stem}.{ext}"), io.BytesIO()
        fig.savefig(buffer, format=ext, dpi=dpi)
        write_atomic_bytes(path, buffer.getvalue())
        paths.append(path)
    return paths


def read_toml(path: Path, what: str = "file") -> dict:
    """A parsed TOML file.

    Raises:
        ConfigError: naming ``path`` when it is missing (``<what> not found``), unreadable, or not
            valid TOML.
    """
    import tomllib

    from .errors import ConfigError

    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


RESULTS_MARKER = ".bmcnn-hw-results.json"
"""Written into a results directory: which command wrote it, for which build or checkpoint."""


@contextlib.contextmanager
def results_dir(out: Path, command: str, sources: list[Path], report: str, force: bool = False):
    """Claim ``out`` for the results of ``bmcnn-hw COMMAND`` on ``sources`` and hold it locked.

    A directory that holds this command's results for the same sources is reused (a re-run
    replaces them); results for other sources (another build with the default ``--out``) are
    replaced only with ``force``, as are results (``report``, e.g. ``cosim.json``) that carry no
    record of their sources. Checked before any work.

    Raises:
        ConfigError: one line naming ``out``, whose results are there and what to do.
        OutputBusy: another process is writing ``out``.
    """
    out = Path(out)
    check_output_dir(out, "--out")
    claim = {"command": command, "sources": [str(Path(s).resolve()) for s in sources]}
    if not force:
        _check_results_owner(out, claim, report)
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        created = not out.exists()
        out.mkdir(exist_ok=True)
        try:
            write_json_atomic(out / RESULTS_MARKER, claim)  # a full disk fails here, leaving an empty directory
            yield out
        except BaseException:
            if created and set(os.listdir(out)) <= {RESULTS_MARKER}:  # failed before writing results: no trace
                shutil.rmtree(out)
            raise


def _check_results_owner(out: Path, claim: dict, report: str) -> None:
    try:
        owner = json.loads((out / RESULTS_MARKER).read_text())
    except FileNotFoundError:
        if (out / report).exists():
            raise ConfigError(f"--out {out}: holds a {report} of unknown origin; pass --force to replace it or "
                              "choose another --out") from None
        return
    except (OSError, ValueError):
        owner = None
    if owner != claim:
        readable = (isinstance(owner, dict) and isinstance(owner.get("command"), str)
                    and isinstance(owner.get("sources"), list) and all(isinstance(s, str) for s in owner["sources"]))
        what = (f"`bmcnn-hw {owner['command']}` results for {', '.join(owner['sources'])}"
                if readable else f"an unreadable {RESULTS_MARKER}")
        raise ConfigError(f"--out {out}: holds {what}; pass --force to replace them or choose another --out")
