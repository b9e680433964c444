"""Safe output: atomic writes that never overwrite without ``force``."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import InputError, OutputExistsError


def check_writable(path: str | os.PathLike, force: bool) -> Path:
    """Raise ``OutputExistsError`` when ``path`` exists and ``force`` is false."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError("exists; pass --force to overwrite", path)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file keeps the final suffix (writers pick the format from it).
    On error the temporary file is removed and ``path`` is untouched.
    """
    path = check_writable(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_temporary(path)
    try:
        yield tmp_path
        if force:
            os.replace(tmp_path, path)
        else:
            _move_without_overwrite(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _new_temporary(path: Path) -> Path:
    """A new empty file beside ``path`` with the final suffix (writers pick the format from it).

    Created with mode 0666 so that the process umask gives the usual permissions (mkstemp's 0600 would
    leave every output readable by its owner only).
    """
    suffix = "".join(path.suffixes) or ".tmp"
    stem = path.name.split(".")[0]
    for _ in range(100):
        candidate = path.parent / f".{stem}-{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free temporary name beside {path}")


def _move_without_overwrite(tmp_path: Path, path: Path) -> None:
    """Rename, failing if ``path`` appeared since the check (a hard link never replaces a file)."""
    try:
        os.link(tmp_path, path)
    except FileExistsError:
        raise OutputExistsError("exists; pass --force to overwrite", path) from None
    except OSError:  # file systems without hard links: a plain rename after the existence check
        os.replace(tmp_path, path)
        return
    tmp_path.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes, force: bool = False) -> Path:
    with atomic_path(path, force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_with(path: str | os.PathLike, writer: Callable[[Path], Any], force: bool = False) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path, force) as tmp:
        writer(tmp)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, force: bool = False) -> Path:
    text = json.dumps(obj, indent=2, allow_nan=False, default=_json_default) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"), force)


def dumps_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, allow_nan=False, default=_json_default)


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def prepare_output_dir(path: str | os.PathLike | None) -> Path | None:
    """Create the output directory when given; refuse a path that is a file."""
    if path is None:
        return None
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError("is not a directory", path)
    path.mkdir(parents=True, exist_ok=True)
    return path
