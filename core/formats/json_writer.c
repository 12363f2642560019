/* The JSON writer: compact or indented output into an lm_buffer, with
 * string escaping and shortest round-trip numbers. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_internal.h"
#include "lmcore/json.h"

/* State packed in the public struct: for each nesting level d (0 = top level,
 * at most WRITER_MAX_DEPTH), bit d of comma_bits says the level already holds
 * an element (so the next one needs a comma) and bit 32+d says the level is an
 * object.  need_comma is set between a key and its value.  The first misuse or
 * allocation failure is kept in w->status and every later call is a no-op. */

#define WRITER_MAX_DEPTH 31

static void writer_fail(lm_json_writer *w, const char *problem) {
    if (w->status == LM_OK) w->status = lm_error_set(LM_ERR_INVALID, "JSON writer: %s", problem);
}

static void write_raw(lm_json_writer *w, const char *s, size_t n) {
    if (w->status == LM_OK) w->status = lm_buffer_append(w->out, s, n);
}

static void write_newline_indent(lm_json_writer *w) {
    if (w->indent <= 0 || w->status != LM_OK) return;
    write_raw(w, "\n", 1);
    for (int i = 0; i < w->depth * w->indent; i++) write_raw(w, " ", 1);
}

static int level_is_object(const lm_json_writer *w) { return w->depth > 0 && (w->comma_bits >> (32 + w->depth) & 1); }

/* Writes the separator before an element of the current level. */
static void start_element(lm_json_writer *w) {
    uint64_t has = 1ull << w->depth;
    if (w->depth == 0 && (w->comma_bits & has)) {
        writer_fail(w, "more than one top-level value");
        return;
    }
    if (w->comma_bits & has) write_raw(w, ",", 1);
    w->comma_bits |= has;
    if (w->depth > 0) write_newline_indent(w);
}

/* Called before every value: checks it has a place to go. */
static int begin_value(lm_json_writer *w) {
    if (w->status != LM_OK) return 0;
    if (w->need_comma) {
        w->need_comma = 0; /* the value of the key just written */
        return 1;
    }
    if (level_is_object(w)) {
        writer_fail(w, "value inside an object without a key (call lm_json_key first)");
        return 0;
    }
    start_element(w);
    return w->status == LM_OK;
}

void lm_json_writer_init(lm_json_writer *w, lm_buffer *out, int indent) {
    memset(w, 0, sizeof *w);
    w->out = out;
    w->indent = indent < 0 ? 0 : indent;
    w->status = out ? LM_OK : lm_error_set(LM_ERR_INVALID, "JSON writer: output buffer is NULL");
}

static void begin_container(lm_json_writer *w, char open, int is_object) {
    if (!begin_value(w)) return;
    if (w->depth >= WRITER_MAX_DEPTH) {
        writer_fail(w, "nesting deeper than 31 levels");
        return;
    }
    write_raw(w, &open, 1);
    w->depth++;
    w->comma_bits &= ~(1ull << w->depth);
    if (is_object)
        w->comma_bits |= 1ull << (32 + w->depth);
    else
        w->comma_bits &= ~(1ull << (32 + w->depth));
}

static void end_container(lm_json_writer *w, char close, int is_object) {
    if (w->status != LM_OK) return;
    if (w->depth == 0 || level_is_object(w) != is_object) {
        writer_fail(w, is_object ? "end_object without a matching begin_object"
                                 : "end_array without a matching begin_array");
        return;
    }
    if (w->need_comma) {
        writer_fail(w, "object closed after a key without its value");
        return;
    }
    int had_elements = (int)(w->comma_bits >> w->depth & 1);
    w->depth--;
    if (had_elements) write_newline_indent(w);
    write_raw(w, &close, 1);
}

void lm_json_begin_object(lm_json_writer *w) { begin_container(w, '{', 1); }
void lm_json_end_object(lm_json_writer *w) { end_container(w, '}', 1); }
void lm_json_begin_array(lm_json_writer *w) { begin_container(w, '[', 0); }
void lm_json_end_array(lm_json_writer *w) { end_container(w, ']', 0); }

static void write_escaped(lm_json_writer *w, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    write_raw(w, "\"", 1);
    size_t run = 0; /* start of the pending run of bytes copied verbatim */
    for (size_t i = 0; i < len && w->status == LM_OK;) {
        unsigned char c = u[i];
        const char *escape = NULL;
        char hex[8];
        size_t skip = 1;
        if (c == '"')
            escape = "\\\"";
        else if (c == '\\')
            escape = "\\\\";
        else if (c == '\n')
            escape = "\\n";
        else if (c == '\r')
            escape = "\\r";
        else if (c == '\t')
            escape = "\\t";
        else if (c == '\b')
            escape = "\\b";
        else if (c == '\f')
            escape = "\\f";
        else if (c < 0x20) {
            snprintf(hex, sizeof hex, "\\u%04x", c);
            escape = hex;
        } else if (c >= 0x80) {
            size_t n = lm_json_utf8_sequence_length(u + i, len - i);
            if (n == 0)
                escape = "\\ufffd";
            else
                skip = n;
        }
        if (escape) {
            write_raw(w, s + run, i - run);
            write_raw(w, escape, strlen(escape));
            run = i + 1;
        }
        i += skip;
    }
    write_raw(w, s + run, len - run);
    write_raw(w, "\"", 1);
}

