"""Checks the cuBLAS argument lists of kernels/cuda without a GPU.

Emulates cuBLAS's column-major GEMM (op, m, n, k, lda/ldb/ldc with cuBLAS's
validity rules, strided batches) in numpy and replays the exact calls of
kernels/cuda/matmul.cu (both weight layouts, forward and backward, dweight
added or written, dbias from the BGRADA/BGRADB epilogue), of
gelu_matmul.cu (the DGELU epilogue's GEMM, beta = 0, and DGELU_BGRAD's
bias gradient) and
attention.cu (GPT-2 interleaved qkv and separate q/k/v, forward and
backward, through the two-level batches of gemm_batched.cu) against plain
numpy formulas.  Keep the calls here in sync with
the .cu files when they change.  Run: /work/venv/bin/python tests/gpu/gemm_mapping_check.py
(CI does not run Python; this is a desk check for whoever edits the GEMMs.)
"""
import numpy as np
rng = np.random.default_rng(0)

def gemm(ta, tb, m, n, k, alpha, A, ao, lda, B, bo, ldb, beta, C, co, ldc, bias=None, bgrad=None, dgelu_aux=None,
         aux_ld=None):
    """bgrad 'a' or 'b': cuBLASLt's BGRADA/BGRADB epilogue, returned: the
    sums over k of op(A)'s rows (m values) or of op(B)'s columns (n).
    dgelu_aux: the DGELU epilogue, D = product * gelu'(aux) with aux an
    m x n column-major matrix of leading dimension aux_ld (aux_ld >= m);
    with bgrad 'd' as well (DGELU_BGRAD), returned: D's rows summed over
    its n columns (m values, the bias pointer's length: D's rows)."""
    assert lda >= (k if ta else m) and ldb >= (n if tb else k) and ldc >= m, "invalid ld"
    i = np.arange(m)[:, None]; l = np.arange(k)[None, :]
    opA = A[ao + (l + i * lda if ta else i + l * lda)]
    l2 = np.arange(k)[:, None]; j = np.arange(n)[None, :]
    opB = B[bo + (j + l2 * ldb if tb else l2 + j * ldb)]
    ci = co + np.arange(m)[:, None] + np.arange(n)[None, :] * ldc
    res = alpha * (opA.astype(np.float64) @ opB.astype(np.float64))
    if beta != 0: res += beta * C[ci]
    if bias is not None: res += bias[:, None]
    if dgelu_aux is not None:
        assert aux_ld >= m, "invalid aux ld"
        res = res * gelu_tanh_grad(dgelu_aux[np.arange(m)[:, None] + np.arange(n)[None, :] * aux_ld])
    C[ci] = res
    if bgrad == 'd':
        assert dgelu_aux is not None, "DGELU_BGRAD has an aux matrix"
        return res.sum(axis=1)
    if bgrad == 'a': return opA.sum(axis=1)
    if bgrad == 'b': return opB.sum(axis=0)

def batched(ta, tb, m, n, k, alpha, A, ao, lda, sa, B, bo, ldb, sb, beta, C, co, ldc, sc, batch):
    for i in range(batch):
        gemm(ta, tb, m, n, k, alpha, A, ao + i * sa, lda, B, bo + i * sb, ldb, beta, C, co + i * sc, ldc)

def batched_2d(ta, tb, m, n, k, alpha, A, ao, lda, outer_a, inner_a, B, bo, ldb, outer_b, inner_b, beta, C, co, ldc,
               outer_c, inner_c, n_outer, n_inner):
    """lm_cuda_gemm_batched_2d (gemm_batched.cu): the pointer arrays as
    pointer_arrays() builds them (element e = o * n_inner + i), then one
    cublasGemmBatchedEx over them; the fallback (one strided batch per o)
    must give the same result."""
    count = n_outer * n_inner
    slots = (count + 3) & ~3  # array_slots(): each list padded to 4 pointers
    arrays = [None] * (3 * slots)
    for o in range(n_outer):
        for i in range(n_inner):
            e = o * n_inner + i
            arrays[e] = ao + o * outer_a + i * inner_a
            arrays[slots + e] = bo + o * outer_b + i * inner_b
            arrays[2 * slots + e] = co + o * outer_c + i * inner_c
    fallback = C.copy()
    for e in range(count):
        gemm(ta, tb, m, n, k, alpha, A, arrays[e], lda, B, arrays[slots + e], ldb, beta, C, arrays[2 * slots + e], ldc)
    for o in range(n_outer):
        batched(ta, tb, m, n, k, alpha, A, ao + o * outer_a, lda, inner_a, B, bo + o * outer_b, ldb, inner_b, beta,
                fallback, co + o * outer_c, ldc, inner_c, n_inner)
    assert np.allclose(C, fallback), "pointer arrays and fallback disagree"

