"""Acoustic feature extractors: openSMILE feature sets over the decoded waveform (offline, CPU).

Each extractor decodes the first audio stream of an audio or video file with
`scenesense.extraction.audio_io.load_audio` (PyAV: resampled to ``sample_rate``, 16 kHz by
default, channels averaged into mono) and runs one openSMILE 3 feature set on it through the
``opensmile`` package, which calls its shipped ``libSMILEapi`` (no download, no binary).

Registered in ``EXTRACTORS`` (dims measured with opensmile 2.6.0):

- ``egemaps``: eGeMAPSv02 functionals, one vector ``[88]`` per file (the GeMAPS-extended set for
  affective computing: pitch, jitter, shimmer, loudness, formants, spectral balance statistics);
- ``compare``: ComParE_2016 functionals, one vector ``[6373]`` per file;
- ``egemaps_lld``: eGeMAPSv02 low-level descriptors, a sequence ``[T, 25]``;
- ``compare_lld``: ComParE_2016 low-level descriptors, a sequence ``[T, 65]``.

LLD frames come every 10 ms (so ``T`` is about 100 per second of audio); ``max_frames`` caps
``T`` by averaging consecutive frames (see `pool_frames`). A clip too short for a feature
set (openSMILE returns NaN below about 0.1 s) is an `scenesense.extraction.base.ItemError`,
like every decoding problem and a file longer than
`scenesense.extraction.audio_io.MAX_AUDIO_SECONDS` (10 minutes: decoding stops there, so
memory stays bounded; ``scenesense predict`` cuts longer media into windows).
``opensmile`` is imported on the first extraction, never at import; both it and ``av`` come with
the ``audio`` extra (``pip install "scenesense[audio]"``), checked when an extractor is built.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np

from scenesense.extraction.audio_io import SILENCE_PEAK, load_audio
from scenesense.extraction.base import (
    EXTRACTORS,
    FeatureExtractor,
    InputKind,
    ItemError,
    OutputSpec,
    package_versions,
)
from scenesense.utils.extras import Needs

LLD_HOP_MS = 10
"""Frame step of the eGeMAPSv02 and ComParE_2016 low-level descriptors, in milliseconds."""

_INT16_TOP = 32767 / 32768  # opensmile scales by 32768 and casts to int16: 1.0 would wrap around

NEEDS = Needs("audio", ("opensmile", "av"), "openSMILE audio features")
"""What every openSMILE extractor imports: ``opensmile`` and ``av`` (PyAV), from the ``audio`` extra."""


def pool_frames(frames: np.ndarray, max_frames: int) -> np.ndarray:
    """Average ``[T, D]`` frames into ``min(T, max_frames)`` rows.

    When ``T > max_frames`` the frames are cut into ``max_frames`` contiguous groups of near-equal
    size (sizes differ by at most one) and each group is averaged, so the output still covers the
    whole clip with a step of about ``T / max_frames`` frames.

    Returns:
        ``[min(T, max_frames), D]`` float32.
    """
    t = frames.shape[0]
    if t <= max_frames:
        return frames
    bounds = np.linspace(0, t, max_frames + 1).round().astype(np.int64)  # strictly increasing: t > max_frames
    sums = np.add.reduceat(frames.astype(np.float64), bounds[:-1], axis=0)  # [max_frames, D]
    return (sums / np.diff(bounds)[:, None]).astype(np.float32)


class OpenSmileExtractor(FeatureExtractor):
    """One openSMILE feature set at one level, over a file's audio; subclasses pick the set.

    Args:
        sample_rate: rate (Hz) the audio is resampled to before openSMILE, 16 kHz by default
            (speech corpora are often 16 kHz; RAVDESS is 48 kHz).
        min_peak: silence threshold on the decoded peak amplitude (see
            `scenesense.extraction.audio_io.load_audio`).

    Raises:
        ValueError: a bad argument.
        MissingExtraError: the ``audio`` extra is not installed.
    """

    modality: ClassVar[str] = "audio"
    input_kind: ClassVar[InputKind] = "audio"
    needs: ClassVar[Needs | None] = NEEDS
    name: ClassVar[str]  # registry name
    feature_set: ClassVar[str]  # opensmile.FeatureSet member, e.g. "eGeMAPSv02"
    feature_level: ClassVar[str]  # opensmile.FeatureLevel member: "Functionals" or "LowLevelDescriptors"
    output: ClassVar[str]  # output name

    def __init__(self, sample_rate: int = 16000, min_peak: float = SILENCE_PEAK) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 8000:
            raise ValueError(f"sample_rate must be an int >= 8000 (Hz), got {sample_rate!r}")
        if isinstance(min_peak, bool) or not isinstance(min_peak, int | float) or min_peak < 0:
            raise ValueError(f"min_peak must be a number >= 0, got {min_peak!r}")
        NEEDS.check()
        self.sample_rate = sample_rate
        self.min_peak = float(min_peak)
        self._smile: Any = None

    def _load(self) -> Any:  # noqa: ANN401
        """The ``opensmile.Smile`` object, built on first use (loads libSMILEapi and the config)."""
        if self._smile is None:
            opensmile = NEEDS.require("opensmile")
            self._smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, self.feature_set),
                                          feature_level=getattr(opensmile.FeatureLevel, self.feature_level))
        return self._smile

    @property
    def dim(self) -> int:
        """Feature size ``D``, read from the feature set's config."""
        return len(self._load().feature_names)

    @property
    def feature_names(self) -> list[str]:
        """openSMILE's name of each of the ``D`` features, in output order."""
        return list(self._load().feature_names)

    def params(self) -> dict[str, Any]:
        """Constructor arguments (all of them change the output or which items fail)."""
        return {"sample_rate": self.sample_rate, "min_peak": self.min_peak}

    def outputs(self) -> dict[str, OutputSpec]:
        """One output named `output`: a vector ``[D]`` (functionals) or a sequence ``[T, D]``."""
        kind = "vector" if self.feature_level == "Functionals" else "sequence"
        return {self.output: OutputSpec(kind, self.dim)}

    def provenance(self) -> dict[str, Any]:
        """Extractor name and parameters (``EXTRACTORS.create`` rebuilds it), openSMILE set and level,
        input preparation and package versions."""
        return {
            "extractor": self.name, "params": self.params(),
            "feature_set": self.feature_set, "feature_level": self.feature_level,
            "input": f"first audio stream decoded with PyAV, resampled to {self.sample_rate} Hz, "
                     f"channels averaged to mono",
            "versions": package_versions(("opensmile", "av")),
        }

    def extract_one(self, item: str) -> dict[str, np.ndarray]:
        """Features of one audio or video file.

        Returns:
            ``{output: [D]}`` (functionals) or ``{output: [T, D]}`` (low-level descriptors), float32.

        Raises:
            ItemError: unreadable/silent/empty audio, or too short for the feature set.
        """
        signal = load_audio(item, self.sample_rate, mono=True, min_peak=self.min_peak)  # [S]
        signal = np.clip(signal, -1.0, _INT16_TOP)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Segment too short")  # becomes NaN, checked below
            values = self._load().process_signal(signal, self.sample_rate).to_numpy(dtype=np.float32)  # [T, D]
        if not np.isfinite(values).all():
            seconds = signal.size / self.sample_rate
            raise ItemError(f"{item}: openSMILE {self.feature_set} gave NaN/inf features "
                            f"(audio {seconds:.3f} s long; about 0.1 s is the minimum)")
        features = values[0] if self.feature_level == "Functionals" else self._frames(values)
        spec = self.outputs()[self.output]
        if features.shape[-1] != spec.dim or (spec.kind == "sequence" and features.shape[0] < 1):
            raise ItemError(f"{item}: openSMILE returned shape {list(values.shape)} for {self.feature_set}")
        return {self.output: features}

    def _frames(self, values: np.ndarray) -> np.ndarray:
        """LLD frames ``[T, D]`` as stored; subclasses cap ``T``."""
        return values


