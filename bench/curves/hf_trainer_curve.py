"""The Hugging Face Trainer on lmcore's recipe, for the training-curve
comparison (bench/curves/compare_hf_trainer.sh): same tokenizer (lmcore's
saved tokenizer.json), same token blocks (rows as HF's wikitext loader gives
them, tokenized without special tokens, concatenated and cut into blocks:
group_texts), same model shape, optimiser, schedule, clipping and steps;
evaluation on the first EVAL_BATCHES batches of the evaluation blocks, as
lmcore's eval_max_batches.  Prints
  RESULT side=hf model=gpt2 device=... steps=... eval_loss=... perplexity=...
Only random initialisation, dropout masks and the shuffling order differ
from lmcore's run.
"""
import argparse
import json
import math
import os
import time

import torch
from tokenizers import Tokenizer
from transformers import (BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling, GPT2Config,
                          GPT2LMHeadModel, PreTrainedTokenizerFast, Trainer, TrainingArguments)


def wikitext_rows(path):
    """Rows exactly as Hugging Face's wikitext loader yields them."""
    with open(path, encoding="utf-8") as f:
        return [row if row.strip() else "" for row in f]


def blocks(tokenizer, rows, block_size, add_special):
    ids = []
    for encoding in tokenizer.encode_batch(rows, add_special_tokens=add_special):
        ids.extend(encoding.ids)
    n = len(ids) // block_size * block_size
    return [ids[i:i + block_size] for i in range(0, n, block_size)]


class Blocks(torch.utils.data.Dataset):
    def __init__(self, rows, causal):
        self.rows, self.causal = rows, causal

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        ids = torch.tensor(self.rows[i])
        return {"input_ids": ids, "labels": ids.clone()} if self.causal else {"input_ids": ids}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--run", required=True, help="lmcore's output_dir (config.json, tokenizer.json, results.json)")
    p.add_argument("--data", required=True, help="folder with wiki.<split>.raw")
    p.add_argument("--train-split", default="test")
    p.add_argument("--eval-split", default="valid")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--eval-batches", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--block-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-steps", type=int, default=20)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    config = json.load(open(os.path.join(a.run, "config.json")))
    causal = config["model_type"] == "gpt2"
    tokenizer = Tokenizer.from_file(os.path.join(a.run, "tokenizer.json"))
    train = blocks(tokenizer, wikitext_rows(os.path.join(a.data, f"wiki.{a.train_split}.raw")), a.block_size,
                   not causal)
    evaluation = blocks(tokenizer, wikitext_rows(os.path.join(a.data, f"wiki.{a.eval_split}.raw")), a.block_size,
                        not causal)[:a.eval_batches * a.batch_size]
    torch.manual_seed(a.seed)
    fields = {k: v for k, v in config.items()
              if k not in ("architectures", "transformers_version", "torch_dtype", "dtype", "model_type")}
    if causal:
        model = GPT2LMHeadModel(GPT2Config(**fields))
        collator = None
    else:
        model = BertForMaskedLM(BertConfig(**fields))
        wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                          cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
        collator = DataCollatorForLanguageModeling(wrapped, mlm_probability=0.15)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args = TrainingArguments(output_dir="/tmp/hf_curve", per_device_train_batch_size=a.batch_size,
                             per_device_eval_batch_size=a.batch_size, max_steps=a.steps, learning_rate=a.lr,
                             warmup_steps=a.warmup_steps, weight_decay=a.weight_decay, max_grad_norm=1.0,
                             lr_scheduler_type="linear", logging_steps=10**9, save_strategy="no", report_to=[],
                             dataloader_num_workers=0, disable_tqdm=True, seed=a.seed, use_cpu=device == "cpu")
    trainer = Trainer(model=model, args=args, train_dataset=Blocks(train, causal),
                      eval_dataset=Blocks(evaluation, causal), data_collator=collator)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    eval_loss = trainer.evaluate()["eval_loss"]
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"RESULT side=hf model={config['model_type']} device=\"{name}\" steps={a.steps} train_blocks={len(train)} "
          f"eval_blocks={len(evaluation)} eval_loss={eval_loss:.6f} perplexity={math.exp(eval_loss):.2f} "
          f"train_seconds={seconds:.1f}")


if __name__ == "__main__":
    main()
