/* The MLM head of BertForMaskedLM (through the backend table):
 *
 *   logits = LN(gelu(transform.dense(x))) · word_embeddingsᵀ + cls.predictions.bias
 *   loss   = mean cross-entropy over the labels that are not -100
 *
 * Only the positions with a label are scored (~15 % under the mlm
 * objective), yet the head over every position is costly: the decoder is an
 * N x C x vocab GEMM, three times in a training step, plus a softmax over
 * N x vocab (for 4 layers, C 256, vocab 8192: two thirds of the encoder's
 * GEMM work; the step got 1.3x faster without it).  So when the
 * batch has labels the head runs on the scored rows only: their encoder
 * outputs are gathered into head_in (rows in ascending order), the head and
 * the cross-entropy run on those M rows, and backward scatters the gradient
 * of head_in into a zeroed [N, C] gradient of the encoder output.  In the
 * full computation the other rows get dlogits = 0 exactly, hence a zero
 * gradient everywhere below, so the loss and every gradient are the same,
 * up to the order of the sums inside the GEMMs.
 *
 * The backend table has no gather op, but embedding_forward is one: with the
 * encoder output as the token table, the row indices as ids, T = 1 and a
 * zero row as the position table, out[m] = x[rows[m]] + 0, exactly.  Its
 * backward is the matching scatter-add (the scored rows are distinct, the
 * padding rows below repeat one unscored row; the position gradient lands
 * in a junk row).
 *
 * The logits of every position stay available: a forward without labels
 * (inference: model:logits, top_k, fill_mask, generation) runs the head on
 * all rows, and logits() after a forward with labels runs it on all rows
 * then, into a buffer of its own, from the encoder output the forward kept
 * (the head has no dropout, so this is what the forward would have
 * computed).
 *
 * Padded rows (mlm_head_rows=padded, and auto on a device that captures
 * CUDA graphs).  M changes with every batch under dynamic masking, and M is
 * the head's GEMM and cross-entropy shape: a graph captured for one batch
 * would serve only batches with the same M.  So the head runs on
 * bert_head_rows_for(M, N) rows instead, M rounded up to a bucket, and the
 * rows after the M scored ones are padding: label -100 (loss 0, dlogits 0,
 * hence a zero gradient through the whole head), gathered from a row that
 * is not scored (a valid row; some row is unscored whenever padding is
 * needed, as the bucket is at most N), and scattered back onto that same
 * row.  That row gets nothing from the head in the exact path: its
 * gradient is +0 from the zeroing, and +0 plus any number of ±0 stays +0,
 * so no zero's sign changes; a scored row's is untouched.  The sums over
 * the head's rows (parameter gradients) only get exact zeros added, so the
 * padded head computes the same numbers; but BLAS picks its kernels and
 * blocking by the row count, so its GEMMs may round a row or a sum over
 * rows differently in the last bits (tests/bert/test_bert_head_rows.c: the
 * same loss, gradients within 4e-6 of the largest, 3e-7 measured on the
 * CPU).  Hence auto follows the device, not the graph setting: on CUDA
 * cuda_graph=off runs the same padded head as the graphs, and trains the
 * same bits. */
#include <stdio.h>
#include <stdlib.h>

#include "bert.h"
#include "lmcore/hash.h"

/* Rounds a row count (at most max_rows) up, so that the next batch, with a
 * few more scored rows than this one, does not reallocate. */
static size_t logits_rows_for(size_t rows, size_t max_rows) {
    size_t want = (rows + rows / 8 + 63) & ~(size_t)63;
    return want > max_rows ? max_rows : want;
}

static lm_status ensure_logits(bert_model *m, size_t rows, size_t max_rows) {
    if (rows <= m->logits_capacity) return LM_OK;
    const size_t capacity = logits_rows_for(rows, max_rows), V = (size_t)m->base.vocab_rows;
    char what[96];
    snprintf(what, sizeof what, "BERT logits for %zu rows x %zu tokens", capacity, V);
    m->acts.logits = NULL;
    /* A row in the logits' dtype (logits_dtype=bf16: half the bytes). */
    const size_t row_bytes = V * (m->base.logits_bf16 ? sizeof(uint16_t) : sizeof(float));
    LM_TRY(model_buffer_grow(m->base.backend, &m->logits_memory, &m->logits_capacity, capacity, row_bytes, what));
    m->acts.logits = m->logits_memory;
    return LM_OK;
}

void bert_head_free(model_base *b) {
    bert_model *m = bert_of(b);
    if (b->backend) {
        if (m->logits_memory) b->backend->ops->free(b->backend, m->logits_memory);
        if (m->full_head_memory) b->backend->ops->free(b->backend, m->full_head_memory);
    }
    free(m->host_head_rows);
    free(m->host_head_labels);
}

typedef struct head_rows {
    float *dense, *gelu, *ln, *ln_mean, *ln_rstd;
    void *logits;      /* in the logits dtype */
    uint16_t *ln_bf16; /* ln rounded, the bf16 decoder's input (NULL with fp32 logits) */
} head_rows;

