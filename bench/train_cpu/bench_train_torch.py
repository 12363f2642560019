"""Training-step benchmark of Hugging Face GPT2LMHeadModel on the CPU (peer of
bench_train_gpt2.c, run by bench_train_cpu.sh).

    python bench_train_torch.py [key=value ...]
      steps=20 warmup=3 threads=2 seed=1234 batch=8 block=128
      n_layer=4 n_head=4 n_embd=256 vocab_size=8192 n_positions=128 dropout=0.1

Same shapes and the same step as the Hugging Face Trainer runs it:
model.zero_grad(), forward with labels (the model shifts them), backward,
clip_grad_norm_(1.0), AdamW with the Trainer's parameter groups (no decay on
biases and LayerNorm weights) and its default implementation for this torch
(fused on torch >= 2.8).  Prints one JSON line: median step time, tokens/s,
peak RSS, and the BLAS / attention implementation in use.
"""
import json
import resource
import statistics
import sys
import time

import torch
from torch import nn


def parse_args(argv):
    s = dict(steps=20, warmup=3, threads=2, seed=1234, batch=8, block=128, n_layer=4, n_head=4, n_embd=256,
             vocab_size=8192, n_positions=128, dropout=0.1)
    for arg in argv:
        key, _, value = arg.partition("=")
        if key not in s or not value:
            sys.exit(f"usage: bench_train_torch.py [{' '.join(k + '=N' for k in s)}]")
        s[key] = type(s[key])(value)
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


def main():
    s = parse_args(sys.argv[1:])
    torch.set_num_threads(s["threads"])
    torch.manual_seed(s["seed"])
    from transformers import GPT2Config, GPT2LMHeadModel, TrainingArguments

    config = GPT2Config(vocab_size=s["vocab_size"], n_positions=s["n_positions"], n_embd=s["n_embd"],
                        n_layer=s["n_layer"], n_head=s["n_head"], embd_pdrop=s["dropout"],
                        attn_pdrop=s["dropout"], resid_pdrop=s["dropout"],
                        bos_token_id=s["vocab_size"] - 1, eos_token_id=s["vocab_size"] - 1)
    model = GPT2LMHeadModel(config)
    model.train()
    # The Trainer's default optimizer for this torch/transformers pair.
    default_optim = TrainingArguments.__dataclass_fields__["optim"].default
    fused = str(getattr(default_optim, "value", default_optim)) == "adamw_torch_fused"
    optimizer = torch.optim.AdamW(trainer_param_groups(model, 0.01), lr=2e-5, betas=(0.9, 0.999), eps=1e-8,
                                  fused=fused)

    B, T, total = s["batch"], s["block"], s["warmup"] + s["steps"]
    generator = torch.Generator().manual_seed(s["seed"])
    batches = [torch.randint(0, s["vocab_size"], (B, T), generator=generator) for _ in range(total)]
    times, losses = [], []
    for step in range(total):
        ids = batches[step]
        start = time.perf_counter()
        model.zero_grad()  # the Trainer's call (set_to_none=True)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        times.append(time.perf_counter() - start)
        losses.append(loss.item())
    median = statistics.median(times[s["warmup"]:])
    print(json.dumps({
        "impl": "pytorch", "median_step_s": round(median, 6), "tokens_per_s": round(B * T / median, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "steps": s["steps"], "threads": torch.get_num_threads(),
        "n_params": sum(p.numel() for p in model.parameters()),
        "first_loss": round(losses[0], 6), "last_loss": round(losses[-1], 6),
        "attn_implementation": model.config._attn_implementation,
        "optimizer": "AdamW(fused=True)" if fused else "AdamW(foreach)",
        "blas": blas_description(),
    }))


if __name__ == "__main__":
    main()
