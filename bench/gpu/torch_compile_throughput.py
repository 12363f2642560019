"""The throughput shape's peer: PyTorch GPT2LMHeadModel (124M) under
torch.compile, bf16 autocast, fused AdamW (lr 6e-4, weight decay 0.1),
gradient clipping at 1.0, blocks of 1024 random token ids, batch B; steps/s
after warm-up (compilation included in the warm-up).  Prints
  RESULT side=torch_compile shape=throughput batch=B tokens_per_second=... mfu=... peak_gpu_memory_mib=...
MFU uses the same count as bench/gpu/throughput.lua (6·N + 12·L·C·T per
token, N without the position embeddings).  Peak memory: the GPU's memory
in use sampled after every step (torch.cuda.mem_get_info, the same measure
as lmcore's NVML gpu_memory_mb: context included), with PyTorch's own
max_memory_reserved and max_memory_allocated beside it.  --batch-size 0 tries 64, 32, 16, 8, 4 and
keeps the first that fits.
"""
import argparse
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel


def run(a, batch, device):
    torch.manual_seed(0)
    config = GPT2Config(n_positions=a.block_size, n_layer=a.n_layer, n_head=a.n_head, n_embd=a.n_embd,
                        vocab_size=a.vocab_size)
    model = GPT2LMHeadModel(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4, weight_decay=0.1,
                                  fused=device == "cuda")
    step_model = torch.compile(model) if a.compile else model
    ids = torch.randint(0, a.vocab_size, (batch, a.block_size), device=device)
    dtype = torch.bfloat16 if a.precision == "bf16" else torch.float32

    def step():
        with torch.autocast(device_type=device, dtype=dtype, enabled=a.precision == "bf16"):
            loss = step_model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for _ in range(a.warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    peak_used = 0.0
    for _ in range(a.steps):
        loss = step()
        if device == "cuda":
            free, total = torch.cuda.mem_get_info()
            peak_used = max(peak_used, (total - free) / 2**20)
    loss.item()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    n_params = sum(p.numel() for p in model.parameters())
    non_embedding = n_params - model.transformer.wpe.weight.numel()
    flops_per_token = 6 * non_embedding + 12 * a.n_layer * a.n_embd * a.block_size
    tokens_per_second = a.steps * batch * a.block_size / seconds
    mfu = tokens_per_second * flops_per_token / (a.peak_tflops * 1e12)
    reserved = torch.cuda.max_memory_reserved() / 2**20 if device == "cuda" else 0
    allocated = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"RESULT side=torch_compile shape=throughput model=gpt2 params={n_params} batch={batch} "
          f"block={a.block_size} precision={a.precision} compile={int(a.compile)} device=\"{name}\" "
          f"steps_per_second={a.steps / seconds:.3f} tokens_per_second={tokens_per_second:.0f} mfu={mfu:.3f} "
          f"peak_gpu_memory_mib={peak_used:.0f} peak_reserved_mib={reserved:.0f} peak_allocated_mib={allocated:.0f}",
          flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=0, help="0: the largest of 64, 32, 16, 8, 4 that fits")
    p.add_argument("--block-size", type=int, default=1024)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--peak-tflops", type=float, default=989.4, help="dense peak of the GPU at that precision")
    p.add_argument("--n-layer", type=int, default=12)
    p.add_argument("--n-head", type=int, default=12)
    p.add_argument("--n-embd", type=int, default=768)
    p.add_argument("--vocab-size", type=int, default=50257)
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    for batch in ([a.batch_size] if a.batch_size > 0 else [64, 32, 16, 8, 4]):
        try:
            run(a, batch, a.device)
            return
        except torch.OutOfMemoryError:
            print(f"batch {batch}: out of memory", flush=True)
            torch.cuda.empty_cache()
    raise SystemExit("no batch size fits")


if __name__ == "__main__":
    main()
