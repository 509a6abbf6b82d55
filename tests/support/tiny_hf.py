"""Tiny randomly initialised Hugging Face encoders (BERT, RoBERTa, XLM-R, MPNet) with their tokenizers.

Each is saved with ``save_pretrained`` into a folder that transformers loads offline: 3 layers,
hidden size 32, 4 heads, a word-piece vocabulary (BERT, MPNet) or a byte-level BPE without merges
(RoBERTa, XLM-R: one token per byte). Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

FAMILIES = ("bert", "roberta", "xlm-roberta", "mpnet")
LAYERS, HIDDEN = 3, 32
WORDS = ["oh", "my", "god", ",", "he", "'", "s", "lost", "it", "!", "what", "?", "the", "a", "end", "you",
         "know", "yeah", "no", "##s", "joey", ":"]
TEXTS = ["Oh my God, he's lost it!", "What?", "Yeah, you know what the end is", "No!"]


def _sizes() -> dict[str, object]:
    return {"hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": 4,
            "intermediate_size": 37, "initializer_range": 0.2}


def build_tiny_model(family: str, folder: Path, seed: int = 0) -> Path:
    """Save a random ``family`` model and its tokenizer into ``folder`` (created); returns it."""
    import transformers as tf

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if family in ("bert", "mpnet"):
        specials = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] if family == "bert"
                    else ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"])
        vocab = {t: i for i, t in enumerate(specials + WORDS)}
        if family == "bert":
            model = tf.BertModel(tf.BertConfig(vocab_size=len(vocab), max_position_embeddings=64, **_sizes()))
            tokenizer = tf.BertTokenizerFast(vocab=vocab)
        else:
            model = tf.MPNetModel(tf.MPNetConfig(vocab_size=len(vocab), max_position_embeddings=64, **_sizes()))
            with torch.no_grad():  # a bias that matters: leaving it out changes outputs by ~0.1
                model.encoder.relative_attention_bias.weight.normal_(0.0, 1.0)
            tokenizer = tf.MPNetTokenizerFast(vocab=vocab)
    else:
        from tokenizers.pre_tokenizers import ByteLevel

        tokens = ["<s>", "<pad>", "</s>", "<unk>", *sorted(ByteLevel.alphabet()), "<mask>"]
        vocab = {t: i for i, t in enumerate(tokens)}
        config_class, model_class = ((tf.RobertaConfig, tf.RobertaModel) if family == "roberta"
                                     else (tf.XLMRobertaConfig, tf.XLMRobertaModel))
        model = model_class(config_class(vocab_size=len(vocab), max_position_embeddings=96, pad_token_id=1,
                                         bos_token_id=0, eos_token_id=2, **_sizes()))
        tokenizer = tf.RobertaTokenizerFast(vocab=vocab, merges=[])
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def reference_states(folder: Path, texts: list[str] | list[tuple[str, str]]):
    """The model run directly on the padded batch of ``texts``: ``(hidden_states, mask)``.

    ``hidden_states`` holds ``LAYERS + 1`` tensors ``[B, T, HIDDEN]`` (``[-1]`` the last hidden
    state); ``mask`` is ``[B, T]`` bool, True = real token.
    """
    import transformers as tf

    tokenizer = tf.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = tf.AutoModel.from_pretrained(folder, local_files_only=True).eval()
    args = ([a for a, _ in texts], [b for _, b in texts]) if isinstance(texts[0], tuple) else (texts,)
    batch = tokenizer(*args, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    return out.hidden_states, batch["attention_mask"].bool()
