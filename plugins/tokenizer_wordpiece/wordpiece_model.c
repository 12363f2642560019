/* The WordPiece model a tokenizer holds, however it got it (tokenizer.json,
 * vocab.txt or training): the added tokens, the [CLS] A [SEP] template,
 * and the checks and derived ids once the vocabulary is complete. */
#include <stdlib.h>
#include <string.h>

#include "lmcore/log.h"
#include "wordpiece.h"
#include "wordpiece_train.h"

char *wp_strndup(const char *s, size_t len) {
    char *copy = malloc(len + 1);
    if (!copy) return NULL;
    if (len) memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

void wp_clear_model(wp_tokenizer *t) {
    t->trained = 0;
    wp_vocab_free(&t->vocab);
    wp_vocab_free(&t->continuation);
    free(t->continuation_ids);
    t->continuation_ids = NULL;
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    t->added = NULL;
    t->n_added = 0;
    free(t->special_ids);
    t->special_ids = NULL;
    t->n_special = 0;
    free(t->template_before);
    free(t->template_after);
    t->template_before = t->template_after = NULL;
    t->n_before = t->n_after = 0;
    memset(t->added_first_byte, 0, sizeof t->added_first_byte);
}

lm_status wp_add_added_token(wp_tokenizer *t, const char *content, size_t len, int32_t id, int special) {
    wp_added_token *added = realloc(t->added, (t->n_added + 1) * sizeof *added);
    if (!added) return lm_error_set(LM_ERR_NOMEM, "out of memory adding a special token");
    t->added = added;
    char *copy = wp_strndup(content, len);
    if (!copy) return lm_error_set(LM_ERR_NOMEM, "out of memory adding a special token");
    t->added[t->n_added++] = (wp_added_token){copy, len, id, special};
    return LM_OK;
}

lm_status wp_set_template(wp_tokenizer *t, const int32_t *before, size_t n_before, const int32_t *after,
                          size_t n_after) {
    free(t->template_before);
    free(t->template_after);
    t->template_before = malloc((n_before ? n_before : 1) * sizeof(int32_t));
    t->template_after = malloc((n_after ? n_after : 1) * sizeof(int32_t));
    if (!t->template_before || !t->template_after)
        return lm_error_set(LM_ERR_NOMEM, "out of memory for the post-processor template");
    if (n_before) memcpy(t->template_before, before, n_before * sizeof(int32_t));
    if (n_after) memcpy(t->template_after, after, n_after * sizeof(int32_t));
    t->n_before = n_before;
    t->n_after = n_after;
    return LM_OK;
}

static int compare_ids(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static int32_t id_of(const wp_tokenizer *t, const char *token) {
    return wp_vocab_find(&t->vocab, token, strlen(token));
}

/* Builds the lookup structures once the vocabulary, added tokens and
 * template are known.  `source` names the origin in error messages. */
lm_status wp_finalize_model(wp_tokenizer *t, const char *source) {
    /* The post-processor's ids are put around every sequence: each must be a token. */
    for (size_t i = 0; i < t->n_before + t->n_after; i++) {
        const int32_t id = i < t->n_before ? t->template_before[i] : t->template_after[i - t->n_before];
        size_t len;
        if (!wp_vocab_token(&t->vocab, id, &len))
            return lm_error_set(LM_ERR_FORMAT, "%s: the post-processor adds id %d, which is not in the vocabulary",
                                source, (int)id);
    }
    t->unk_id = id_of(t, t->unk_token);
    if (t->unk_id < 0)
        return lm_error_set(LM_ERR_FORMAT, "%s: the unknown token '%s' is not in the vocabulary", source,
                            t->unk_token);
    wp_vocab_free(&t->continuation);
    free(t->continuation_ids);
    t->continuation_ids = malloc(((size_t)t->vocab.count + 1) * sizeof *t->continuation_ids);
    if (!t->continuation_ids) return lm_error_set(LM_ERR_NOMEM, "out of memory indexing the vocabulary");
    t->max_token_len = t->max_continuation_len = 0;
    for (int32_t id = 0; id < t->vocab.count; id++) {
        size_t len;
        const char *tok = wp_vocab_token(&t->vocab, id, &len);
        if (!tok) continue;
        if (len > t->max_token_len) t->max_token_len = len;
        if (len > t->prefix_len && memcmp(tok, t->prefix, t->prefix_len) == 0) {
            int32_t c;
            LM_TRY(wp_vocab_push(&t->continuation, tok + t->prefix_len, len - t->prefix_len, &c));
            t->continuation_ids[c] = id;
            if (len - t->prefix_len > t->max_continuation_len) t->max_continuation_len = len - t->prefix_len;
        }
    }
    memset(t->added_first_byte, 0, sizeof t->added_first_byte);
    free(t->special_ids);
    t->special_ids = malloc((t->n_added ? t->n_added : 1) * sizeof *t->special_ids);
    if (!t->special_ids) return lm_error_set(LM_ERR_NOMEM, "out of memory listing special tokens");
    t->n_special = 0;
    for (size_t i = 0; i < t->n_added; i++) {
        if (t->added[i].len) t->added_first_byte[(unsigned char)t->added[i].content[0]] = 1;
        if (t->added[i].special) t->special_ids[t->n_special++] = t->added[i].id;
    }
    qsort(t->special_ids, t->n_special, sizeof *t->special_ids, compare_ids);
    size_t unique = 0;
    for (size_t i = 0; i < t->n_special; i++)
        if (unique == 0 || t->special_ids[unique - 1] != t->special_ids[i]) t->special_ids[unique++] = t->special_ids[i];
    t->n_special = unique;
    t->cls_id = t->n_before == 1 ? t->template_before[0] : id_of(t, "[CLS]");
    t->sep_id = t->n_after >= 1 ? t->template_after[t->n_after - 1] : id_of(t, "[SEP]");
    t->pad_id = id_of(t, "[PAD]");
    t->mask_id = id_of(t, "[MASK]");
    t->trained = 1;
    return LM_OK;
}

lm_status wp_finalize_trained(wp_tokenizer *t) {
    for (size_t i = 0; i < t->n_train_specials; i++) {
        const char *s = t->train_specials[i];
        LM_TRY(wp_add_added_token(t, s, strlen(s), id_of(t, s), 1));
    }
    int32_t cls = id_of(t, "[CLS]"), sep = id_of(t, "[SEP]");
    if (cls >= 0 && sep >= 0) LM_TRY(wp_set_template(t, &cls, 1, &sep, 1));
    else LM_TRY(wp_set_template(t, NULL, 0, NULL, 0));
    return wp_finalize_model(t, "wordpiece training");
}
