"""Training-step benchmark of Hugging Face GPT2LMHeadModel or BertForMaskedLM
on the CPU (peer of bench_train_lm.c, run by bench_train_cpu.sh).

    python bench_train_torch.py [model=gpt2|bert] [key=value ...]
      steps=20 warmup=3 threads=2 seed=1234 batch=8 block=128
      gpt2: n_layer=4 n_head=4 n_embd=256 vocab_size=8192 n_positions=128 dropout=0.1
      bert: num_hidden_layers=4 num_attention_heads=4 hidden_size=256 intermediate_size=1024
            vocab_size=8192 max_position_embeddings=128 hidden_dropout_prob=0.1
            attention_probs_dropout_prob=0.1

Same shapes and the same step as the Hugging Face Trainer runs it:
model.zero_grad(), forward with the batch (GPT-2: labels = input_ids, the
model shifts them; BERT: the batch of DataCollatorForLanguageModeling with
15 % masking, built before the timed steps as the Trainer's data loader
does), backward, clip_grad_norm_(1.0), AdamW with the Trainer's parameter
groups (no decay on biases and LayerNorm weights) and its default
implementation for this torch (fused on torch >= 2.8).  Prints one JSON
line: median step time, tokens/s, peak RSS, and the BLAS / attention
implementation in use.
"""
import json
import resource
import statistics
import sys
import time

import torch
from torch import nn


COMMON = dict(steps=20, warmup=3, threads=2, seed=1234, batch=8, block=128)
SHAPES = {
    "gpt2": dict(n_layer=4, n_head=4, n_embd=256, vocab_size=8192, n_positions=128, dropout=0.1),
    "bert": dict(num_hidden_layers=4, num_attention_heads=4, hidden_size=256, intermediate_size=1024,
                 vocab_size=8192, max_position_embeddings=128, hidden_dropout_prob=0.1,
                 attention_probs_dropout_prob=0.1),
}
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4, as bench_train_lm.c assumes


def parse_args(argv):
    model = next((a.partition("=")[2] for a in argv if a.startswith("model=")), "gpt2")
    if model not in SHAPES:
        sys.exit(f"bench_train_torch.py: model '{model}' is unknown: use gpt2 or bert")
    s = dict(COMMON, **SHAPES[model])
    for arg in argv:
        key, _, value = arg.partition("=")
        if key == "model":
            continue
        if key not in s or not value:
            sys.exit(f"usage: bench_train_torch.py [model=gpt2|bert] [{' '.join(k + '=N' for k in s)}]")
        s[key] = type(s[key])(value)
    s["model"] = model
    return s


def trainer_param_groups(model, weight_decay):
    """The Trainer's split: decay everything but biases and LayerNorm weights."""
    from transformers.trainer_pt_utils import get_parameter_names

    patterns = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]
    decay = set(get_parameter_names(model, [nn.LayerNorm], patterns))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in named if n in decay], "weight_decay": weight_decay},
        {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
    ]


def blas_description():
    config = torch.__config__.show()
    blas = next((line.split("BLAS_INFO=")[1].split(",")[0] for line in config.splitlines() if "BLAS_INFO=" in line),
                "unknown")
    mkl = next((line.strip(" -") for line in config.splitlines() if "Math Kernel Library" in line), "")
    dnn = next((line.strip(" -") for line in config.splitlines() if "MKL-DNN" in line), "")
    return f"torch {torch.__version__}: BLAS_INFO={blas}; {mkl}; {dnn}; CPU capability {torch.backends.cpu.get_cpu_capability()}"


def gpt2_model_and_batches(s, generator, total):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=s["vocab_size"], n_positions=s["n_positions"], n_embd=s["n_embd"],
                        n_layer=s["n_layer"], n_head=s["n_head"], embd_pdrop=s["dropout"],
                        attn_pdrop=s["dropout"], resid_pdrop=s["dropout"],
                        bos_token_id=s["vocab_size"] - 1, eos_token_id=s["vocab_size"] - 1)
    batches = []
    for _ in range(total):
        ids = torch.randint(0, s["vocab_size"], (s["batch"], s["block"]), generator=generator)
        batches.append({"input_ids": ids, "labels": ids})
    return GPT2LMHeadModel(config), batches


