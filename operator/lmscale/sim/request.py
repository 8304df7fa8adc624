"""A request as the simulator and the engine model see it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Request:
    """One request of a trace: when it arrives and how many tokens in and out."""

    arrival_s: float
    prompt_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class CompletedRequest:
    """A request the engine finished, with the times that make up its latency."""

    request: Request
    admitted_s: float
    first_token_s: float
    finished_s: float

    @property
    def queue_seconds(self) -> float:
        """Waiting before the engine took it into a batch."""
        return self.admitted_s - self.request.arrival_s

    @property
    def ttft_seconds(self) -> float:
        return self.first_token_s - self.request.arrival_s

    @property
    def e2e_seconds(self) -> float:
        return self.finished_s - self.request.arrival_s

    @property
    def tpot_seconds(self) -> float:
        """Mean time per output token after the first (0 for one-token outputs)."""
        if self.request.output_tokens <= 1:
            return 0.0
        return (self.finished_s - self.first_token_s) / (self.request.output_tokens - 1)
