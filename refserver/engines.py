"""The two engines behind the same routes: ``ngram`` (the default, numpy only) and
``transformer`` (SmolLM2-135M-Instruct with torch; see ``transformer/``). An engine
gives the tokenizer, the model served at start-up (``restore``) and after each
training job (``train``), and its counters for ``/metrics``. torch is imported only
when the transformer engine is chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .model import LanguageModel, ModelBuilder

if TYPE_CHECKING:
    from .config import ServerConfig
    from .training import Job


class Engine(Protocol):
    name: str
    tokenizer: Any
    fingerprint: str
    max_model_len: int | None  # the longest prompt the model takes, if it has a limit
    train_context_tokens: int | None  # samples cut from the left to this many tokens, if any

    def restore(self, succeeded: list[Job]) -> Any: ...

    def train(self, job: Job, succeeded: list[Job]) -> Any: ...

    def metrics(self) -> dict[str, Any]: ...


class NgramEngine:
    """The trained model is the corpus plus every succeeded job's samples, in order."""

    name = "ngram"
    max_model_len = None
    train_context_tokens = None

    def __init__(self) -> None:
        self.builder = ModelBuilder()
        self.tokenizer = self.builder.tokenizer
        self.fingerprint = self.tokenizer.fingerprint

    def restore(self, succeeded: list[Job]) -> LanguageModel:
        return self.builder.build([s for job in succeeded for s in job.samples])

    def train(self, job: Job, succeeded: list[Job]) -> LanguageModel:
        return self.restore([*succeeded, job])

    def metrics(self) -> dict[str, Any]:
        return {}


class EngineUnavailable(Exception):
    """The chosen engine cannot run here (its optional dependencies are missing)."""


def make_engine(config: ServerConfig) -> Engine:
    if config.engine == "transformer":
        try:
            # Not a cycle: torch and transformers load only when this engine is chosen.
            from .transformer.engine import TransformerEngine
        except ImportError as e:
            raise EngineUnavailable(
                f"--engine transformer needs the optional dependencies: make install-model "
                f"(requirements-model.txt); {e}"
            ) from e
        return TransformerEngine(config)
    return NgramEngine()
