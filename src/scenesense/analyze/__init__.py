"""Recordings of any length to a timeline of emotions: ``scenesense analyze MEDIA --run RUN``.

`analyze_media` streams a recording (a call, an interview, a film scene) through a trained
run: it finds the speech segments (Silero VAD; or the transcription's own segments; or fixed
windows), gives each segment the run's modalities (the segment's audio, its transcript when the
run reads text, the faces in its frames when it reads vision), classifies it, and writes, in the
output folder:

- ``timeline.csv``: one row per segment (start, end, label, one probability per class,
  transcript, modalities used and missing);
- ``timeline.json``: the same segments, with the run, the media, the class names, how the
  segments were made (provenance) and the seconds spent per stage;
- ``emotions.png``: the class probabilities over time;
- ``index.html``: a self-contained page with the recording's player beside a clickable timeline.

Memory stays that of one batch of segments, whatever the length of the recording. A run with
past-only dialogue context reads the segments as one conversation, each segment predicted from
it and the segments before it.

Modules, top-down: `scenesense.analyze.pipeline` (`analyze_media`),
`scenesense.analyze.segments` (segmenters, transcripts of segments),
`scenesense.analyze.frames` (a segment's video frames), `scenesense.analyze.predictor`
(segments through the run), `scenesense.analyze.timeline` (result types, CSV and JSON),
`scenesense.analyze.plot` and `scenesense.analyze.page`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scenesense.utils.lazy import lazy_exports

if TYPE_CHECKING:  # for static tools; at run time each name loads on first use (see _LAZY)
    from scenesense.analyze.options import DEFAULT_MAX_SEGMENT_S as DEFAULT_MAX_SEGMENT_S
    from scenesense.analyze.options import SEGMENTERS as SEGMENTERS
    from scenesense.analyze.options import TRANSCRIBE_MODES as TRANSCRIBE_MODES
    from scenesense.analyze.pipeline import OUTPUT_FILES as OUTPUT_FILES
    from scenesense.analyze.pipeline import STAGES as STAGES
    from scenesense.analyze.pipeline import analyze_media as analyze_media
    from scenesense.analyze.pipeline import check_segmenter as check_segmenter
    from scenesense.analyze.pipeline import default_output_dir as default_output_dir
    from scenesense.analyze.segments import FixedSegmenter as FixedSegmenter
    from scenesense.analyze.timeline import Analysis as Analysis
    from scenesense.analyze.timeline import SegmentPrediction as SegmentPrediction
    from scenesense.analyze.timeline import label_colors as label_colors

_LAZY = {
    "DEFAULT_MAX_SEGMENT_S": "scenesense.analyze.options",
    "OUTPUT_FILES": "scenesense.analyze.pipeline",
    "STAGES": "scenesense.analyze.pipeline",
    "TRANSCRIBE_MODES": "scenesense.analyze.options",
    "analyze_media": "scenesense.analyze.pipeline",
    "check_segmenter": "scenesense.analyze.pipeline",
    "default_output_dir": "scenesense.analyze.pipeline",
    "SEGMENTERS": "scenesense.analyze.options",
    "FixedSegmenter": "scenesense.analyze.segments",
    "Analysis": "scenesense.analyze.timeline",
    "SegmentPrediction": "scenesense.analyze.timeline",
    "label_colors": "scenesense.analyze.timeline",
}

__all__ = [
    "DEFAULT_MAX_SEGMENT_S",
    "OUTPUT_FILES",
    "SEGMENTERS",
    "STAGES",
    "TRANSCRIBE_MODES",
    "Analysis",
    "FixedSegmenter",
    "SegmentPrediction",
    "analyze_media",
    "check_segmenter",
    "default_output_dir",
    "label_colors",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
