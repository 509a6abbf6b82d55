"""Long media in windows: audio longer than twice ``window_s`` is streamed from disk, each window
featurised and classified alone; the item gets a timeline and the mean of its windows' scores.

An item whose text is to be transcribed (`scenesense.predict.transcripts`) is cut into windows
too when the run reads only text: each window's text is the transcript of the window's audio
(a word cut by a window's edge may be misheard), and the item's transcript joins the windows'.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from scenesense.data.speaker_norm import apply_speaker_norm
from scenesense.extraction.audio_io import AudioWindow, audio_seconds, audio_windows, write_wav
from scenesense.extraction.base import ItemError
from scenesense.extraction.transcribe import Segment, Transcriber, Transcript
from scenesense.predict.inputs import Item
from scenesense.predict.model import (
    MIN_SPEAKER_ITEMS,
    SpeakerStats,
    chunk_statistics,
    classify,
    prepare_chunk,
    source_of,
)
from scenesense.predict.options import clock
from scenesense.predict.output import ItemPrediction, WindowPrediction
from scenesense.predict.plan import ModalityPlan
from scenesense.predict.transcripts import give_transcript
from scenesense.runs import RunSpec

_LONG_FACTOR = 2.0  # audio longer than this many windows is predicted window by window


def long_audio(item: Item, plans: Mapping[str, ModalityPlan], window_s: float,
               transcribed: bool = False) -> Path | None:
    """The audio file of ``item`` to predict in windows: its audio is read by an audio extractor
    (or ``transcribed`` for its text) and known to last more than ``_LONG_FACTOR`` windows. Else ``None``."""
    reads_audio = any(p.extractor is not None and p.extractor.input_kind == "audio" for p in plans.values())
    if not reads_audio and not transcribed:
        return None
    path = item.audio or item.media or item.video
    if path is None:
        return None
    seconds = audio_seconds(path)
    return path if seconds is not None and seconds > _LONG_FACTOR * window_s else None


def _batches(windows: Iterator[AudioWindow], size: int) -> Iterator[list[AudioWindow]]:
    batch: list[AudioWindow] = []
    for window in windows:
        batch.append(window)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict_windows(model: torch.nn.Module, spec: RunSpec, plans: Mapping[str, ModalityPlan],
                    item: Item, path: Path, window_s: float, *, batch_size: int, device: str,
                    speaker_norm: bool, transcriber: Transcriber | None = None) -> ItemPrediction:
    """Predict the audio ``path`` of ``item`` window by window (see the module docstring).

    Windows are streamed from disk (`scenesense.extraction.audio_io.audio_windows`),
    ``batch_size`` at a time: written as 16-bit WAVs to a temporary folder, featurised by the
    run's extractors as any audio file is, and classified; one batch is held at a time. With
    ``speaker_norm`` every window is normalised with the statistics of the first batch (at least
    ``MIN_SPEAKER_ITEMS`` windows): those of the recording's speaker. With a ``transcriber``
    each window's text is the transcript of its audio.
    """
    problems = list(item.problems) + [
        f"{m}: not used: the audio of {path} is predicted in {window_s:g} s windows, which {m} is not "
        f"aligned with"
        for m, p in sorted(plans.items())
        if p.extractor is not None and p.extractor.input_kind != "audio" and source_of(item, p) is not None]
    timeline: list[WindowPrediction] = []
    said: list[tuple[float, Transcript]] = []  # (window start in seconds, its transcript)
    used: set[str] = set()
    stats: SpeakerStats | None = None
    size = max(batch_size, MIN_SPEAKER_ITEMS) if speaker_norm else batch_size
    with tempfile.TemporaryDirectory(prefix="scenesense-windows-") as folder:
        try:
            for batch in _batches(audio_windows(path, window_s), size):
                windows = [_window_item(item, k, w, Path(folder)) for k, w in enumerate(batch)]
                heard = [None if transcriber is None else _transcribe_window(transcriber, it, w)
                         for it, w in zip(windows, batch)]
                results, samples = prepare_chunk(spec, plans, windows)
                if speaker_norm and samples:
                    stats = stats or chunk_statistics(samples, plans)
                    samples = [apply_speaker_norm(s, stats) for s in samples]
                results = classify(model, spec, results, samples, device)
                timeline += [_window_prediction(w, result, path, heard_in)
                             for w, result, heard_in in zip(batch, results, heard)]
                said += [(w.start / w.rate, t) for w, t in zip(batch, heard) if t is not None]
                used.update(m for result in results if result.ok for m in result.used)
        except ItemError as err:  # the file cannot be read (any further): the windows before it are kept
            problems.append(f"audio: {err}")
    result = _summarise_windows(item, plans, spec, timeline, problems, path, used)
    return result if transcriber is None else replace(result, transcript=_joined(said))


def _transcribe_window(transcriber: Transcriber, window_item: Item, window: AudioWindow) -> Transcript | None:
    """The window's transcript, given to ``window_item`` as its text (no speech: a problem line)."""
    mono = window.samples.mean(axis=0, dtype=np.float32)  # [n]
    return give_transcript(window_item, lambda: transcriber.transcribe(mono, window.rate),
                           str(window_item.audio))


