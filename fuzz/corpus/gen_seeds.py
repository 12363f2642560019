#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora (fuzz/corpus/<target>/): a few small valid
files made by the reference libraries (Hugging Face tokenizers, safetensors)
and hand-made near-valid ones.  Run from the repository root with the
project's virtualenv:  /work/venv/bin/python fuzz/corpus/gen_seeds.py
No WikiText: the training text is the made-up paragraph below."""
import json
import os
import struct

import numpy as np
from safetensors.numpy import save
from tokenizers import ByteLevelBPETokenizer, BertWordPieceTokenizer, processors

ROOT = os.path.dirname(os.path.abspath(__file__))
TEXT = [
    "The quick brown fox jumps over the lazy dog.",
    "A tokenizer splits text into pieces; a model learns from the pieces.",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u65e5\u672c\u8a9e \u043f\u0440\u0438\u0432\u0435\u0442 \U0001F600",
    "Numbers like 3.14, 1,000 and 2024 appear too, as do symbols: @-@ # $ %.",
    "Unaffable, unbelievable, unknowable: prefixes and suffixes repeat.",
] * 4


def out(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def lm_hash64(data, seed=0x9E3779B97F4A7C15):
    """core/host/hash.c, for valid token-cache seeds."""
    M = (1 << 64) - 1

    def mix(x):
        x ^= x >> 32
        x = (x * 0xD6E8FEB86659FD93) & M
        x ^= x >> 32
        x = (x * 0xD6E8FEB86659FD93) & M
        x ^= x >> 32
        return x

    h = seed ^ ((len(data) * 0x9E3779B97F4A7C15) & M)
    i = 0
    while len(data) - i >= 8:
        (w,) = struct.unpack_from("<Q", data, i)
        h = (mix(h ^ w) + 0x9E3779B97F4A7C15) & M
        i += 8
    tail = 0
    for k, b in enumerate(data[i:]):
        tail |= b << (8 * k)
    return mix(h ^ tail ^ (((len(data) - i) << 56) & M))


def json_seeds():
    out("fuzz_json", "config.json", json.dumps({"n_layer": 2, "n_embd": 64, "layer_norm_epsilon": 1e-5,
                                                 "architectures": ["GPT2LMHeadModel"], "tie": True, "x": None}, indent=2))
    out("fuzz_json", "strings.json", r'["a\"b\\c\/d\b\f\n\r\t", "\u00e9\u65e5\ud83d\ude00", "", "\u0000x"]')
    out("fuzz_json", "numbers.json", "[0, -0, 1.5e300, -2.5E-300, 9223372036854775807, -9223372036854775808, "
                                     "18446744073709551616, 0.1, 123456789012345678901234567890]")
    out("fuzz_json", "big_object.json", json.dumps({f"k{i}": i for i in range(40)}))
    out("fuzz_json", "nested.json", "[" * 40 + "{}" + "]" * 40)
    out("fuzz_json", "near_trailing_comma.json", '{"a": [1, 2,], }')
    out("fuzz_json", "near_bad_escape.json", '["\\x41", "\\ud800"]')
    out("fuzz_json", "near_duplicate.json", '{"a": 1, "a": 2}')


def safetensors_seeds():
    tensors = {
        "wte.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
        "ln.bias": np.array([0.5, -1.0], dtype=np.float16),
        "scalar": np.array(3.0, dtype=np.float64),
        "ids": np.array([1, 2, 3], dtype=np.int64),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "mask": np.array([1, 0, 1], dtype=np.uint8),
    }
    data = save(tensors, metadata={"format": "pt"})
    out("fuzz_safetensors", "mixed.safetensors", data)
    out("fuzz_safetensors", "one.safetensors", save({"w": np.ones((2, 2), dtype=np.float32)}))
    out("fuzz_safetensors", "near_truncated.safetensors", data[:-5])
    header = b'{"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}'
    out("fuzz_safetensors", "near_overlap.safetensors", struct.pack("<Q", len(header)) + header + b"\0" * 6)


def bpe_seeds():
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(TEXT, vocab_size=300, min_frequency=2, special_tokens=["<|endoftext|>"])
    js = tok.to_str()
    out("fuzz_tokenizer_json_bpe", "bytelevel_300.json", js)
    tok2 = ByteLevelBPETokenizer(add_prefix_space=True)
    tok2.train_from_iterator(TEXT, vocab_size=280, min_frequency=2, special_tokens=["<|endoftext|>", "<pad>"])
    out("fuzz_tokenizer_json_bpe", "prefix_space_280.json", tok2.to_str())
    doc = json.loads(js)
    doc["model"]["merges"] = doc["model"]["merges"][:3] + [["zz", "qq"]]
    out("fuzz_tokenizer_json_bpe", "near_bad_merge.json", json.dumps(doc))
    doc = json.loads(js)
    doc["added_tokens"][0]["id"] = 99999
    out("fuzz_tokenizer_json_bpe", "near_far_added_id.json", json.dumps(doc))

    # vocab.json + merges.txt (fuzz_vocab_files, mode byte 0 = BPE).
    vocab = json.loads(js)["model"]["vocab"]
    merges = json.loads(js)["model"]["merges"]
    merges_txt = "#version: 0.2\n" + "".join(
        (" ".join(m) if isinstance(m, list) else m) + "\n" for m in merges)
    sep = "\n@@merges@@\n"
    out("fuzz_vocab_files", "bpe_300", b"\x00" + (json.dumps(vocab) + sep + merges_txt).encode())
    out("fuzz_vocab_files", "bpe_prefix", b"\x02" + (json.dumps(vocab) + sep + merges_txt).encode())
    out("fuzz_vocab_files", "bpe_tiny", b"\x00" + ('{"a": 0, "b": 1, "ab": 2}' + sep + "#version: 0.2\na b\n").encode())
    out("fuzz_vocab_files", "near_bpe_missing_merge_token",
        b"\x00" + ('{"a": 0, "b": 1}' + sep + "a b\n").encode())


def wordpiece_seeds():
    tok = BertWordPieceTokenizer(lowercase=False)
    tok.train_from_iterator(TEXT, vocab_size=200, min_frequency=1)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    js = tok._tokenizer.to_str()
    out("fuzz_tokenizer_json_wordpiece", "cased_200.json", js)
    tok2 = BertWordPieceTokenizer(lowercase=True)
    tok2.train_from_iterator(TEXT, vocab_size=150, min_frequency=1)
    tok2._tokenizer.post_processor = processors.BertProcessing(("[SEP]", tok2.token_to_id("[SEP]")),
                                                               ("[CLS]", tok2.token_to_id("[CLS]")))
    out("fuzz_tokenizer_json_wordpiece", "uncased_150.json", tok2._tokenizer.to_str())
    doc = json.loads(js)
    doc["post_processor"]["special_tokens"]["[CLS]"]["ids"] = [4000]
    out("fuzz_tokenizer_json_wordpiece", "near_bad_cls_id.json", json.dumps(doc))
    doc = json.loads(js)
    doc["model"]["unk_token"] = "[NOPE]"
    out("fuzz_tokenizer_json_wordpiece", "near_missing_unk.json", json.dumps(doc))

    vocab = json.loads(js)["model"]["vocab"]
    vocab_txt = "".join(t + "\n" for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]))
    out("fuzz_vocab_files", "wordpiece_200", b"\x01" + vocab_txt.encode())
    out("fuzz_vocab_files", "wordpiece_lower", b"\x03" + vocab_txt.encode())
    out("fuzz_vocab_files", "near_wordpiece_no_unk", b"\x01" + "[PAD]\n[CLS]\nhello\n##s\n".encode())


def cache_file(vocab, block, id_bytes, group, special, tok_hash, src_hash, ids, source_tokens):
    assert len(ids) % block == 0
    payload = b"".join(struct.pack("<H" if id_bytes == 2 else "<I", i) for i in ids)
    head = b"LMBLOCKS" + struct.pack("<8I", 1, 64, vocab, block, id_bytes, group, special, 0)
    head += struct.pack("<3Q", tok_hash, src_hash, len(ids) // block)
    return head + payload + struct.pack("<QQ", source_tokens, lm_hash64(payload))


def token_cache_seeds():
    # byte 0 = 1: options and fingerprints from the header (see fuzz_token_cache.c).
    out("fuzz_token_cache", "valid_u16", b"\x01" + cache_file(300, 4, 2, 0, 0, 0x1111, 0x2222, list(range(12)), 13))
    out("fuzz_token_cache", "valid_u32", b"\x01" + cache_file(70000, 2, 4, 3, 1, 0x3333, 0x4444, [69999, 0, 5, 7], 4))
    out("fuzz_token_cache", "bad_hash_repaired", b"\x03" + cache_file(300, 4, 2, 0, 0, 7, 8, [1, 2, 3, 4], 4)[:-1] + b"\xff")
    out("fuzz_token_cache", "foreign", b"\x00" + cache_file(50257, 8, 2, 0, 0, 1, 2, list(range(16)), 16))
    out("fuzz_token_cache", "build_then_read", b"\x04")


def dataset_seeds():
    out("fuzz_dataset_rows", "text_lines", b"\x00" + "first line\r\n\nthird \u00e9\n last".encode())
    out("fuzz_dataset_rows", "text_two_files", b"\x00" + "a\nb\n\n@@file@@\nc\nd".encode())
    out("fuzz_dataset_rows", "near_text_bad_utf8", b"\x00ok\n\xc3\x28\n")
    out("fuzz_dataset_rows", "jsonl_rows", b"\x01" + '{"text": "hello"}\n\n{"text": "w\\u00f6rld", "id": 2}\n  \n'.encode())
    out("fuzz_dataset_rows", "jsonl_field", b"\x03" + '{"content": "x"}\r\n{"content": ""}\n'.encode())
    out("fuzz_dataset_rows", "near_jsonl_wrong_type", b"\x01" + '{"text": 5}\n'.encode())


def cli_seeds():
    out("fuzz_cli_args", "typical", "epochs=1\ndevice=cpu\nlr=5e-4\nfp16=false\nname=run one\nblock_size=128")
    out("fuzz_cli_args", "edge_numbers", "a=9223372036854775808\nb=-0\nc=1e999\nd=nan\ne=0x10\nf=  7\ng=")
    out("fuzz_cli_args", "near_bad_key", "=x\nno_equals\nbad key=1\nk=v=w")


def checkpoint_state_seeds():
    # byte 0 = 0: trainer_state.json of the fixed run in fuzz_checkpoint_state.c
    # (tests/bad_inputs/model_checkpoint.lua's checkpoint at step 2).
    state = {
        "format": "lmcore-trainer-state-2", "model_type": "gpt2", "vocab_size": 300, "n_params": 8368,
        "optimizer": "adamw", "optimizer_settings": {"betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.01},
        "lr_scheduler_type": "linear", "learning_rate_bits": str(struct.unpack("<q", struct.pack("<d", 5e-4))[0]),
        "warmup_steps": 0, "global_step": 2, "total_steps": 4, "epoch": 0, "steps_in_epoch": 2, "cursor": 16,
        "train_blocks": 49978, "batch_size": 8, "grad_accum": 1, "micro_batches": "2", "seed": "42",
        "loss_sum_run_bits": "4622619562053992448", "loss_sum_epoch_bits": "4622619562053992448",
        "loss_sum_log_bits": "4622619562053992448", "loss_sum_eval_bits": "4622619562053992448",
        "last_log_step": 0, "last_eval_step": 0, "eval_loss_bits": "9221120237041090560",
        "fit": {"best_metric": None, "callbacks": {}}}
    out("fuzz_checkpoint_state", "state_valid", b"\x00" + json.dumps(state, indent=2).encode())
    v1 = {k: v for k, v in state.items() if not k.startswith(("loss_sum_log", "loss_sum_eval", "last_", "eval_"))}
    v1["format"] = "lmcore-trainer-state-1"
    out("fuzz_checkpoint_state", "state_format_1", b"\x00" + json.dumps(v1).encode())
    bad = dict(state, cursor=17)
    out("fuzz_checkpoint_state", "state_bad_cursor", b"\x00" + json.dumps(bad).encode())
    # byte 0 = 1: checksums.json of the scratch checkpoint, whose files each
    # hold their own name.
    names = ["config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"]
    files = {n: {"bytes": len(n), "hash64": "%016x" % lm_hash64(n.encode())} for n in names}
    manifest = {"format": "lmcore-checkpoint-checksums-1", "hash": "lm_hash64", "files": files}
    out("fuzz_checkpoint_state", "checksums_valid", b"\x01" + json.dumps(manifest, indent=2).encode())
    changed = json.loads(json.dumps(manifest))
    changed["files"]["model.safetensors"]["hash64"] = "0123456789abcdef"
    out("fuzz_checkpoint_state", "checksums_changed", b"\x01" + json.dumps(changed).encode())


if __name__ == "__main__":
    json_seeds()
    safetensors_seeds()
    bpe_seeds()
    wordpiece_seeds()
    token_cache_seeds()
    checkpoint_state_seeds()
    dataset_seeds()
    cli_seeds()
