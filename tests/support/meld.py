"""Tiny MELD CSVs: the header, fixture rows, and their bytes in the clean, C1 and mojibake spellings."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

MELD_HEADER = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
               "Season", "Episode", "StartTime", "EndTime"]

# (Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID, Season, Episode, Start, End)
# in the current (clean UTF-8) spelling. Dialogue 1 has an Utterance_ID gap (0, 1, 4); dialogue 3
# starts at 2; Sr No. repeats (it is not a key); texts hold commas, quotes and smart punctuation.
MELD_ROWS: list[tuple[object, ...]] = [
    (1, "also I was the point person on my company’s transition from the KL-5 to GR-6 system.",
     "Chandler", "neutral", "neutral", 0, 0, 8, 21, "00:16:16,059", "00:16:21,731"),
    (2, "You must’ve had your hands full.", "The Interviewer", "neutral", "neutral", 0, 1, 8, 21,
     "00:16:21,940", "00:16:23,442"),
    (3, "Oh my God, he’s lost it… He’s totally lost it!", "Phoebe", "sadness", "negative", 1, 0, 4, 7,
     "0:03:24,234", "0:03:26,654"),
    (4, "What?", "Monica", "surprise", "negative", 1, 1, 4, 7, "0:03:26,700", "0:03:27,100"),
    (5, "Emma!  See? “Good” — that’s it.", "Richard’s Date", "joy", "positive", 1, 4, 4, 7,
     "0:03:27,200", "0:03:29,000"),
    (5, 'He said "no", then left.', "Ross", "anger", "negative", 3, 2, 2, 3, "00:10:00,000", "00:10:02,500"),
    (6, "Ugh.", "Ross", "disgust", "negative", 3, 3, 2, 3, "00:10:03,000", "00:10:03,400"),
    (7, "I’m scared – really.", "Joey", "fear", "negative", 3, 5, 2, 3, "00:10:04,000", "00:10:06,000"),
]

_CP1252_PUNCT = "’‘“”…—–"


def _to_c1(text: str) -> str:
    """Pre-2020 variant: cp1252 punctuation stored as the C1 code point of its cp1252 byte."""
    return "".join(chr(ch.encode("cp1252")[0]) if ch in _CP1252_PUNCT else ch for ch in text)


def _to_mojibake(text: str) -> str:
    """A UTF-8 string misread as cp1252 (``’`` becomes ``â€™``; bytes cp1252 lacks stay as latin-1)."""
    return "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in text.encode("utf-8"))


def render_meld_csv(rows: Sequence[Sequence[object]], *, header: Sequence[str] = MELD_HEADER,
                    variant: str = "clean", bom: bool = False) -> bytes:
    """Bytes of a MELD CSV: ``clean`` (UTF-8, CRLF), ``c1`` (C1 controls + NBSP, LF) or ``mojibake``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n" if variant == "c1" else "\r\n")
    writer.writerow(header)
    for row in rows:
        cells = [str(v) for v in row]
        if variant == "c1":
            cells = [_to_c1(c).replace("  ", "\xa0 ") for c in cells]
        elif variant == "mojibake":
            cells = [_to_mojibake(c) for c in cells]
        writer.writerow(cells)
    return (("\ufeff" if bom else "") + buffer.getvalue()).encode("utf-8")


def write_word_vector_meld(root: Path, lines: Sequence[tuple[str, str]], vectors: str) -> dict[str, object]:
    """``train`` and ``dev`` MELD CSVs of ``lines`` ((utterance, emotion), one dialogue each, spoken by
    Ross) and a GloVe-format ``vectors.txt`` in ``root``; returns the ``data`` config of a ``meld`` run
    featurised by the ``word_vectors`` extractor (no ``cache_dir``)."""
    for split in ("train", "dev"):
        with (root / f"{split}_sent_emo.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(MELD_HEADER)
            for i, (text, emotion) in enumerate(lines):
                writer.writerow([i + 1, text, "Ross", emotion, "neutral", i, 0, 1, 1, "0:00:01,000", "0:00:02,000"])
    (root / "vectors.txt").write_text(vectors, encoding="utf-8")
    return {"dataset": "meld", "root": str(root),
            "params": {"extractor": "word_vectors", "model_path": str(root / "vectors.txt")}}