def _joined(said: Sequence[tuple[float, Transcript]]) -> Transcript:
    """The windows' transcripts as one, times from the start of the recording."""
    segments: list[Segment] = [s.shifted(start) for start, t in said for s in t.segments]
    language = next((t.language for _, t in said if t.text), next((t.language for _, t in said), ""))
    return Transcript(" ".join(s.text for s in segments), language, tuple(segments))


def _window_item(item: Item, k: int, window: AudioWindow, folder: Path) -> Item:
    """The ``k``-th window of a batch as an item of its own: audio only, written to ``folder``."""
    path = write_wav(folder / f"window{k}.wav", window.samples, window.rate)
    return Item(f"{item.id}@{clock(window.start / window.rate)}", {"audio": str(path)}, audio=path,
                 speaker=item.speaker)


def _window_prediction(window: AudioWindow, result: ItemPrediction, path: Path,
                       transcript: Transcript | None = None) -> WindowPrediction:
    """A window's prediction; an error names the recording and the span, not the temporary file."""
    start, end = window.start / window.rate, (window.start + window.samples.shape[1]) / window.rate
    error = result.error
    if error is not None:
        error = error.removeprefix("no modality could be extracted: ")
        error = error.replace(result.inputs["audio"], f"{path} [{clock(start)}-{clock(end)}]")
    return WindowPrediction(start, end, result.label, result.probabilities, result.value, error,
                            None if transcript is None else transcript.text)


def _summarise_windows(item: Item, plans: Mapping[str, ModalityPlan], spec: RunSpec,
                       timeline: Sequence[WindowPrediction], problems: list[str],
                       path: Path, used: set[str]) -> ItemPrediction:
    """The item's prediction from its windows: the mean of their probabilities (or values); ``used``:
    the modalities any window was predicted from."""
    ok = [w for w in timeline if w.ok]
    failed = [w for w in timeline if not w.ok]
    if failed:
        problems.append(f"audio: {len(failed)} of {len(timeline)} windows of {path} could not be predicted "
                        f"(first: {failed[0].error})")
    used = used if ok else set()
    result = ItemPrediction(item.id, item.raw, used=tuple(sorted(used)),
                            missing=tuple(sorted(set(plans) - used)), problems=tuple(problems),
                            timeline=tuple(timeline))
    if not timeline:
        return replace(result, error="no modality could be extracted: " + "; ".join(problems))
    if not ok:
        return replace(result, error=f"no window of {path} could be predicted: " + "; ".join(problems))
    if spec.task == "regression":
        return replace(result, value=float(np.mean([w.value for w in ok])))
    names = list(spec.label_names)
    mean = {c: float(np.mean([w.probabilities[c] for w in ok])) for c in names}
    return replace(result, label=max(names, key=lambda c: mean[c]), probabilities=mean)
