#!/usr/bin/env python3
"""HF tokenizers peer of bench_bpe (same arguments, same JSON line).

    bench_hf.py train OUT.json VOCAB_SIZE FILE...
    bench_hf.py encode TOKENIZER.json FILE...

Run with RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false for one thread.
Training reads the files itself (Tokenizer.train), like lmcore's rows: lines
with their '\\n'.  Encoding times encode_batch over all lines (and
encode_batch_fast, which skips offsets, when this version has it)."""
import json
import resource
import sys
import time

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers


def main():
    op = sys.argv[1]
    if op == "train":
        out, vocab_size, files = sys.argv[2], int(sys.argv[3]), sys.argv[4:]
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        t0 = time.perf_counter()
        tok.train(files, trainer)
        seconds = time.perf_counter() - t0
        tok.save(out)
        nbytes, tokens, lines = sum(len(open(f, "rb").read()) for f in files), 0, 0
    else:
        tok = Tokenizer.from_file(sys.argv[2])
        lines = []
        for f in sys.argv[3:]:
            with open(f, encoding="utf-8") as fh:
                lines += fh.read().splitlines(keepends=True)
        nbytes = sum(len(l.encode()) for l in lines)
        fast = getattr(tok, "encode_batch_fast", None)
        t0 = time.perf_counter()
        encodings = (fast or tok.encode_batch)(lines)
        seconds = time.perf_counter() - t0
        tokens = sum(len(e.ids) for e in encodings)
        lines = len(lines)
    print(json.dumps({"impl": "hf", "op": op, "seconds": round(seconds, 4), "mb_per_s": round(nbytes / 1e6 / seconds, 2),
                      "tokens": tokens, "lines": lines,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
