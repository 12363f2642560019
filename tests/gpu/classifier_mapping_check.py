#!/usr/bin/env python3
"""Desk check of kernels/cuda/crossentropy_forward_backward.cu without a GPU.

Replays the kernel's work split in numpy, thread by thread: the scalar head
up to the row's first 16-byte boundary, float4s from there, the scalar
tail; the online (max, sum) per thread in float32, combined in double as
the block reductions do; then the write pass.  Checks, for rows at every
alignment and vocabularies around the float4 and block boundaries, that
every element is read once in pass 1 and written once in pass 2, and that
the loss and dlogits match a float64 reference (and, for NaN and ±1e4
rows, the CPU twin's behaviour).  Run: python3 tests/gpu/classifier_mapping_check.py
"""
import math

import numpy as np

BLOCK = 512


def split_row(address_floats, V):
    misaligned = address_floats % 4  # the row's address in floats, mod 16 bytes
    head = 0 if misaligned == 0 else 4 - misaligned
    head = min(head, V)
    return head, (V - head) // 4


def thread_elements(tid, head, n4, V):
    """The element indices thread tid reads, in its order."""
    out = list(range(tid, head, BLOCK))
    for i in range(tid, n4, BLOCK):
        out.extend(head + 4 * i + k for k in range(4))
    out.extend(range(head + 4 * n4 + tid, V, BLOCK))
    return out


def kernel_row(x, label, dloss, address_floats):
    V = len(x)
    f = np.float32
    head, n4 = split_row(address_floats, V)
    seen = np.zeros(V, dtype=int)
    ms, ss = [], []
    for tid in range(BLOCK):
        m, s = f(-np.inf), f(0)
        for j in thread_elements(tid, head, n4, V):
            seen[j] += 1
            v = x[j]
            with np.errstate(invalid="ignore", over="ignore"):
                if v > m:
                    s = f(s * f(np.exp(f(m - v)))) + f(1)
                    m = v
                elif v != -np.inf:
                    s = f(s + f(np.exp(f(v - m))))
        ms.append(m)
        ss.append(s)
    assert (seen == 1).all(), "pass 1 reads an element %s times" % seen.max()
    row_max = max((m for m in ms if not math.isnan(m)), default=f(-np.inf))
    total = 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        for m, s in zip(ms, ss):
            total += float(s) if m == -np.inf else float(f(s * f(np.exp(f(m - row_max)))))
    inv_sum = f(1.0 / total) if total != 0 else f(np.inf)
    label_prob = f(f(np.exp(f(x[label] - row_max))) * inv_sum)
    loss = f(math.log(total) + float(row_max) - float(x[label])) if total > 0 else f(np.nan)
    g = np.empty(V, dtype=np.float32)
    written = np.zeros(V, dtype=int)
    with np.errstate(invalid="ignore", over="ignore"):
        for tid in range(BLOCK):
            for j in thread_elements(tid, head, n4, V):
                written[j] += 1
                g[j] = f(dloss * f(label_prob - f(1))) if j == label else f(dloss * f(f(np.exp(f(x[j] - row_max))) * inv_sum))
    assert (written == 1).all(), "pass 2 writes an element %s times" % written.max()
    return loss, g


def reference(x, label, dloss):
    x64 = x.astype(np.float64)
    m = x64.max()
    e = np.exp(x64 - m)
    p = e / e.sum()
    loss = math.log(e.sum()) + m - x64[label]
    g = dloss * p
    g[label] = dloss * (p[label] - 1.0)
    return loss, g


def main():
    rng = np.random.default_rng(1)
    checked = 0
    for V in (1, 2, 3, 4, 5, 7, 8, 511, 2047, 2048, 2051, 4099, 50257):
        for address in range(4):
            x = rng.uniform(-8, 8, V).astype(np.float32)
            label = int(rng.integers(0, V))
            dloss = np.float32(1.0 / 3.0)
            loss, g = kernel_row(x, label, dloss, address)
            want_loss, want_g = reference(x, label, float(dloss))
            assert abs(loss - want_loss) <= 1e-5 * max(1.0, abs(want_loss)), (V, address, loss, want_loss)
            err = np.abs(g - want_g).max()
            assert err <= 1e-6 * float(dloss), (V, address, err)  # entries are at most dloss; p - 1 rounds in float
            checked += 1
    # Extreme rows: the label alone at +1e4 (loss 0, gradient 0), the label at -1e4 among +1e4.
    V = 1001
    x = np.full(V, -1e4, dtype=np.float32)
    x[17] = 1e4
    loss, g = kernel_row(x, 17, np.float32(0.25), 1)
    assert loss == 0.0 and (g == 0).all(), (loss, np.abs(g).max())
    x = np.where(np.arange(V) % 3 == 0, np.float32(1e4), np.float32(-1e4)).astype(np.float32)
    x[5] = -1e4
    loss, g = kernel_row(x, 5, np.float32(0.25), 2)
    high = int((np.arange(V) % 3 == 0).sum())
    assert abs(loss - (2e4 + math.log(high))) <= 4e-3, loss
    # Eight NaN logits: some thread sees nothing else; the loss must be NaN.
    x = rng.uniform(-4, 4, V).astype(np.float32)
    x[100:108] = np.nan
    loss, g = kernel_row(x, 5, np.float32(0.25), 0)
    assert math.isnan(loss), loss
    print("classifier mapping check: %d rows at 4 alignments, extreme and NaN rows: ok" % checked)


if __name__ == "__main__":
    main()