void lm_json_key(lm_json_writer *w, const char *key) {
    if (w->status != LM_OK) return;
    if (!level_is_object(w)) {
        writer_fail(w, "lm_json_key outside an object");
        return;
    }
    if (w->need_comma) {
        writer_fail(w, "two keys in a row without a value");
        return;
    }
    if (!key) {
        writer_fail(w, "NULL key");
        return;
    }
    start_element(w);
    write_escaped(w, key, strlen(key));
    write_raw(w, w->indent > 0 ? ": " : ":", w->indent > 0 ? 2 : 1);
    w->need_comma = 1;
}

void lm_json_write_string(lm_json_writer *w, const char *s, size_t len) {
    if (!s && len) {
        writer_fail(w, "NULL string");
        return;
    }
    if (begin_value(w)) write_escaped(w, s ? s : "", len);
}

void lm_json_write_cstr(lm_json_writer *w, const char *s) {
    if (!s)
        lm_json_write_null(w);
    else
        lm_json_write_string(w, s, strlen(s));
}

void lm_json_write_int(lm_json_writer *w, int64_t v) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)v);
    if (begin_value(w)) write_raw(w, buf, (size_t)n);
}

static int round_trips(double v, int precision, char *buf, size_t cap) {
    snprintf(buf, cap, "%.*g", precision, v);
    return strtod(buf, NULL) == v;
}

void lm_json_write_number(lm_json_writer *w, double v) {
    if (!isfinite(v)) {
        lm_json_write_null(w);
        return;
    }
    /* The shortest %.Ng that reads back as the same double: 17 digits always
     * do; most values need far fewer, found by bisection below 15. */
    char buf[328]; /* %.17g of any double fits; gcc cannot prove the bound for %.*g */
    int precision = 17;
    if (round_trips(v, 15, buf, sizeof buf)) {
        int lo = 1, hi = 15;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (round_trips(v, mid, buf, sizeof buf))
                hi = mid;
            else
                lo = mid + 1;
        }
        precision = lo;
    } else if (round_trips(v, 16, buf, sizeof buf)) {
        precision = 16;
    }
    snprintf(buf, sizeof buf, "%.*g", precision, v);
    /* %g switches to an exponent once it exceeds the precision: 100 is
     * "1e+02" at precision 1.  Spelled out in full it may be shorter. */
    const char *e = strchr(buf, 'e');
    int exponent = e ? atoi(e + 1) : -1;
    if (exponent >= precision && exponent < 17) {
        char full[40];
        snprintf(full, sizeof full, "%.*g", exponent + 1, v);
        if (strlen(full) < strlen(buf)) memcpy(buf, full, strlen(full) + 1);
    }
    /* printf and strtod follow the locale; JSON always uses '.'. */
    char point = localeconv()->decimal_point[0];
    if (point != '.') {
        char *p = strchr(buf, point);
        if (p) *p = '.';
    }
    if (begin_value(w)) write_raw(w, buf, strlen(buf));
}

void lm_json_write_bool(lm_json_writer *w, int v) {
    if (begin_value(w)) write_raw(w, v ? "true" : "false", v ? 4 : 5);
}

void lm_json_write_null(lm_json_writer *w) {
    if (begin_value(w)) write_raw(w, "null", 4);
}

lm_status lm_json_writer_finish(lm_json_writer *w) {
    if (w->status != LM_OK) return w->status;
    if (w->need_comma)
        writer_fail(w, "a key was written without its value");
    else if (w->depth != 0)
        writer_fail(w, "an array or object was left open");
    return w->status;
}

void lm_json_write_value(lm_json_writer *w, const lm_json *v) {
    if (w->status != LM_OK) return;
    switch (lm_json_type_of(v)) {
    case LM_JSON_NULL: lm_json_write_null(w); break;
    case LM_JSON_BOOL: lm_json_write_bool(w, lm_json_bool(v)); break;
    case LM_JSON_NUMBER:
        if (lm_json_is_integer(v)) lm_json_write_int(w, lm_json_int(v));
        else lm_json_write_number(w, lm_json_number(v));
        break;
    case LM_JSON_STRING: {
        size_t len;
        const char *s = lm_json_string(v, &len);
        lm_json_write_string(w, s, len);
        break;
    }
    case LM_JSON_ARRAY:
        lm_json_begin_array(w);
        for (size_t i = 0; i < lm_json_size(v); i++) lm_json_write_value(w, lm_json_at(v, i));
        lm_json_end_array(w);
        break;
    case LM_JSON_OBJECT:
        lm_json_begin_object(w);
        for (size_t i = 0; i < lm_json_size(v); i++) {
            size_t key_len;
            const char *key = lm_json_key_at(v, i, &key_len);
            char stack_key[256];
            /* lm_json_key takes a C string: keys are copied (escapes kept by the writer). */
            if (key_len < sizeof stack_key) {
                memcpy(stack_key, key, key_len);
                stack_key[key_len] = '\0';
                lm_json_key(w, stack_key);
            } else {
                char *heap = malloc(key_len + 1);
                if (!heap) {
                    w->status = lm_error_set(LM_ERR_NOMEM, "JSON writer: out of memory");
                    return;
                }
                memcpy(heap, key, key_len);
                heap[key_len] = '\0';
                lm_json_key(w, heap);
                free(heap);
            }
            lm_json_write_value(w, lm_json_at(v, i));
        }
        lm_json_end_object(w);
        break;
    }
}
