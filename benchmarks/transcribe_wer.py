"""Word error rate and speed of the ``whisper`` transcriber on sentences spoken by espeak-ng.

Twenty fixed English sentences (short conversational lines, as in MELD) are synthesised with
espeak-ng (``--voice``, ``--speed`` words per minute), transcribed one by one by
:class:`~scenesense.extraction.transcribe.WhisperTranscriber` (default: the shipped Whisper
tiny.en, int8), and scored with :func:`~scenesense.extraction.transcribe.word_error_rate`
(word-level edit distance over the reference words, lower case, no punctuation). Printed: each
sentence's errors, the corpus WER (all errors over all reference words), the model load time and
the real-time factor (transcription seconds over audio seconds; below 1 is faster than real time).
Set the threads with ``OMP_NUM_THREADS`` (the transcriber's ``cpu_threads`` is left at 0, which
follows it)::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/transcribe_wer.py
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/transcribe_wer.py --model-path path/to/whisper-ct2 --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scenesense.extraction.audio_io import load_audio
from scenesense.extraction.transcribe import SAMPLE_RATE, WhisperTranscriber, word_error_rate

SENTENCES = [
    "I can't believe you did that.",
    "Okay, see you tomorrow.",
    "That is wonderful news.",
    "Leave me alone.",
    "Where did you put the keys?",
    "We lost everything.",
    "Why are you always late for dinner?",
    "I am so happy for both of you.",
    "Please close the door when you leave.",
    "He said he would call me back tonight.",
    "This is the worst day of my life.",
    "Could you pass me the salt, please?",
    "The train leaves at seven in the morning.",
    "I told you not to touch my things.",
    "Thank you so much for the lovely flowers.",
    "She moved to a new apartment last week.",
    "Are you sure this is a good idea?",
    "My brother bought a red car yesterday.",
    "We should go to the beach this weekend.",
    "I really need a cup of coffee right now.",
]


def synthesise(text: str, path: Path, voice: str, speed: int) -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True,
                   capture_output=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", help="a local CTranslate2 Whisper folder (default: shipped tiny.en)")
    parser.add_argument("--compute-type", default="int8", help="CTranslate2 compute type (%(default)s)")
    parser.add_argument("--beam-size", type=int, default=1, help="decoder beams (%(default)s)")
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice (%(default)s)")
    parser.add_argument("--speed", type=int, default=150, help="espeak-ng words per minute (%(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is not installed (e.g. apt-get install espeak-ng)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="transcribe-wer-") as folder:
        audio = [load_audio(synthesise(s, Path(folder) / f"{i}.wav", args.voice, args.speed), SAMPLE_RATE)
                 for i, s in enumerate(SENTENCES)]
    transcriber = WhisperTranscriber(args.model_path, compute_type=args.compute_type,
                                     beam_size=args.beam_size)
    start = time.perf_counter()
    transcriber.transcribe(audio[0][:SAMPLE_RATE])  # loads the model
    load_s = time.perf_counter() - start
    rows, errors, words, busy = [], 0.0, 0, 0.0
    for reference, samples in zip(SENTENCES, audio):
        start = time.perf_counter()
        text = transcriber.transcribe(samples).text
        busy += time.perf_counter() - start
        n = len(reference.split())
        wer = word_error_rate(reference, text)
        errors, words = errors + wer * n, words + n
        rows.append({"reference": reference, "hypothesis": text, "wer": wer})
    seconds = sum(a.size for a in audio) / SAMPLE_RATE
    summary = {"sentences": len(SENTENCES), "words": words, "wer": errors / words, "audio_s": seconds,
               "transcribe_s": busy, "rtf": busy / seconds, "load_s": load_s,
               "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "(unset)"),
               "voice": args.voice, "speed": args.speed, "model": transcriber.provenance()["model"]}
    if args.json:
        print(json.dumps({**summary, "items": rows}, indent=2))
        return 0
    for row in rows:
        print(f"{row['wer']:5.2f}  {row['reference']!r} -> {row['hypothesis']!r}")
    print(f"\nWER {summary['wer']:.3f} ({words} reference words, {len(SENTENCES)} sentences); "
          f"RTF {summary['rtf']:.3f} ({busy:.1f} s for {seconds:.1f} s of audio); model load {load_s:.2f} s; "
          f"OMP_NUM_THREADS={summary['omp_num_threads']}; model {summary['model']['name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
