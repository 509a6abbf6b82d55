"""Loading untrusted pickles: only numpy arrays, numpy scalars and builtin containers.

Every published feature file of this field (MELD, FacialMMT, MMSA, MulT) is a pickle, and
``pickle.load`` runs whatever a file asks for. `load_pickle` resolves globals through an
allow-list instead, so a crafted file raises `UnsafePickleError` before anything executes.
Python 2 era files (MELD's dialogue-level pickles) need ``encoding="latin1"``; `load_pickle`
retries with it when the default encoding fails.
"""

from __future__ import annotations

import importlib
import io
import pickle
from pathlib import Path
from typing import Any

_ALLOWED: frozenset[tuple[str, str]] = frozenset({
    # numpy arrays and scalars (module spelled numpy.core before 2.0, numpy._core after)
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # protocol-2 pickles spell bytes as _codecs.encode(str, "latin1")
    # builtin containers and values
    ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "bytearray"), ("builtins", "bytes"), ("builtins", "str"),
    ("builtins", "int"), ("builtins", "float"), ("builtins", "complex"), ("builtins", "bool"),
    ("collections", "OrderedDict"), ("collections", "defaultdict"),
})
_RENAMED = {  # old module spellings: numpy < 2.0, and Python 2 names (protocol <= 2)
    "numpy.core.multiarray": "numpy._core.multiarray", "numpy.core.numeric": "numpy._core.numeric",
    "__builtin__": "builtins",
}


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for something outside the allow-list (or is not a pickle at all).

    Also a `ValueError`: a refused file is bad input, reported in one line by the CLI.
    """


class RestrictedUnpickler(pickle.Unpickler):
    """A `pickle.Unpickler` that resolves only allow-listed globals.

    Args:
        file: a binary file object.
        encoding: how to decode Python 2 ``str`` objects (``"latin1"`` for Python 2 files).
        name: the file name used in error messages.
    """

    def __init__(self, file: io.BufferedIOBase, *, encoding: str = "ASCII", name: str = "<pickle>") -> None:
        super().__init__(file, encoding=encoding)
        self._name = name

    def find_class(self, module: str, name: str) -> Any:  # noqa: ANN401
        """Resolve ``module.name`` if allow-listed; raise `UnsafePickleError` otherwise."""
        module = _RENAMED.get(module, module)
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(
                f"{self._name}: refusing to load {module}.{name}; feature pickles may only hold numpy "
                "arrays and builtin containers (the file may be malicious or of another format)"
            )
        return getattr(importlib.import_module(module), name)

    def persistent_load(self, pid: Any) -> Any:  # noqa: ANN401
        """Persistent ids (used by torch and others) are never resolved."""
        raise UnsafePickleError(f"{self._name}: refusing a persistent id in the pickle")


def load_pickle(path: str | Path, *, encoding: str | None = None) -> Any:  # noqa: ANN401
    """Load a feature pickle with `RestrictedUnpickler`.

    Args:
        path: the file.
        encoding: ``None`` tries the default (ASCII) first, then ``"latin1"`` on a decode error.

    Returns:
        The unpickled object (nested containers of numpy arrays and builtin values).

    Raises:
        FileNotFoundError: no such file.
        UnsafePickleError: a disallowed global, or a file that is not a valid pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    encodings = [encoding] if encoding else ["ASCII", "latin1"]
    for i, enc in enumerate(encodings):
        try:
            with path.open("rb") as f:
                return RestrictedUnpickler(f, encoding=enc, name=path.name).load()  # type: ignore[arg-type]
        except UnicodeDecodeError:
            if i == len(encodings) - 1:
                raise UnsafePickleError(f"{path.name}: cannot decode the pickle's strings as {enc}") from None
        except (UnsafePickleError, OSError):
            raise
        except Exception as err:  # noqa: BLE001 - arbitrary bytes fail in arbitrary ways
            raise UnsafePickleError(f"{path.name}: not a valid pickle ({type(err).__name__}: {err})") from None
    raise AssertionError("unreachable")
