"""The transcribe step: an item with audio or video but no text gets the transcript of its speech as
its text, when the run reads text.

With ``transcribe="auto"`` (the default) and a run whose text modality can be extracted, every item
that gives audio, video or media and no ``text`` is transcribed (its audio file, else its media
or video file's sound, as the audio extractors read it) by the transcriber given, else by
`default_transcriber`: ``whisper`` with the shipped Whisper tiny.en and speech detection
(``vad_filter``), so music, tones and silence give no text instead of words Whisper makes up.
The transcript becomes the item's text and is returned with its prediction; no speech, or a file
that cannot be decoded, is a ``text:`` problem of the item (its text is then missing). Without
the ``speech`` extra the items keep no text, with one warning. ``"never"`` leaves the text missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from scenesense.extraction.base import ItemError
from scenesense.extraction.items import one_line
from scenesense.extraction.transcribe import TRANSCRIBERS, Transcriber, Transcript
from scenesense.predict.inputs import Item
from scenesense.predict.options import TRANSCRIBE_MODES
from scenesense.predict.plan import ModalityPlan
from scenesense.utils.extras import MissingExtraError

DEFAULT_TRANSCRIBER = "whisper"
DEFAULT_PARAMS: dict[str, Any] = {"vad_filter": True}
"""Parameters of the default transcriber beside its defaults: speech detection first (Whisper tiny.en
hears "Oh." in a 1 s voice-like tone and a repeated "whoa" in 12 s of it; with detection, nothing)."""


def default_transcriber(model_path: str | None = None) -> Transcriber:
    """``whisper`` with `DEFAULT_PARAMS`; ``model_path``: a local CTranslate2 Whisper folder (default
    the shipped tiny.en).

    Raises:
        MissingExtraError: the ``speech`` extra is not installed.
        ValueError: ``model_path`` is not a CTranslate2 Whisper folder.
    """
    return TRANSCRIBERS.create(DEFAULT_TRANSCRIBER, model_path=model_path, **DEFAULT_PARAMS)


def check_mode(transcribe: str) -> None:
    """Raise ``ValueError`` unless ``transcribe`` is one of `TRANSCRIBE_MODES`."""
    if transcribe not in TRANSCRIBE_MODES:
        raise ValueError(f"transcribe must be one of {list(TRANSCRIBE_MODES)}, got {transcribe!r}")


def reads_text(plans: Mapping[str, ModalityPlan]) -> bool:
    """Whether a modality of the run is extracted from text."""
    return any(p.extractor is not None and p.extractor.input_kind == "text" for p in plans.values())


def speech_source(item: Item) -> Path | None:
    """The file whose sound is transcribed: the item's audio, else its media or video file."""
    return item.audio or item.media or item.video


def wants_transcript(item: Item, plans: Mapping[str, ModalityPlan]) -> bool:
    """Whether ``item`` is to be transcribed: the run reads text, the item gives none, and it has a
    usable audio, media or video file."""
    return "text" not in item.raw and speech_source(item) is not None and reads_text(plans)


def unavailable_warning(err: MissingExtraError) -> str:
    """The warning for items left without a text because no transcriber can be built."""
    return f"text: audio and video items without a text are not transcribed, so their text is missing: {err}"


def asr_warning(provenance: Mapping[str, Any], n: int) -> str:
    """The warning that ``n`` items are given recognised text, which the run was not trained on."""
    model = provenance.get("model")
    name = model.get("name") if isinstance(model, Mapping) else None
    by = str(provenance.get("transcriber", "a transcriber")) + (f", {name}" if name else "")
    return (f"text: {n} item(s) given no text are given the transcript of their audio instead (speech "
            f"recognition: {by}); the run learned from the texts of its training data (for MELD, human "
            f"transcripts), so recognition errors may shift its predictions")


def transcribe_item(transcriber: Transcriber, item: Item) -> Transcript | None:
    """Give ``item`` the transcript of its `speech_source` as its text.

    No speech, or a file that cannot be decoded, leaves the text missing with a problem line in
    ``item.unmade["text"]``; so does an unexpected failure of the transcriber on this file.

    Returns:
        The transcript (``None`` when the file could not be transcribed).

    Raises:
        MissingExtraError, MemoryError: transcription cannot go on.
        ValueError: the transcriber's model cannot be loaded.
    """
    path = speech_source(item)
    assert path is not None
    return give_transcript(item, lambda: transcriber.transcribe_file(path), path)


def give_transcript(item: Item, transcribe: Callable[[], Transcript], where: str | Path) -> Transcript | None:
    """``transcribe()`` as ``item``'s text (see `transcribe_item`); ``where`` names the audio in problems."""
    try:
        transcript = transcribe()
    except ItemError as err:
        item.unmade["text"] = f"text: not transcribed: {err}"
        return None
    except (MissingExtraError, MemoryError, ValueError):
        raise
    except Exception as err:  # noqa: BLE001 - a library failing on one odd file stays that item's problem
        item.unmade["text"] = f"text: not transcribed: {where}: the transcriber failed ({one_line(err)})"
        return None
    if transcript.text:
        item.text = transcript.text
    else:
        item.unmade["text"] = f"text: no speech recognised in {where}"
    return transcript
