"""Predict emotions from raw inputs with a trained run: texts, audio files, video files, manifests.

Each item is one utterance: a transcript (``text``), an ``audio`` file and/or a ``video`` file
(``media``: a video whose sound is the utterance's audio, as in extraction manifests).
For every modality the run uses, the extractor that made its training features is rebuilt from
the feature provenance recorded in the run's model spec (``extractor`` + ``params``, read through
``EXTRACTORS``), so raw inputs are featurised exactly as the training data was. Routing by input
kind: a text feeds text extractors, an audio file feeds audio extractors, and a video (or
media) file feeds video (vision) extractors and, when the item has no separate audio file,
audio extractors too (they read its audio track).

A modality whose training features cannot be made from raw media (e.g. a feature set converted
from a table or a published pickle) is treated as missing for every item, with a warning; so is a
modality an item does not provide, or whose extraction failed (the
`scenesense.extraction.base.ItemError` message is kept). The model predicts from what
is present, as it does for missing modalities in a store (runs trained with modality dropout
are made for this). An item with no usable modality gets an error row; the other items are
unaffected: a failure of an extractor on one item, expected or not, stays that item's problem.
A run with dialogue context classifies these items each alone, with a warning;
`scenesense.streaming` predicts whole conversations with their (past) context.

Speech becomes text (``transcribe="auto"``, the default): for a run that reads text, an item
that gives audio, video or media but no text is transcribed
(`scenesense.predict.transcripts`; Whisper tiny.en with speech detection unless another
`scenesense.extraction.transcribe.Transcriber` is given), and the transcript is its text; the
item's prediction carries the `scenesense.extraction.transcribe.Transcript` and the result the
transcriber's provenance. A warning says that the run learned from other texts (MELD's human
transcripts). ``transcribe="never"`` leaves such an item's text missing.

Long media are predicted in windows, in bounded memory. An item whose audio (file, or a video's
track) lasts more than twice ``window_s`` (`DEFAULT_WINDOW_S`, 4 s: the length of the
acted clips runs are trained on, RAVDESS 3.1-5.0 s) is streamed from disk window by window
(`scenesense.extraction.audio_io.audio_windows`); each window is featurised by the run's
audio extractor and classified alone, and the item gets a ``timeline`` (one
`WindowPrediction` per window) and an overall prediction: the mean of the windows'
probabilities (of their values for regression). Windows carry audio only: the item's text and
video frames are not aligned with them and are left out (a problem line says so); an item to be
transcribed gets each window's own transcript as the window's text (and is cut into windows for
runs that read only text, too). Every
sequence the model is given has at most
`scenesense.encoders.base.MAX_SEQUENCE_STEPS` steps; a longer one is that item's problem.

Modules, top-down: `scenesense.predict.predictor` (`predict`; `Predictor` keeps a run loaded
for many calls),
`scenesense.predict.inputs` (routing, item mappings, manifests),
`scenesense.predict.plan` (the feature plan per modality), `scenesense.predict.model`
(extraction and the model pass), `scenesense.predict.transcripts` (speech as text),
`scenesense.predict.windows` (long media in windows) and `scenesense.predict.output` (result
types and the CSV writer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scenesense.utils.lazy import lazy_exports

if TYPE_CHECKING:  # for static tools; at run time each name loads on first use (see _LAZY)
    from scenesense.predict.inputs import AUDIO_SUFFIXES as AUDIO_SUFFIXES
    from scenesense.predict.inputs import INPUT_KINDS as INPUT_KINDS
    from scenesense.predict.inputs import VIDEO_SUFFIXES as VIDEO_SUFFIXES
    from scenesense.predict.inputs import InputItem as InputItem
    from scenesense.predict.inputs import read_manifest as read_manifest
    from scenesense.predict.inputs import route_input as route_input
    from scenesense.predict.model import MIN_SPEAKER_ITEMS as MIN_SPEAKER_ITEMS
    from scenesense.predict.options import DEFAULT_WINDOW_S as DEFAULT_WINDOW_S
    from scenesense.predict.options import TRANSCRIBE_MODES as TRANSCRIBE_MODES
    from scenesense.predict.options import clock as clock
    from scenesense.predict.output import ItemPrediction as ItemPrediction
    from scenesense.predict.output import PredictionResult as PredictionResult
    from scenesense.predict.output import WindowPrediction as WindowPrediction
    from scenesense.predict.output import write_predictions as write_predictions
    from scenesense.predict.plan import ModalityPlan as ModalityPlan
    from scenesense.predict.plan import feature_provenance as feature_provenance
    from scenesense.predict.plan import plan_modality as plan_modality
    from scenesense.predict.plan import recorded_output as recorded_output
    from scenesense.predict.predictor import NO_CONTEXT_WARNING as NO_CONTEXT_WARNING
    from scenesense.predict.predictor import Predictor as Predictor
    from scenesense.predict.predictor import predict as predict
    from scenesense.predict.transcripts import default_transcriber as default_transcriber

_LAZY = {
    "AUDIO_SUFFIXES": "scenesense.predict.inputs",
    "INPUT_KINDS": "scenesense.predict.inputs",
    "VIDEO_SUFFIXES": "scenesense.predict.inputs",
    "InputItem": "scenesense.predict.inputs",
    "read_manifest": "scenesense.predict.inputs",
    "route_input": "scenesense.predict.inputs",
    "MIN_SPEAKER_ITEMS": "scenesense.predict.model",
    "ItemPrediction": "scenesense.predict.output",
    "PredictionResult": "scenesense.predict.output",
    "WindowPrediction": "scenesense.predict.output",
    "write_predictions": "scenesense.predict.output",
    "ModalityPlan": "scenesense.predict.plan",
    "feature_provenance": "scenesense.predict.plan",
    "plan_modality": "scenesense.predict.plan",
    "recorded_output": "scenesense.predict.plan",
    "NO_CONTEXT_WARNING": "scenesense.predict.predictor",
    "Predictor": "scenesense.predict.predictor",
    "predict": "scenesense.predict.predictor",
    "TRANSCRIBE_MODES": "scenesense.predict.options",
    "default_transcriber": "scenesense.predict.transcripts",
    "DEFAULT_WINDOW_S": "scenesense.predict.options",
    "clock": "scenesense.predict.options",
}

__all__ = [
    "AUDIO_SUFFIXES",
    "DEFAULT_WINDOW_S",
    "INPUT_KINDS",
    "MIN_SPEAKER_ITEMS",
    "NO_CONTEXT_WARNING",
    "TRANSCRIBE_MODES",
    "VIDEO_SUFFIXES",
    "InputItem",
    "ItemPrediction",
    "ModalityPlan",
    "PredictionResult",
    "Predictor",
    "WindowPrediction",
    "clock",
    "default_transcriber",
    "feature_provenance",
    "plan_modality",
    "predict",
    "read_manifest",
    "recorded_output",
    "route_input",
    "write_predictions",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
