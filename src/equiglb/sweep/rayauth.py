"""Ray's token authentication for ``--address``, set up before Ray is imported.

A head started as docs/experiments.md says (``ray start --head --node-ip-address 127.0.0.1 ...``) enables
Ray's token authentication by itself when a token exists (``~/.ray/auth_token`` or ``$RAY_AUTH_TOKEN``):
it sets ``RAY_AUTH_MODE=token`` for its own processes. A driver must be in the same mode, and Ray reads
``RAY_AUTH_MODE`` when it is imported, so setting it just before ``ray.init`` is too late ("Missing
authorization header"). :func:`use_ray_token_if_present` runs when :mod:`equiglb.sweep` is imported,
before any of its modules imports ``ray``, and does what ``ray start`` does: ``RAY_AUTH_MODE=token``
when the variable is unset and a token exists. A value the user set is never changed.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["TOKEN_FILE", "token_available", "use_ray_token_if_present"]

#: Ray's default token file (``ray get-auth-token --generate`` writes it).
TOKEN_FILE = Path("~/.ray/auth_token")


def token_available(environ: dict[str, str] | None = None) -> bool:
    """Whether a Ray authentication token exists: ``$RAY_AUTH_TOKEN``, ``$RAY_AUTH_TOKEN_PATH`` or
    ``~/.ray/auth_token``."""
    env = os.environ if environ is None else environ
    if env.get("RAY_AUTH_TOKEN"):
        return True
    path = env.get("RAY_AUTH_TOKEN_PATH")
    try:
        return Path(path).expanduser().is_file() if path else TOKEN_FILE.expanduser().is_file()
    except (OSError, RuntimeError):   # no home folder: no token
        return False


def use_ray_token_if_present() -> bool:
    """Set ``RAY_AUTH_MODE=token`` if it is unset and a token exists (as ``ray start`` does); returns
    whether the variable is now ``token``. Effective only before ``ray`` is imported in this process."""
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is None and token_available():
        os.environ["RAY_AUTH_MODE"] = mode = "token"
    return (mode or "").lower() == "token"
