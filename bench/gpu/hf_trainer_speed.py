"""The Hugging Face Trainer at the reference recipe's shape, for the GPU
benchmark: GPT2LMHeadModel (124M) or BertForMaskedLM (base) from a config,
batch 8 x 128 tokens, AdamW lr 2e-5, weight decay 0.01, same number of
steps as lmcore's bench/gpu/train_speed.lua; steps/s measured after the
warm-up steps with a callback.  Prints
  RESULT side=hf model=gpt2 precision=fp32 steps_per_second=...
"""
import argparse
import time

import torch
from transformers import (BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling, GPT2Config,
                          GPT2LMHeadModel, PreTrainedTokenizerFast, Trainer, TrainerCallback, TrainingArguments)


def device_used_mib():
    """Memory in use on the whole GPU (as NVML reports it to lmcore's side)."""
    free, total = torch.cuda.mem_get_info()
    return (total - free) / 2**20


class Timer(TrainerCallback):
    def __init__(self, warmup):
        self.warmup, self.start, self.end, self.steps = warmup, None, None, 0
        self.peak_used = 0.0

    def on_step_end(self, args, state, control, **kwargs):
        self.peak_used = max(self.peak_used, device_used_mib())
        if state.global_step == self.warmup:
            torch.cuda.synchronize()
            self.start = time.perf_counter()
        if state.global_step > self.warmup:
            self.steps += 1

    def on_train_end(self, args, state, control, **kwargs):
        torch.cuda.synchronize()
        self.end = time.perf_counter()


class RandomBlocks(torch.utils.data.Dataset):
    def __init__(self, n, block, vocab, mlm):
        g = torch.Generator().manual_seed(0)
        low = 5 if mlm else 0  # keep BERT's special ids out of the text
        self.ids = torch.randint(low, vocab, (n, block), generator=g)
        self.mlm = mlm

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        ids = self.ids[i]
        if self.mlm:
            return {"input_ids": ids}
        return {"input_ids": ids, "labels": ids.clone()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="gpt2", choices=["gpt2", "bert"])
    p.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--block-size", type=int, default=128)
    a = p.parse_args()
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    if a.model == "gpt2":
        model = GPT2LMHeadModel(GPT2Config())
        data = RandomBlocks(a.batch_size * (a.steps + a.warmup + 5), a.block_size, 50257, False)
        collator = None
    else:
        model = BertForMaskedLM(BertConfig(vocab_size=28996))
        data = RandomBlocks(a.batch_size * (a.steps + a.warmup + 5), a.block_size, 28996, True)
        from tokenizers import Tokenizer, models
        tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(
            {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}, unk_token="[UNK]")),
            pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
        collator = DataCollatorForLanguageModeling(tok, mlm_probability=0.15)
    args = TrainingArguments(output_dir="/tmp/hf_bench", per_device_train_batch_size=a.batch_size,
                             max_steps=a.steps + a.warmup, learning_rate=2e-5, weight_decay=0.01,
                             logging_steps=10**9, save_strategy="no", report_to=[], bf16=a.precision == "bf16",
                             dataloader_num_workers=0, disable_tqdm=True)
    timer = Timer(a.warmup)
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collator, callbacks=[timer])
    trainer.train()
    sps = timer.steps / (timer.end - timer.start)
    print(f"RESULT side=hf model={a.model} precision={a.precision} device=\"{torch.cuda.get_device_name()}\" "
          f"steps={timer.steps} steps_per_second={sps:.3f} tokens_per_second={sps * a.batch_size * a.block_size:.0f} "
          f"projected_6747_steps_s={6747 / sps:.1f} peak_memory_mib={torch.cuda.max_memory_allocated() / 2**20:.0f} "
          f"peak_gpu_memory_mib={timer.peak_used:.0f}")


if __name__ == "__main__":
    main()
