"""Build a Hugging Face `tokenizer.json` equal to the packed model's SentencePiece tokenizer.

The packed file carries a Unigram vocabulary with scores and a per-codepoint normalization
map. The map is compiled into SentencePiece's "precompiled charsmap" by SentencePiece's own
trainer (a double-array trie we would otherwise have to write by hand), and `tokenizers`
applies it through its `Precompiled` normalizer, as for every XLM-R style model.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from embeddings.errors import ModelError
from embeddings.packed import PackedVocab

METASPACE = "\u2581"
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def _protobuf_fields(data: bytes) -> Iterator[tuple[int, object]]:
    """Walk the top-level fields of a protobuf message (enough to read one bytes field)."""

    def varint(pos: int) -> tuple[int, int]:
        shift = value = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value, pos

    pos = 0
    while pos < len(data):
        key, pos = varint(pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = varint(pos)
        elif wire_type == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire_type == 2:
            length, pos = varint(pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire_type == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ModelError(f"unexpected protobuf wire type {wire_type}")
        yield field, value


def compile_charsmap(normalization: dict[int, str]) -> bytes:
    """Compile a codepoint → text map into SentencePiece's precompiled charsmap bytes."""
    try:
        import sentencepiece
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModelError("building the model needs sentencepiece: pip install sentencepiece") from exc

    rules = "".join(
        f"{codepoint:X}\t{' '.join(f'{ord(ch):X}' for ch in replacement)}\n"
        for codepoint, replacement in sorted(normalization.items())
    )
    with tempfile.TemporaryDirectory() as tmp:
        rules_path = Path(tmp) / "rules.tsv"
        rules_path.write_text(rules, encoding="utf-8")
        proto = io.BytesIO()
        # A throwaway char model: only its normalizer spec (the compiled rules) is kept.
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(["abc def", "ghi"]),
            model_writer=proto,
            vocab_size=12,
            model_type="char",
            normalization_rule_tsv=str(rules_path),
            minloglevel=2,
        )
    normalizer_spec = next(v for f, v in _protobuf_fields(proto.getvalue()) if f == 3)
    return next(v for f, v in _protobuf_fields(normalizer_spec) if f == 2)  # type: ignore[arg-type]


def build_tokenizer(vocab: PackedVocab, normalization: dict[int, str]) -> Tokenizer:
    """An XLM-R style Unigram tokenizer: charsmap, space folding, metaspace, `<s> $A </s>`."""
    tokenizer = Tokenizer(
        models.Unigram(
            list(zip(vocab.pieces, vocab.scores, strict=True)), unk_id=vocab.unk_id, byte_fallback=False
        )
    )
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(compile_charsmap(normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=METASPACE, prepend_scheme="always", split=True
    )
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = vocab.pieces[vocab.bos_id], vocab.pieces[vocab.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos_id), (eos, vocab.eos_id)],
    )
    tokenizer.add_special_tokens(
        [AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS]
    )
    return tokenizer