def matmul_check(N, IC, OC, layout):
    x = rng.standard_normal((N, IC)); w = rng.standard_normal((IC, OC) if layout == 0 else (OC, IC)); b = rng.standard_normal(OC)
    Wm = w if layout == 0 else w.T  # y = x Wm
    y = np.zeros(N * OC)
    if layout == 0: gemm(False, False, OC, N, IC, 1, w.ravel(), 0, OC, x.ravel(), 0, IC, 0, y, 0, OC, b)
    else: gemm(True, False, OC, N, IC, 1, w.ravel(), 0, IC, x.ravel(), 0, IC, 0, y, 0, OC, b)
    assert np.allclose(y.reshape(N, OC), x @ Wm + b)
    dy = rng.standard_normal((N, OC)); dx0 = rng.standard_normal(N * IC); dw0 = rng.standard_normal(IC * OC)
    dx = dx0.copy(); dw = dw0.copy()
    if layout == 0:
        gemm(True, False, IC, N, OC, 1, w.ravel(), 0, OC, dy.ravel(), 0, OC, 1, dx, 0, IC)
        gemm(False, True, OC, IC, N, 1, dy.ravel(), 0, OC, x.ravel(), 0, IC, 1, dw, 0, OC)
        dw_ref = x.T @ dy
    else:
        gemm(False, False, IC, N, OC, 1, w.ravel(), 0, IC, dy.ravel(), 0, OC, 1, dx, 0, IC)
        gemm(False, True, IC, OC, N, 1, x.ravel(), 0, IC, dy.ravel(), 0, OC, 1, dw, 0, IC)
        dw_ref = dy.T @ x
    assert np.allclose(dx.reshape(N, IC) - dx0.reshape(N, IC), dy @ Wm.T)
    assert np.allclose(dw - dw0, dw_ref.ravel())
    # dparam_store LM_GRAD_WRITE: the same dweight GEMMs with beta = 0 over
    # NaN (the first micro-batch writes the gradient, never reads it).
    dw = np.full(IC * OC, np.nan)
    if layout == 0: gemm(False, True, OC, IC, N, 1, dy.ravel(), 0, OC, x.ravel(), 0, IC, 0, dw, 0, OC)
    else: gemm(False, True, IC, OC, N, 1, x.ravel(), 0, IC, dy.ravel(), 0, OC, 0, dw, 0, IC)
    assert np.allclose(dw, dw_ref.ravel()), "dweight written"
    # ... and with dbias from the same GEMM's epilogue (lm_cuda_gemm_bgrad's
    # calls in matmul.cu): BGRADA for IN_OUT, BGRADB for OUT_IN.
    dw = np.full(IC * OC, np.nan)
    if layout == 0: db = gemm(False, True, OC, IC, N, 1, dy.ravel(), 0, OC, x.ravel(), 0, IC, 0, dw, 0, OC, bgrad='a')
    else: db = gemm(False, True, IC, OC, N, 1, x.ravel(), 0, IC, dy.ravel(), 0, OC, 0, dw, 0, IC, bgrad='b')
    assert np.allclose(dw, dw_ref.ravel()), "dweight written with the bias gradient"
    assert db.shape == (OC,) and np.allclose(db, dy.sum(axis=0)), "dbias from the epilogue"
    print("matmul ok", N, IC, OC, layout)

def gelu_tanh_grad(x):
    u = np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)
    du = np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x ** 2)
    t = np.tanh(u)
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du

def gelu_matmul_backward_check(N, IC, OC, layout):
    """gelu_matmul.cu: lm_cuda_gemm_dgelu's calls (matmul_backward's dinp
    GEMM with beta = 0, so the NaN in D is never read), with the DGELU
    epilogue applied elementwise to D through the aux matrix (pre_gelu, the
    same IC x N shape as D, aux_ld = IC); and with DGELU_BGRAD, whose bias
    gradient (dbias_pre, over NaN) must be Σ over rows of dpre_gelu: c_fc's
    bias gradient, IC values."""
    w = rng.standard_normal((IC, OC) if layout == 0 else (OC, IC)); Wm = w if layout == 0 else w.T
    pre = rng.standard_normal((N, IC)); dy = rng.standard_normal((N, OC))
    want = (dy @ Wm.T) * gelu_tanh_grad(pre)
    in_out = layout == 0
    aux = pre.ravel()  # column-major IC x N with ld IC: element (i, j) at i + j*IC = row-major [j, i]
    d = np.full(N * IC, np.nan)
    gemm(in_out, False, IC, N, OC, 1, w.ravel(), 0, OC if in_out else IC, dy.ravel(), 0, OC, 0, d, 0, IC,
         dgelu_aux=aux, aux_ld=IC)
    assert np.allclose(d.reshape(N, IC), want), "DGELU"
    d = np.full(N * IC, np.nan)
    db_pre = gemm(in_out, False, IC, N, OC, 1, w.ravel(), 0, OC if in_out else IC, dy.ravel(), 0, OC, 0, d, 0, IC,
                  bgrad='d', dgelu_aux=aux, aux_ld=IC)
    assert np.allclose(d.reshape(N, IC), want), "DGELU_BGRAD's D"
    assert db_pre.shape == (IC,) and np.allclose(db_pre, want.sum(axis=0)), "DGELU_BGRAD's bias gradient"
    print("gelu_matmul_backward ok", N, IC, OC, layout)

