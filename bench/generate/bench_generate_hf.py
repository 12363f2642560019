"""Hugging Face side of the generation benchmark (run by bench_generate.sh).

    python bench_generate_hf.py model=DIR prompt=1,2,3 new_tokens=128 threads=2 repeats=3

Loads the folder lmcore saved with GPT2LMHeadModel.from_pretrained, runs one
warm-up generation, then `repeats` greedy generations (model.generate with
use_cache=True, do_sample=False) of exactly new_tokens tokens after the
prompt, timed around the generate call, and prints one JSON line with the
tokens/s of each run and the generated ids (the same fields as the lmcore
side)."""
import json
import sys
import time

import torch
from transformers import GenerationConfig, GPT2LMHeadModel


def main() -> None:
    args = dict(a.split("=", 1) for a in sys.argv[1:])
    threads = int(args.get("threads", 2))
    new_tokens = int(args.get("new_tokens", 128))
    repeats = int(args.get("repeats", 3))
    torch.set_num_threads(threads)
    model = GPT2LMHeadModel.from_pretrained(args["model"], attn_implementation="eager").eval()
    prompt = torch.tensor([[int(x) for x in args["prompt"].split(",")]], dtype=torch.long)
    mask = torch.ones_like(prompt)
    # Exactly new_tokens greedy tokens: no end-of-text stop (the saved eos id
    # lies outside this vocabulary anyway), nothing that reshapes the logits.
    config = GenerationConfig(max_new_tokens=new_tokens, do_sample=False, use_cache=True, eos_token_id=None,
                              pad_token_id=0, num_beams=1)
    warm = GenerationConfig(**{**config.to_dict(), "max_new_tokens": 8})
    with torch.inference_mode():
        model.generate(prompt, attention_mask=mask, generation_config=warm)
        rates, ids = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            out = model.generate(prompt, attention_mask=mask, generation_config=config)
            seconds = time.perf_counter() - start
            new = out[0, prompt.shape[1]:].tolist()
            assert len(new) == new_tokens, f"generated {len(new)} tokens"
            assert ids is None or new == ids, "greedy generation differs between runs"
            ids = new
            rates.append(new_tokens / seconds)
    print(json.dumps({"impl": "huggingface", "tokens_per_s": rates, "ids": ids, "threads": threads,
                      "prompt_tokens": prompt.shape[1], "torch": torch.__version__,
                      "attn_implementation": model.config._attn_implementation}))


if __name__ == "__main__":
    main()