def masked_lm_collator(vocab_size, seed):
    """DataCollatorForLanguageModeling(mlm_probability=0.15) over a word-level
    tokenizer of vocab_size entries, the five BERT specials first."""
    from tokenizers import Tokenizer, models
    from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(BERT_SPECIALS)}
    vocab.update({f"w{i}": i for i in range(len(BERT_SPECIALS), vocab_size)})
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")),
                                        pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                        sep_token="[SEP]", mask_token="[MASK]")
    kwargs = {"seed": seed} if "seed" in DataCollatorForLanguageModeling.__dataclass_fields__ else {}
    return DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, **kwargs)


def bert_model_and_batches(s, generator, total):
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(vocab_size=s["vocab_size"], hidden_size=s["hidden_size"],
                        num_hidden_layers=s["num_hidden_layers"], num_attention_heads=s["num_attention_heads"],
                        intermediate_size=s["intermediate_size"],
                        max_position_embeddings=s["max_position_embeddings"],
                        hidden_dropout_prob=s["hidden_dropout_prob"],
                        attention_probs_dropout_prob=s["attention_probs_dropout_prob"])
    collator = masked_lm_collator(s["vocab_size"], s["seed"])
    batches = []
    for _ in range(total):
        # Ordinary tokens only (no special), so 15 % of every block is selected.
        ids = torch.randint(len(BERT_SPECIALS), s["vocab_size"], (s["batch"], s["block"]), generator=generator)
        batches.append(dict(collator([{"input_ids": row} for row in ids])))
    return BertForMaskedLM(config), batches


def main():
    s = parse_args(sys.argv[1:])
    torch.set_num_threads(s["threads"])
    torch.manual_seed(s["seed"])
    from transformers import TrainingArguments

    B, T, total = s["batch"], s["block"], s["warmup"] + s["steps"]
    generator = torch.Generator().manual_seed(s["seed"])
    build = gpt2_model_and_batches if s["model"] == "gpt2" else bert_model_and_batches
    model, batches = build(s, generator, total)
    model.train()
    # The Trainer's default optimizer for this torch/transformers pair.
    default_optim = TrainingArguments.__dataclass_fields__["optim"].default
    fused = str(getattr(default_optim, "value", default_optim)) == "adamw_torch_fused"
    optimizer = torch.optim.AdamW(trainer_param_groups(model, 0.01), lr=2e-5, betas=(0.9, 0.999), eps=1e-8,
                                  fused=fused)

    times, losses, scored = [], [], 0
    for step in range(total):
        batch = batches[step]
        if step >= s["warmup"]:
            scored += int((batch["labels"] != -100).sum()) if s["model"] == "bert" else B * (T - 1)
        start = time.perf_counter()
        model.zero_grad()  # the Trainer's call (set_to_none=True)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        times.append(time.perf_counter() - start)
        losses.append(loss.item())
    median = statistics.median(times[s["warmup"]:])
    print(json.dumps({
        "impl": "pytorch", "model": s["model"], "median_step_s": round(median, 6),
        "tokens_per_s": round(B * T / median, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "steps": s["steps"], "threads": torch.get_num_threads(),
        "n_params": sum(p.numel() for p in model.parameters()),
        "scored_per_step": scored / s["steps"],
        "first_loss": round(losses[0], 6), "last_loss": round(losses[-1], 6),
        "attn_implementation": model.config._attn_implementation,
        "optimizer": "AdamW(fused=True)" if fused else "AdamW(foreach)",
        "blas": blas_description(),
    }))


if __name__ == "__main__":
    main()