/* The head over `rows` rows of `input`. */
static void head_forward(bert_model *m, const head_rows *h, const float *input, int rows) {
    const bert_config *c = &m->config;
    lm_backend *be = m->base.backend;
    const int C = c->hidden_size, L = c->num_hidden_layers;
    float *params = m->base.buffers.params;
#define HEAD(k) model_tensor(&m->base, params, BERT_HEAD_TENSOR(L, k))
    be->ops->matmul_forward(be, h->dense, input, HEAD(BERT_HEAD_DENSE_W), HEAD(BERT_HEAD_DENSE_B), rows, C, C,
                            LM_W_OUT_IN);
    be->ops->gelu_forward(be, h->gelu, h->dense, (size_t)rows * (size_t)C, c->gelu_tanh);
    be->ops->layernorm_forward(be, h->ln, h->ln_mean, h->ln_rstd, h->gelu, HEAD(BERT_HEAD_LN_W),
                               HEAD(BERT_HEAD_LN_B), rows, C, (float)c->layer_norm_eps);
    /* The decoder: tied to the word embeddings ([vocab_rows, C], an [out, in]
     * weight), own bias (fp32: added before a bf16 rounding), in the
     * logits' dtype (model_head.c). */
    model_head_forward(&m->base, h->logits, h->ln, h->ln_bf16, BERT_WORD_EMB, HEAD(BERT_HEAD_BIAS), rows);
#undef HEAD
}

static head_rows model_head_rows(bert_model *m) {
    bert_acts *a = &m->acts;
    head_rows h = {a->head_dense, a->head_gelu, a->head_ln, a->head_ln_mean, a->head_ln_rstd, a->logits,
                   a->head_ln_bf16};
    return h;
}

int32_t bert_head_rows_for(int64_t scored, int32_t N) {
    /* A granule of about N/32 rows (at least 64): the count of masked
     * tokens, binomial, spreads over about 0.36·sqrt(N) rows, so most
     * batches of a run fall in one or two buckets, and the padding costs
     * about N/64 rows on average (~10 % of the ~15 % scored). */
    int64_t granule = 64;
    while (granule * 32 < N) granule *= 2;
    const int64_t rows = (scored + granule - 1) / granule * granule;
    return (int32_t)(rows < N ? rows : N);
}

/* Lists the scored rows and their labels, then padding rows up to `rows`
 * (an unscored row, label -100), and sends them to the device. */
static lm_status upload_scored_rows(bert_model *m, const int32_t *labels, int N, int64_t n_targets, int32_t rows) {
    int32_t *row_ids = m->host_head_rows, *row_labels = m->host_head_labels;
    int64_t count = 0;
    int32_t unscored = -1;
    for (int i = 0; i < N; i++) {
        if (labels[i] == LM_IGNORE_INDEX) {
            if (unscored < 0) unscored = i;
            continue;
        }
        row_ids[count] = i;
        row_labels[count] = labels[i];
        count++;
    }
    if (count != n_targets || rows < count || (rows > count && unscored < 0))
        return lm_error_set(LM_ERR_INTERNAL, "architecture 'bert': %lld scored rows, %lld expected, head of %d rows",
                            (long long)count, (long long)n_targets, (int)rows);
    for (int64_t r = count; r < rows; r++) {
        row_ids[r] = unscored;
        row_labels[r] = LM_IGNORE_INDEX;
    }
    const size_t bytes = (size_t)rows * sizeof(int32_t);
    lm_backend *be = m->base.backend;
    LM_TRY(be->ops->upload(be, m->acts.head_rows, row_ids, bytes));
    return be->ops->upload(be, m->acts.head_labels, row_labels, bytes);
}

/* mlm_head_rows: padded, or auto on a backend that captures CUDA graphs
 * (the op profiler has no graph slots: it times exact heads). */
static int head_padded(const bert_model *m) {
    const bert_head_rows mode = m->config.head_rows;
    return mode == BERT_HEAD_ROWS_PADDED || (mode == BERT_HEAD_ROWS_AUTO && m->base.backend->ops->graph_begin);
}

lm_status bert_head_upload_batch(bert_model *m, const lm_batch *batch, int64_t n_targets, uint64_t *signature_extra) {
    const int N = batch->B * batch->T;
    m->head_sparse = batch->labels != NULL;
    m->head_n = !m->head_sparse ? N : head_padded(m) ? bert_head_rows_for(n_targets, N) : (int32_t)n_targets;
    LM_TRY(ensure_logits(m, (size_t)m->head_n, (size_t)N));
    if (m->head_sparse) LM_TRY(upload_scored_rows(m, batch->labels, N, n_targets, m->head_n));
    /* What the head's kernels depend on: its row count (a shape) and where
     * the logits buffer, which grows with it, is now. */
    const uint64_t words[2] = {(uint64_t)(uintptr_t)m->logits_memory, (uint64_t)m->head_n};
    *signature_extra = lm_hash64(words, sizeof words, 0x626572746865616full);
    return LM_OK;
}

