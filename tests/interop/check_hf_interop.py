"""Interoperability check: models and tokenizers saved by lmcore load in
Hugging Face `transformers` (from_pretrained, PreTrainedTokenizerFast) and
give the same ids and logits as lmcore.

  python tests/interop/check_hf_interop.py LMCORE_EXE DATA_DIR WORK_DIR

Trains (a few steps) and saves a tiny GPT-2 and a tiny BERT with lmcore's own
scripts, dumps lmcore's logits, loads both folders with transformers and
compares: identical token ids, max relative logit error <= 1e-4 (fp32).
Needs torch + transformers (a virtualenv); CI does not run it.
"""
import json
import subprocess
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, PreTrainedTokenizerFast

TEXT = "The game 's battle system , the Blitz system , is carried over directly from Valkyria Chronicles ."


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def check(exe, data, work, script, name, loader):
    out = f"{work}/{name}"
    run([exe, "--log-level", "warn", "run", f"scripts/{script}.lua", "preset=tiny", f"data={data}",
         "train_split=test", "max_steps=5", "eval_max_batches=1", "device=cpu", f"output_dir={out}",
         f"cache_dir={work}/cache"])
    run([exe, "run", "tests/interop/dump_logits.lua", f"model={out}", f"text={TEXT}", f"out={out}/lmcore_logits.json"])
    ours = json.load(open(f"{out}/lmcore_logits.json"))
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=f"{out}/tokenizer.json")
    ids = tokenizer(TEXT)["input_ids"]
    model = loader.from_pretrained(out, attn_implementation="eager").eval()
    with torch.no_grad():
        theirs = model(torch.tensor([ids])).logits[0].numpy()
    mine = np.array(ours["logits"], dtype=np.float32)
    rel = float(np.abs(mine - theirs).max() / np.abs(theirs).max())
    same_ids = ids == ours["ids"]
    print(f"{name}: ids identical: {same_ids} ({len(ids)} tokens), max relative logit error {rel:.2e}")
    return same_ids and rel <= 1e-4


def main():
    exe, data, work = sys.argv[1:4]
    ok = check(exe, data, work, "gpt2_clm", "gpt2", AutoModelForCausalLM)
    ok = check(exe, data, work, "bert_mlm", "bert", AutoModelForMaskedLM) and ok
    print("INTEROP: PASS" if ok else "INTEROP: FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