def attention_check(B, T, C, NH, interleaved):
    hd = C // NH; stride = 3 * C if interleaved else C; TT = T * T; scale = 1 / np.sqrt(hd)
    if interleaved:
        buf = rng.standard_normal(B * T * stride); Q = K = V = buf; qo, ko, vo = 0, C, 2 * C
    else:
        Q = rng.standard_normal(B * T * C); K = rng.standard_normal(B * T * C); V = rng.standard_normal(B * T * C); qo = ko = vo = 0
    def heads(buf, off):  # [B, NH, T, hd]
        a = np.zeros((B, NH, T, hd))
        for b in range(B):
            for t in range(T):
                row = buf[off + b * T * stride + t * stride: off + b * T * stride + t * stride + C]
                a[b, :, t, :] = row.reshape(NH, hd)
        return a
    q, k, v = heads(Q, qo), heads(K, ko), heads(V, vo)
    att = np.zeros(B * NH * TT)
    row, heads_tt, out_row = T * stride, NH * TT, T * C  # as in attention.cu
    batched_2d(True, False, T, T, hd, scale, K, ko, stride, row, hd, Q, qo, stride, row, hd, 0, att, 0, T, heads_tt, TT, B, NH)
    S = att.reshape(B, NH, T, T)
    assert np.allclose(S, scale * q @ k.transpose(0, 1, 3, 2)), "scores"
    P = np.exp(S - S.max(-1, keepdims=True)); P /= P.sum(-1, keepdims=True)
    A = P * (rng.random(P.shape) > 0.1) / 0.9
    att = A.ravel().copy()
    out = np.zeros(B * T * C)
    batched_2d(False, False, hd, T, T, 1, V, vo, stride, row, hd, att, 0, T, heads_tt, TT, 0, out, 0, C, out_row, hd, B, NH)
    o_ref = (A @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
    assert np.allclose(out.reshape(B, T, C), o_ref), "out"
    # backward
    dout = rng.standard_normal(B * T * C); dO = dout.reshape(B, T, NH, hd).transpose(0, 2, 1, 3)
    D = np.zeros(B * NH * TT)
    gq = np.zeros(B * T * stride) if not interleaved else None
    G = [np.zeros(B * T * stride) for _ in range(3)] if not interleaved else [np.zeros(B * T * stride)] * 3
    go = (0, 0, 0) if not interleaved else (0, C, 2 * C)
    batched_2d(True, False, T, T, hd, 1, V, vo, stride, row, hd, dout, 0, C, out_row, hd, 0, D, 0, T, heads_tt, TT, B, NH)
    batched_2d(False, True, hd, T, T, 1, dout, 0, C, out_row, hd, att, 0, T, heads_tt, TT, 1, G[2], go[2], stride, row, hd, B, NH)
    dA = D.reshape(B, NH, T, T)
    assert np.allclose(dA, dO @ v.transpose(0, 1, 3, 2)), "dA"
    dS = A * dA - P * (A * dA).sum(-1, keepdims=True)
    D = dS.ravel().copy()
    batched_2d(False, False, hd, T, T, scale, K, ko, stride, row, hd, D, 0, T, heads_tt, TT, 1, G[0], go[0], stride, row, hd, B, NH)
    batched_2d(False, True, hd, T, T, scale, Q, qo, stride, row, hd, D, 0, T, heads_tt, TT, 1, G[1], go[1], stride, row, hd, B, NH)
    dq_ref = scale * dS @ k; dk_ref = scale * dS.transpose(0, 1, 3, 2) @ q; dv_ref = A.transpose(0, 1, 3, 2) @ dO
    for g, o, ref, name in zip(G, go, (dq_ref, dk_ref, dv_ref), "qkv"):
        assert np.allclose(heads(g, o), ref), "d" + name
    print("attention ok", B, T, C, NH, interleaved)

for layout in (0, 1):
    matmul_check(7, 5, 9, layout); matmul_check(3, 8, 4, layout)
    gelu_matmul_backward_check(7, 16, 9, layout); gelu_matmul_backward_check(3, 8, 5, layout)
attention_check(2, 5, 12, 3, True); attention_check(3, 4, 8, 2, False); attention_check(1, 6, 8, 4, True)
