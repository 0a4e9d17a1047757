"""The Keras backend, imported without the start-up noise of its libraries."""

from __future__ import annotations

import os
import sys


def import_backend_quietly() -> None:
    """Import Keras (and TensorFlow) with file descriptor 2 pointed at /dev/null: the libraries
    print start-up lines through C++ logging before any Python setting can stop them."""
    if "keras" in sys.modules or os.environ.get("QPAPER_TF_LOGS"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
