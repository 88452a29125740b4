"""memscore's reference inference server: a real, deterministic language model
behind the wire protocol memscore speaks (see README.md). Does not import Django."""
