"""The built-in ``perplexity`` evaluator: mean token negative log-likelihood per window."""

from __future__ import annotations

from typing import Any, ClassVar

from invarlock.core.evaluator import Evaluator


class PerplexityEvaluator(Evaluator):
    """Perplexity: each window's mean next-token NLL (tokens 2..seq_len given their prefix).

    The reported value is ``exp`` of the mean over windows, i.e. the perplexity of all
    evaluated tokens (every window predicts the same number of tokens).
    """

    name: ClassVar[str] = "perplexity"
    version: ClassVar[str | None] = "1"
    requires: ClassVar[tuple[str, ...]] = ("torch",)

    def window_losses(self, model: Any, input_ids: Any) -> Any:
        import torch
        import torch.nn.functional as F

        logits = model(input_ids=input_ids, use_cache=False).logits
        # Score every position against the next token; the last position has none and is
        # ignored. Slicing the logits instead would copy them (batch x seq_len x vocab).
        targets = torch.full_like(input_ids, -100)
        targets[:, :-1] = input_ids[:, 1:]
        nll = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="none"
        )
        return nll.view(input_ids.shape)[:, :-1].mean(dim=1)