class OpenSmileLLDExtractor(OpenSmileExtractor):
    """Low-level descriptor sequences, one frame per 10 ms, optionally pooled to ``max_frames``.

    Args:
        sample_rate: see `OpenSmileExtractor`.
        min_peak: see `OpenSmileExtractor`.
        max_frames: longest sequence returned; a longer one is averaged down to ``max_frames``
            frames by `pool_frames` (``None``: keep every frame, about 100 per second).
    """

    def __init__(self, sample_rate: int = 16000, min_peak: float = SILENCE_PEAK,
                 max_frames: int | None = None) -> None:
        super().__init__(sample_rate, min_peak)
        if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int)
                                       or max_frames < 1):
            raise ValueError(f"max_frames must be a positive int or None, got {max_frames!r}")
        self.max_frames = max_frames

    def params(self) -> dict[str, Any]:
        """Constructor arguments, including ``max_frames``."""
        return {**super().params(), "max_frames": self.max_frames}

    def provenance(self) -> dict[str, Any]:
        """As `OpenSmileExtractor.provenance`, plus the frame step and pooling."""
        pooling = ("none" if self.max_frames is None else
                   f"sequences longer than {self.max_frames} frames are averaged over contiguous groups "
                   f"down to {self.max_frames} frames")
        return {**super().provenance(), "frame_hop_ms": LLD_HOP_MS, "pooling": pooling}

    def _frames(self, values: np.ndarray) -> np.ndarray:
        return values if self.max_frames is None else pool_frames(values, self.max_frames)


@EXTRACTORS.register("egemaps")
class EGeMAPSExtractor(OpenSmileExtractor):
    """eGeMAPSv02 functionals: one ``[88]`` vector per file (output ``functionals``)."""

    name = "egemaps"
    feature_set = "eGeMAPSv02"
    feature_level = "Functionals"
    output = "functionals"


@EXTRACTORS.register("compare")
class ComParEExtractor(OpenSmileExtractor):
    """ComParE_2016 functionals: one ``[6373]`` vector per file (output ``functionals``)."""

    name = "compare"
    feature_set = "ComParE_2016"
    feature_level = "Functionals"
    output = "functionals"


@EXTRACTORS.register("egemaps_lld")
class EGeMAPSLLDExtractor(OpenSmileLLDExtractor):
    """eGeMAPSv02 low-level descriptors: a ``[T, 25]`` sequence per file (output ``lld``)."""

    name = "egemaps_lld"
    feature_set = "eGeMAPSv02"
    feature_level = "LowLevelDescriptors"
    output = "lld"


@EXTRACTORS.register("compare_lld")
class ComParELLDExtractor(OpenSmileLLDExtractor):
    """ComParE_2016 low-level descriptors: a ``[T, 65]`` sequence per file (output ``lld``)."""

    name = "compare_lld"
    feature_set = "ComParE_2016"
    feature_level = "LowLevelDescriptors"
    output = "lld"

