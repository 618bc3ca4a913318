"""One bytecode cache for the Python processes a test session starts.

Where PYTHONDONTWRITEBYTECODE is set (the test machines' environment sets it, and the
virtualenv holds no .pyc files: uv does not compile on install), every Python process
compiles every module it imports from source. The suite starts well over a hundred of them:
`postmeister` commands, `postmeister serve`, `dataplane up` and `down`, the milter and the
auth policy service of each stack. Compiling was about 60 % of their start-up
(`postmeister customer create`: 1.7 s of CPU without a cache, 0.8 s with one), paid again
by each.

The session therefore lets its children write their bytecode, into a directory of its own
(`PYTHONPYCACHEPREFIX`), never beside the sources: the checkout and the virtualenv stay as
PYTHONDONTWRITEBYTECODE keeps them. The test process writes what it imports after start-up
there too, so that even the first child finds FastAPI, SQLAlchemy and the application
compiled. The directory is removed at the end of the session.

Nothing changes where bytecode is written anyway (no PYTHONDONTWRITEBYTECODE), or where a
cache directory is already configured.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path


def share_bytecode_cache() -> Path | None:
    """Point this process and its children at a fresh bytecode cache; None if not needed."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or sys.pycache_prefix is not None:
        return None
    cache = Path(tempfile.mkdtemp(prefix="postmeister-pycache-"))
    # Readable for the daemons that run as other users (they cannot write it: they compile
    # for themselves, as before).
    os.chmod(cache, 0o755)  # noqa: S103
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    os.environ["PYTHONPYCACHEPREFIX"] = str(cache)
    sys.pycache_prefix = str(cache)
    sys.dont_write_bytecode = False
    return cache


def remove_bytecode_cache(cache: Path | None) -> None:
    if cache is None:
        return
    sys.dont_write_bytecode = True
    sys.pycache_prefix = None
    shutil.rmtree(cache, ignore_errors=True)
