"""Import TensorFlow without its C++ start-up banner in the service's log.

TensorFlow 2.21 writes absl INFO lines to the process' stderr when it is imported (``oneDNN
custom operations are on``, ``This TensorFlow binary is optimized to use available CPU
instructions``, ``All log messages before absl::InitializeLog() ...``); ``TF_CPP_MIN_LOG_LEVEL``
no longer silences them. The first import runs with file descriptor 2 pointed at a temporary
file; the banner lines go to this module's logger at DEBUG, anything else TensorFlow wrote
there (a CUDA problem on a GPU host, say) is written back to stderr as it was.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import tempfile
import threading
from types import ModuleType

log = logging.getLogger(__name__)

_BANNER = (
    "WARNING: All log messages before absl::InitializeLog()",
    "I0000 ",
    "To enable the following instructions:",
)
_lock = threading.Lock()


def import_tensorflow() -> ModuleType:
    """``import tensorflow``, the first time with its banner kept out of stderr."""
    with _lock:
        if "tensorflow" in sys.modules:
            return sys.modules["tensorflow"]
        sys.stderr.flush()
        with tempfile.TemporaryFile() as captured:
            saved = os.dup(2)
            os.dup2(captured.fileno(), 2)
            try:
                tf = importlib.import_module("tensorflow")
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
    for line in text.splitlines():
        if line.startswith(_BANNER):
            log.debug("tensorflow: %s", line)
        elif line.strip():
            sys.stderr.write(line + "\n")
    return tf
