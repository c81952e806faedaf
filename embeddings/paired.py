"""Two encoders as one: each text's two vectors side by side, so one inner product adds the cosines.

A document row is [primary | secondary], a question row is [primary | w · secondary], so FAISS
and the sentence rescoring compute cos₁ + w · cos₂ without knowing there are two models, and an
index records the pair as one model (its fingerprint covers both). Rows are not rescaled to unit
length (documents have norm √2): with w = 0 the scores are exactly the primary model's, on the
scale the fusion settings were tuned for. The
weight w depends on the question: the second model (USE) lifted XQuAD en→ar recall@1 by about
five points but did nothing or harm for Arabic questions, so an Arabic question gets w = 0 and
skips the second model's encoding time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from embeddings.encoder import TextEncoder
from qa.textnorm import has_arabic


class PairedEncoder:
    def __init__(
        self,
        primary: TextEncoder,
        secondary: TextEncoder,
        *,
        cross_lingual_weight: float = 0.15,
        arabic_weight: float = 0.0,
    ) -> None:
        self.primary = primary
        self.secondary = secondary
        self.cross_lingual_weight = cross_lingual_weight
        self.arabic_weight = arabic_weight
        self.name = f"{primary.name}+{secondary.name}"
        self.dimension = primary.dimension + secondary.dimension
        both = f"{primary.fingerprint}+{secondary.fingerprint}".encode()
        self.fingerprint = hashlib.sha256(both).hexdigest()[:16]
        self.precision = f"{primary.precision}+{secondary.precision}"
        self.directory = None  # two models
        self.inner = (primary, secondary)

    def count_tokens(self, text: str) -> int:
        """In the primary model's tokens: chunks are as without a second model."""
        return self.primary.count_tokens(text)

    def info(self) -> dict:
        return {"name": self.name, "dimension": self.dimension, "parts": [e.info() for e in self.inner]}

    def close(self) -> None:
        """Nothing of its own: the two encoders stay open for whoever made them."""

    def encode_documents(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        first = self.primary.encode_documents(texts, show_progress=show_progress)
        second = self.secondary.encode_documents(texts, show_progress=show_progress)
        return np.hstack([first, second])

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        weights = np.array(
            [self.arabic_weight if has_arabic(t) else self.cross_lingual_weight for t in texts],
            dtype=np.float32,
        )
        first = self.primary.encode_queries(texts)
        second = np.zeros((len(texts), self.secondary.dimension), dtype=np.float32)
        needed = [i for i, w in enumerate(weights) if w]
        if needed:
            second[needed] = self.secondary.encode_queries([texts[i] for i in needed])
        return np.hstack([first, second * weights[:, None]])
