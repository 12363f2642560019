/* Lookups over the generated BERT character tables (see bert_unicode.h).
 * The Basic Multilingual Plane is cached in a 64 KiB class table built once,
 * so the common case costs one load per character. */
#include "bert_unicode.h"

#include <pthread.h>

static int in_ranges(const bert_range *ranges, size_t count, uint32_t cp) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < ranges[mid].first) hi = mid;
        else if (cp > ranges[mid].last) lo = mid + 1;
        else return 1;
    }
    return 0;
}

static unsigned classify(uint32_t cp) {
    unsigned c = 0;
    if (in_ranges(bert_removed_ranges, bert_removed_ranges_count, cp)) c |= BERT_REMOVED;
    if (in_ranges(bert_ws_norm_ranges, bert_ws_norm_ranges_count, cp)) c |= BERT_WS_NORM;
    if (in_ranges(bert_cjk_ranges, bert_cjk_ranges_count, cp)) c |= BERT_CJK;
    if (in_ranges(bert_punct_ranges, bert_punct_ranges_count, cp)) c |= BERT_PUNCT;
    if (in_ranges(bert_ws_split_ranges, bert_ws_split_ranges_count, cp)) c |= BERT_WS_SPLIT;
    return c;
}

static uint8_t bmp_classes[0x10000];
static pthread_once_t bmp_once = PTHREAD_ONCE_INIT;

static void build_bmp_classes(void) {
    for (uint32_t cp = 0; cp < 0x10000; cp++) bmp_classes[cp] = (uint8_t)classify(cp);
}

unsigned bert_char_class(uint32_t cp) {
    if (cp < 0x10000) {
        pthread_once(&bmp_once, build_bmp_classes);
        return bmp_classes[cp];
    }
    return classify(cp);
}

/* Finds the run containing cp (runs are sorted and disjoint). */
static int map_run(const bert_map_run *runs, size_t count, uint32_t cp, uint32_t *out) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < runs[mid].first) hi = mid;
        else if (cp > runs[mid].last) lo = mid + 1;
        else {
            const bert_map_run *r = &runs[mid];
            if (r->stride == 0) {
                *out = (uint32_t)r->value;
                return 1;
            }
            if ((cp - r->first) % (uint32_t)r->stride != 0) return 0;
            *out = (uint32_t)((int64_t)cp + r->value);
            return 1;
        }
    }
    return 0;
}

static const bert_map_multi *map_multi(const bert_map_multi *table, size_t count, uint32_t cp) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < table[mid].cp) hi = mid;
        else if (cp > table[mid].cp) lo = mid + 1;
        else return &table[mid];
    }
    return NULL;
}

size_t bert_strip_accents(uint32_t cp, uint32_t out[3]) {
    if (cp < 0xC0) { /* nothing below U+00C0 decomposes or is a mark */
        out[0] = cp;
        return 1;
    }
    if (cp >= 0xAC00 && cp <= 0xD7A3) { /* Hangul syllable: L V [T] */
        uint32_t s = cp - 0xAC00;
        out[0] = 0x1100 + s / 588;
        out[1] = 0x1161 + (s % 588) / 28;
        if (s % 28 == 0) return 2;
        out[2] = 0x11A7 + s % 28;
        return 3;
    }
    if (in_ranges(bert_strip_removed_ranges, bert_strip_removed_ranges_count, cp)) return 0;
    if (map_run(bert_strip_runs, bert_strip_runs_count, cp, &out[0])) return 1;
    const bert_map_multi *m = map_multi(bert_strip_multi, bert_strip_multi_count, cp);
    if (m) {
        for (uint32_t i = 0; i < m->count; i++) out[i] = m->out[i];
        return m->count;
    }
    out[0] = cp;
    return 1;
}

size_t bert_lowercase(uint32_t cp, uint32_t out[3]) {
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    if (map_run(bert_lower_runs, bert_lower_runs_count, cp, &out[0])) return 1;
    const bert_map_multi *m = map_multi(bert_lower_multi, bert_lower_multi_count, cp);
    if (m) {
        for (uint32_t i = 0; i < m->count; i++) out[i] = m->out[i];
        return m->count;
    }
    out[0] = cp;
    return 1;
}