lm_status bert_head_forward(bert_model *m, lm_step_state *state) {
    lm_backend *be = m->base.backend;
    bert_acts *a = &m->acts;
    const int C = m->config.hidden_size;
    const int rows = m->head_n;
    const float *input = m->encoder_out;
    if (m->head_sparse) {
        be->ops->embedding_forward(be, a->head_in, a->head_rows, NULL, m->encoder_out, a->zero_row, NULL, rows, 1, C);
        input = a->head_in;
    }
    head_rows h = model_head_rows(m);
    head_forward(m, &h, input, rows);
    if (m->head_sparse) model_forward_loss(&m->base, a->losses, a->logits, a->head_labels, rows, state);
    return LM_OK;
}

void bert_head_backward(bert_model *m, float loss_scale, lm_grad_store grads_store) {
    const bert_config *c = &m->config;
    lm_backend *be = m->base.backend;
    const lm_backend_ops *ops = be->ops;
    bert_acts *a = &m->acts;
    const int M = m->head_n, C = c->hidden_size, L = c->num_hidden_layers;
    const size_t MC = (size_t)M * (size_t)C, NC = (size_t)m->base.B * (size_t)m->base.T * (size_t)C;
    float *params = m->base.buffers.params, *grads = m->base.buffers.grads;
#define P(index) model_tensor(&m->base, params, (index))
#define G(index) model_tensor(&m->base, grads, (index))
    /* d(mean loss * loss_scale)/dlogits, written over the logits (already,
     * by a training forward's fused classifier, on the M scored rows). */
    model_loss_backward(&m->base, a->logits, a->head_labels, M, loss_scale);
    /* Top down; datty, dbranch and dres_b serve as scratch here. */
    float *dhead_ln = a->datty, *dhead_gelu = a->dbranch, *dhead_dense = a->dres_b, *dhead_in = a->datty;
    /* The tied decoder's GEMM is the word embeddings' first writer (all
     * vocab_rows rows: dlogits is 0 in the padding columns, so the padding
     * rows of the weight and bias gradients are 0); the lookup adds its
     * rows last (bert_backward.c). */
    model_head_backward(&m->base, dhead_ln, BERT_WORD_EMB, G(BERT_HEAD_TENSOR(L, BERT_HEAD_BIAS)), a->logits,
                        a->head_ln, a->head_ln_bf16, M, grads_store);
    ops->layernorm_backward(be, dhead_gelu, G(BERT_HEAD_TENSOR(L, BERT_HEAD_LN_W)),
                            G(BERT_HEAD_TENSOR(L, BERT_HEAD_LN_B)), dhead_ln, a->head_gelu,
                            P(BERT_HEAD_TENSOR(L, BERT_HEAD_LN_W)), a->head_ln_mean, a->head_ln_rstd, M, C,
                            LM_GRAD_WRITE, grads_store);
    ops->gelu_backward(be, dhead_dense, a->head_dense, dhead_gelu, MC, c->gelu_tanh);
    /* Written over dhead_ln, which is spent. */
    ops->matmul_backward(be, dhead_in, G(BERT_HEAD_TENSOR(L, BERT_HEAD_DENSE_W)),
                         G(BERT_HEAD_TENSOR(L, BERT_HEAD_DENSE_B)), dhead_dense, a->head_in,
                         P(BERT_HEAD_TENSOR(L, BERT_HEAD_DENSE_W)), M, C, C, LM_W_OUT_IN, LM_GRAD_WRITE, grads_store);
    /* Unscored rows of the encoder output get no gradient from the head. */
    ops->zero(be, a->dres_a, NC * sizeof(float));
    ops->embedding_backward(be, a->dres_a, a->junk_row, NULL, dhead_in, a->head_rows, NULL, M, 1, C);
#undef P
#undef G
}

/* The head over all N rows of the last forward, into full_head_memory. */
static lm_status full_logits(bert_model *m, const void **logits) {
    const size_t N = (size_t)m->base.B * (size_t)m->base.T, C = (size_t)m->config.hidden_size;
    const size_t NC = (N * C + 15) & ~(size_t)15, NS = (N + 15) & ~(size_t)15;
    /* The logits in their dtype, then (bf16) the decoder input's copy. */
    const size_t NL = (model_logits_floats(&m->base, N) + 15) & ~(size_t)15;
    LM_TRY(model_buffer_grow(m->base.backend, (void **)&m->full_head_memory, &m->full_head_capacity,
                             3 * NC + 2 * NS + NL + model_head_input_floats(&m->base, N), sizeof(float),
                             "BERT logits of every position (logits() after a forward with labels)"));
    float *base = m->full_head_memory;
    head_rows h = {base, base + NC, base + 2 * NC, base + 3 * NC, base + 3 * NC + NS, base + 3 * NC + 2 * NS,
                   m->base.logits_bf16 ? (uint16_t *)(base + 3 * NC + 2 * NS + NL) : NULL};
    head_forward(m, &h, m->encoder_out, (int)N);
    *logits = h.logits;
    return LM_OK;
}

lm_status bert_head_download_logits(model_base *b, float *out, size_t count) {
    bert_model *m = bert_of(b);
    const void *logits = m->acts.logits;
    if (m->head_sparse) LM_TRY(full_logits(m, &logits));
    return model_download_logits(b, out, logits, count);
}
