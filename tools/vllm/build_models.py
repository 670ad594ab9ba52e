"""Builds the small random Llama models that the real-vLLM demo and tests serve, offline.

No weights can be downloaded, so each model is a randomly initialised Llama saved by
``transformers``, with a byte-level BPE tokenizer trained by ``tokenizers`` on generated text and a
chat template in ``tokenizer_config.json``: enough for vLLM to load it and serve completions and
chat. ``canary-equal`` has the stable model's size (as fast); ``canary-slow`` is deeper and wider,
so it is genuinely slower per token, a worse new version without any injected fault.

    python tools/vllm/build_models.py .cache/models      # skips the models already built
"""

from __future__ import annotations

import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

VOCABULARY = 2048
MAX_MODEL_LEN = 2048
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<s>", "</s>", "<unk>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]


@dataclass(frozen=True)
class ModelShape:
    layers: int
    hidden: int
    intermediate: int
    heads: int
    seed: int


MODELS = {
    "stable": ModelShape(layers=2, hidden=128, intermediate=256, heads=4, seed=1),
    "canary-equal": ModelShape(layers=2, hidden=128, intermediate=256, heads=4, seed=2),
    "canary-slow": ModelShape(layers=16, hidden=1024, intermediate=4096, heads=16, seed=3),
}


def corpus(seed: int, lines: int = 4000) -> list[str]:
    """Made-up text from a fixed syllable set: what the tokenizer learns its merges from."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 3))) for _ in range(3000)]
    words += ["word", "hello", "the", "a", "prompt", "model", "answer", "question"]
    return [" ".join(rng.choices(words, k=rng.randint(3, 30))) for _ in range(lines)]


def build_tokenizer(directory: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCABULARY,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus(seed=0), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=MAX_MODEL_LEN,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(directory)


def build_model(directory: Path, shape: ModelShape, tokenizer_dir: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(shape.seed)
    config = LlamaConfig(
        vocab_size=VOCABULARY,
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.heads,
        max_position_embeddings=MAX_MODEL_LEN,
        bos_token_id=0,
        eos_token_id=1,
        torch_dtype="bfloat16",
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(directory, safe_serialization=True)
    for path in tokenizer_dir.glob("*.j*"):  # tokenizer.json, its config, the chat template
        shutil.copy(path, directory / path.name)


def main() -> None:
    root = Path(sys.argv[1])
    missing = [name for name in MODELS if not (root / name / ".built").exists()]
    if not missing:
        print(f"[vllm] models cached in {root}", file=sys.stderr)
        return
    started = time.monotonic()
    tokenizer_dir = root / "tokenizer"
    if not (tokenizer_dir / ".built").exists():
        shutil.rmtree(tokenizer_dir, ignore_errors=True)
        build_tokenizer(tokenizer_dir)
        (tokenizer_dir / ".built").touch()
    for name in missing:
        directory = root / name
        shutil.rmtree(directory, ignore_errors=True)
        build_model(directory, MODELS[name], tokenizer_dir)
        (directory / ".built").touch()
    elapsed = time.monotonic() - started
    print(f"[vllm] built {', '.join(missing)} in {root} in {elapsed:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
