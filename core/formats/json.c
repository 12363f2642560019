/* A strict RFC 8259 JSON parser into an arena-allocated tree.
 *
 * Why an arena: a tokenizer.json holds ~100k strings; one malloc each would
 * dominate parse time and make lm_json_free a long walk.  Every node, string
 * and member table of a document lives in a few large chunks freed at once.
 *
 * Children of an array or object are parsed onto a shared scratch stack and
 * copied into one contiguous arena array when the container closes, so that
 * lm_json_at is an index and nodes are small.  Objects with more than
 * JSON_INDEX_MIN members get an open-addressing hash index built at parse
 * time (tokenizer vocabularies have 50k members and are looked up in loops);
 * building it eagerly keeps lookups const and thread-safe.  Duplicate keys
 * are rejected: RFC 8259 leaves their meaning undefined, and for safetensors
 * headers a duplicate tensor name would be silently ambiguous.
 *
 * Line and column are only computed when an error is reported (a rescan of
 * the input up to the failure), so the hot path tracks a single offset. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_internal.h"
#include "lmcore/hash.h"
#include "lmcore/json.h"

#define JSON_MAX_DEPTH 256
#define JSON_INDEX_MIN 16
#define JSON_CHUNK_MIN 1024
#define JSON_CHUNK_MAX (1u << 20)

typedef struct json_key {
    const char *text;
    size_t len;
} json_key;

struct lm_json {
    uint8_t type;       /* lm_json_type */
    uint8_t is_integer; /* number written as an integer that fits int64 */
    uint8_t boolean;
    uint32_t index_mask; /* objects: hash index capacity - 1, 0 when unindexed */
    union {
        struct {
            double value;
            int64_t integer;
        } number;
        struct {
            const char *text;
            size_t len;
        } string;
        struct {
            lm_json *items;
            json_key *keys;  /* objects only */
            uint32_t *index; /* member index + 1, 0 = empty slot */
            size_t count;
        } container;
    } u;
};

typedef struct json_chunk {
    struct json_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} json_chunk;

/* The root node comes first so that lm_json_free(root) finds the arena. */
typedef struct json_document {
    lm_json root;
    json_chunk *chunks;
    size_t next_chunk_size;
} json_document;

typedef struct scratch_key {
    json_key key;
    size_t pos; /* where the key starts, for duplicate-key errors */
} scratch_key;

typedef struct json_parser {
    const unsigned char *text;
    size_t len, pos;
    const char *source;
    json_document *doc;
    lm_json *values; /* scratch stack of finished children */
    size_t n_values, cap_values;
    scratch_key *keys;
    size_t n_keys, cap_keys;
    char decimal_point; /* the C library's, for strtod under any locale */
} json_parser;

/* ---- arena ----------------------------------------------------------------- */

static void *arena_alloc(json_document *doc, size_t size) {
    size = (size + 15) & ~(size_t)15;
    json_chunk *c = doc->chunks;
    if (!c || c->cap - c->used < size) {
        size_t cap = doc->next_chunk_size;
        if (cap < size) cap = size;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = doc->chunks;
        c->used = 0;
        c->cap = cap;
        doc->chunks = c;
        if (doc->next_chunk_size < JSON_CHUNK_MAX) doc->next_chunk_size *= 2;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

void lm_json_free(lm_json *root) {
    if (!root) return;
    json_document *doc = (json_document *)root;
    for (json_chunk *c = doc->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(doc);
}

/* ---- errors ------------------------------------------------------------------ */

static lm_status parse_error(json_parser *p, size_t pos, const char *fmt, ...) LM_PRINTF(3, 4);

static lm_status parse_error(json_parser *p, size_t pos, const char *fmt, ...) {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < pos && i < p->len; i++) {
        if (p->text[i] == '\n') {
            line++;
            column = 1;
        } else if ((p->text[i] & 0xC0) != 0x80) { /* count characters, not bytes */
            column++;
        }
    }
    char problem[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    return lm_error_set(LM_ERR_FORMAT, "%s:%zu:%zu: %s", p->source, line, column, problem);
}

/* "'x'", "byte 0xC3" or "end of input": what the parser found at `pos`. */
static const char *describe_at(const json_parser *p, size_t pos, char *buf, size_t cap) {
    if (pos >= p->len) return "end of input";
    unsigned char c = p->text[pos];
    if (c >= 0x20 && c < 0x7F)
        snprintf(buf, cap, "'%c'", c);
    else
        snprintf(buf, cap, "byte 0x%02X", c);
    return buf;
}

static lm_status unexpected(json_parser *p, const char *expected) {
    char what[32];
    return parse_error(p, p->pos, "unexpected %s, expected %s", describe_at(p, p->pos, what, sizeof what), expected);
}

/* ---- scanning helpers ------------------------------------------------------------ */

static inline void skip_whitespace(json_parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->text[p->pos];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
        p->pos++;
    }
}

size_t lm_json_utf8_sequence_length(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) n = 3;
    else if (c >= 0xF0 && c <= 0xF4) n = 4;
    else return 0; /* continuation byte, overlong lead C0/C1, or F5..FF */
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c == 0xE0) lo = 0xA0;           /* overlong 3-byte form */
    if (c == 0xED) hi = 0x9F;           /* UTF-16 surrogates */
    if (c == 0xF0) lo = 0x90;           /* overlong 4-byte form */
    if (c == 0xF4) hi = 0x8F;           /* above U+10FFFF */
    if (avail < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(const json_parser *p, size_t pos, uint32_t *out) {
    if (p->len - pos < 4) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(p->text[pos + (size_t)i]);
        if (h < 0) return 0;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return 1;
}

static size_t encode_utf8(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- strings ------------------------------------------------------------------ */

/* Decodes the escapes of a validated string body [begin, end) into `out`
 * (never longer than the body); returns the decoded length or sets an error. */
static lm_status decode_escapes(json_parser *p, size_t begin, size_t end, char *out, size_t *out_len) {
    size_t n = 0;
    for (size_t i = begin; i < end;) {
        unsigned char c = p->text[i];
        if (c != '\\') {
            out[n++] = (char)c;
            i++;
            continue;
        }
        unsigned char e = p->text[i + 1]; /* the scan guaranteed a byte here */
        switch (e) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            uint32_t cp, low;
            if (!read_hex4(p, i + 2, &cp) || i + 6 > end)
                return parse_error(p, i, "invalid \\u escape: expected 4 hexadecimal digits");
            size_t width = 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return parse_error(p, i, "lone low surrogate \\u%04X (not a Unicode character)", (unsigned)cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (i + 12 > end || p->text[i + 6] != '\\' || p->text[i + 7] != 'u' || !read_hex4(p, i + 8, &low) ||
                    low < 0xDC00 || low > 0xDFFF)
                    return parse_error(p, i, "high surrogate \\u%04X not followed by a low surrogate \\uDC00-\\uDFFF",
                                       (unsigned)cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                width = 12;
            }
            n += encode_utf8(cp, out + n);
            i += width;
            continue;
        }
        default: {
            char what[32];
            return parse_error(p, i, "invalid escape \\%s in string (valid: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)",
                               describe_at(p, i + 1, what, sizeof what));
        }
        }
        i += 2;
    }
    *out_len = n;
    return LM_OK;
}

/* p->pos is at the opening quote.  On success *text is a NUL-terminated arena
 * copy and p->pos is past the closing quote. */
static lm_status parse_string(json_parser *p, const char **text, size_t *len) {
    size_t begin = p->pos + 1, i = begin;
    int has_escapes = 0;
    for (;;) {
        /* Fast path: plain ASCII, the bulk of every real file. */
        while (i < p->len) {
            unsigned char c = p->text[i];
            if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
            i++;
        }
        if (i >= p->len) return parse_error(p, p->pos, "unterminated string");
        unsigned char c = p->text[i];
        if (c == '"') break;
        if (c == '\\') {
            if (i + 1 >= p->len) return parse_error(p, p->pos, "unterminated string");
            has_escapes = 1;
            i += 2;
        } else if (c < 0x20) {
            return parse_error(p, i, "unescaped control character U+%04X in string (write it as \\u%04X)", c, c);
        } else {
            size_t n = lm_json_utf8_sequence_length(p->text + i, p->len - i);
            if (n == 0) return parse_error(p, i, "invalid UTF-8 byte 0x%02X in string", c);
            i += n;
        }
    }
    size_t raw_len = i - begin;
    char *out = arena_alloc(p->doc, raw_len + 1);
    if (!out) return lm_error_set(LM_ERR_NOMEM, "%s: out of memory parsing JSON", p->source);
    if (has_escapes) {
        LM_TRY(decode_escapes(p, begin, i, out, len));
    } else {
        memcpy(out, p->text + begin, raw_len);
        *len = raw_len;
    }
    out[*len] = '\0';
    *text = out;
    p->pos = i + 1;
    return LM_OK;
}

/* ---- numbers ------------------------------------------------------------------ */

static size_t scan_digits(const json_parser *p, size_t i) {
    while (i < p->len && p->text[i] >= '0' && p->text[i] <= '9') i++;
    return i;
}

static lm_status parse_number(json_parser *p, lm_json *out) {
    size_t begin = p->pos, i = begin;
    int negative = 0;
    if (p->text[i] == '-') {
        negative = 1;
        i++;
    }
    if (i >= p->len || p->text[i] < '0' || p->text[i] > '9') {
        char what[32];
        return parse_error(p, i, "invalid number: expected a digit, found %s", describe_at(p, i, what, sizeof what));
    }
    if (p->text[i] == '0' && i + 1 < p->len && p->text[i + 1] >= '0' && p->text[i + 1] <= '9')
        return parse_error(p, i, "invalid number: leading zeros are not allowed");
    size_t int_end = scan_digits(p, i);
    size_t end = int_end;
    int is_integral = 1;
    if (end < p->len && p->text[end] == '.') {
        size_t frac_end = scan_digits(p, end + 1);
        if (frac_end == end + 1) return parse_error(p, end + 1, "invalid number: expected a digit after '.'");
        end = frac_end;
        is_integral = 0;
    }
    if (end < p->len && (p->text[end] == 'e' || p->text[end] == 'E')) {
        size_t j = end + 1;
        if (j < p->len && (p->text[j] == '+' || p->text[j] == '-')) j++;
        size_t exp_end = scan_digits(p, j);
        if (exp_end == j) return parse_error(p, j, "invalid number: expected a digit in the exponent");
        end = exp_end;
        is_integral = 0;
    }
    out->type = LM_JSON_NUMBER;
    p->pos = end;
    if (is_integral && int_end - i <= 19) {
        uint64_t magnitude = 0;
        for (size_t k = i; k < int_end; k++) magnitude = magnitude * 10 + (uint64_t)(p->text[k] - '0');
        uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (magnitude <= limit) {
            out->is_integer = 1;
            out->u.number.integer = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
            out->u.number.value = negative ? -(double)magnitude : (double)magnitude;
            return LM_OK;
        }
    }
    /* strtod needs a NUL-terminated copy, spelled with the locale's decimal point. */
    char small[64], *copy = small;
    size_t n = end - begin;
    if (n >= sizeof small && !(copy = malloc(n + 1)))
        return lm_error_set(LM_ERR_NOMEM, "%s: out of memory parsing JSON", p->source);
    memcpy(copy, p->text + begin, n);
    copy[n] = '\0';
    if (p->decimal_point != '.') {
        char *dot = strchr(copy, '.');
        if (dot) *dot = p->decimal_point;
    }
    double value = strtod(copy, NULL);
    if (copy != small) free(copy);
    if (isinf(value)) return parse_error(p, begin, "number out of the range of a double");
    out->u.number.value = value;
    return LM_OK;
}

/* ---- containers ---------------------------------------------------------------- */

static lm_status parse_value(json_parser *p, lm_json *out, int depth);

static lm_status push_value(json_parser *p, const lm_json *v) {
    if (p->n_values == p->cap_values) {
        size_t cap = p->cap_values ? p->cap_values * 2 : 256;
        lm_json *grown = realloc(p->values, cap * sizeof *grown);
        if (!grown) return lm_error_set(LM_ERR_NOMEM, "%s: out of memory parsing JSON", p->source);
        p->values = grown;
        p->cap_values = cap;
    }
    p->values[p->n_values++] = *v;
    return LM_OK;
}

static lm_status push_key(json_parser *p, const char *text, size_t len, size_t pos) {
    if (p->n_keys == p->cap_keys) {
        size_t cap = p->cap_keys ? p->cap_keys * 2 : 256;
        scratch_key *grown = realloc(p->keys, cap * sizeof *grown);
        if (!grown) return lm_error_set(LM_ERR_NOMEM, "%s: out of memory parsing JSON", p->source);
        p->keys = grown;
        p->cap_keys = cap;
    }
    p->keys[p->n_keys++] = (scratch_key){{text, len}, pos};
    return LM_OK;
}

/* Moves the children parsed since `base` from the scratch stack into the arena. */
static lm_status take_children(json_parser *p, lm_json *out, size_t base) {
    size_t count = p->n_values - base;
    out->u.container.count = count;
    out->u.container.items = NULL;
    if (count == 0) return LM_OK;
    if (count > UINT32_MAX / 4) return parse_error(p, p->pos, "container with more than 1e9 elements");
    lm_json *items = arena_alloc(p->doc, count * sizeof *items);
    if (!items) return lm_error_set(LM_ERR_NOMEM, "%s: out of memory parsing JSON", p->source);
    memcpy(items, p->values + base, count * sizeof *items);
    out->u.container.items = items;
    p->n_values = base;
    return LM_OK;
}

static int same_key(const json_key *a, const char *text, size_t len) {
    return a->len == len && memcmp(a->text, text, len) == 0;
}

static lm_status duplicate_key(json_parser *p, const scratch_key *k) {
    return parse_error(p, k->pos, "duplicate key \"%.*s\" in object", (int)(k->key.len > 200 ? 200 : k->key.len),
                       k->key.text);
}

/* Copies the keys since `key_base`, rejects duplicates and, for large
 * objects, builds the hash index used by lm_json_get. */
static lm_status finish_object(json_parser *p, lm_json *out, size_t key_base) {
    size_t count = p->n_keys - key_base;
    out->u.container.keys = NULL;
    out->u.container.index = NULL;
    out->index_mask = 0;
    if (count == 0) return LM_OK; /* before touching p->keys, which may be NULL */
    const scratch_key *scratch = p->keys + key_base;
    json_key *keys = arena_alloc(p->doc, count * sizeof *keys);
    if (!keys) return lm_error_set(LM_ERR_NOMEM, "%s: out of memory parsing JSON", p->source);
    for (size_t i = 0; i < count; i++) keys[i] = scratch[i].key;
    out->u.container.keys = keys;
    p->n_keys = key_base;
    if (count <= JSON_INDEX_MIN) {
        for (size_t i = 1; i < count; i++)
            for (size_t j = 0; j < i; j++)
                if (same_key(&keys[j], keys[i].text, keys[i].len)) return duplicate_key(p, &scratch[i]);
        return LM_OK;
    }
    size_t cap = 64;
    while (cap < count * 2) cap *= 2;
    uint32_t *index = arena_alloc(p->doc, cap * sizeof *index);
    if (!index) return lm_error_set(LM_ERR_NOMEM, "%s: out of memory parsing JSON", p->source);
    memset(index, 0, cap * sizeof *index);
    for (size_t i = 0; i < count; i++) {
        size_t slot = (size_t)lm_hash64(keys[i].text, keys[i].len, LM_HASH_SEED) & (cap - 1);
        while (index[slot]) {
            if (same_key(&keys[index[slot] - 1], keys[i].text, keys[i].len)) return duplicate_key(p, &scratch[i]);
            slot = (slot + 1) & (cap - 1);
        }
        index[slot] = (uint32_t)(i + 1);
    }
    out->u.container.index = index;
    out->index_mask = (uint32_t)(cap - 1);
    return LM_OK;
}

static lm_status parse_array(json_parser *p, lm_json *out, int depth) {
    size_t base = p->n_values;
    out->type = LM_JSON_ARRAY;
    p->pos++;
    skip_whitespace(p);
    if (p->pos < p->len && p->text[p->pos] == ']') {
        p->pos++;
        return take_children(p, out, base);
    }
    for (;;) {
        lm_json item;
        LM_TRY(parse_value(p, &item, depth));
        LM_TRY(push_value(p, &item));
        skip_whitespace(p);
        if (p->pos < p->len && p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->text[p->pos] == ']') break;
        return unexpected(p, "',' or ']' in array");
    }
    p->pos++;
    return take_children(p, out, base);
}

static lm_status parse_object(json_parser *p, lm_json *out, int depth) {
    size_t base = p->n_values, key_base = p->n_keys;
    out->type = LM_JSON_OBJECT;
    p->pos++;
    skip_whitespace(p);
    if (p->pos < p->len && p->text[p->pos] == '}') {
        p->pos++;
        LM_TRY(take_children(p, out, base));
        return finish_object(p, out, key_base);
    }
    for (;;) {
        skip_whitespace(p);
        if (p->pos >= p->len || p->text[p->pos] != '"') return unexpected(p, "a string key in object");
        size_t key_pos = p->pos, key_len;
        const char *key;
        LM_TRY(parse_string(p, &key, &key_len));
        LM_TRY(push_key(p, key, key_len, key_pos));
        skip_whitespace(p);
        if (p->pos >= p->len || p->text[p->pos] != ':') return unexpected(p, "':' after object key");
        p->pos++;
        lm_json value;
        LM_TRY(parse_value(p, &value, depth));
        LM_TRY(push_value(p, &value));
        skip_whitespace(p);
        if (p->pos < p->len && p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->text[p->pos] == '}') break;
        return unexpected(p, "',' or '}' in object");
    }
    p->pos++;
    LM_TRY(take_children(p, out, base));
    return finish_object(p, out, key_base);
}

static lm_status parse_literal(json_parser *p, const char *word, lm_json *out, lm_json_type type, int boolean) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->text + p->pos, word, n) != 0) return unexpected(p, "a JSON value");
    out->type = (uint8_t)type;
    out->boolean = (uint8_t)boolean;
    p->pos += n;
    return LM_OK;
}

static lm_status parse_value(json_parser *p, lm_json *out, int depth) {
    memset(out, 0, sizeof *out);
    skip_whitespace(p);
    if (p->pos >= p->len) return unexpected(p, "a JSON value");
    unsigned char c = p->text[p->pos];
    switch (c) {
    case '{':
    case '[':
        if (depth >= JSON_MAX_DEPTH)
            return parse_error(p, p->pos, "nesting deeper than %d arrays/objects", JSON_MAX_DEPTH);
        return c == '{' ? parse_object(p, out, depth + 1) : parse_array(p, out, depth + 1);
    case '"': out->type = LM_JSON_STRING; return parse_string(p, &out->u.string.text, &out->u.string.len);
    case 't': return parse_literal(p, "true", out, LM_JSON_BOOL, 1);
    case 'f': return parse_literal(p, "false", out, LM_JSON_BOOL, 0);
    case 'n': return parse_literal(p, "null", out, LM_JSON_NULL, 0);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, out);
        return unexpected(p, "a JSON value");
    }
}

lm_status lm_json_parse(const char *text, size_t len, const char *source, lm_json **out) {
    if (!out) return lm_error_set(LM_ERR_INVALID, "lm_json_parse: out is NULL");
    *out = NULL;
    if (!text && len) return lm_error_set(LM_ERR_INVALID, "lm_json_parse: text is NULL");
    json_document *doc = calloc(1, sizeof *doc);
    if (!doc) return lm_error_set(LM_ERR_NOMEM, "out of memory parsing JSON");
    /* Size the first chunk after the input: one chunk for most documents. */
    size_t first = len + len / 2 + JSON_CHUNK_MIN;
    doc->next_chunk_size = first < JSON_CHUNK_MAX ? first : JSON_CHUNK_MAX;
    json_parser p = {
        .text = (const unsigned char *)(text ? text : ""),
        .len = len,
        .source = source ? source : "<json>",
        .doc = doc,
        .decimal_point = localeconv()->decimal_point[0],
    };
    lm_status status = LM_OK;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        status = parse_error(&p, 0, "UTF-8 byte order mark at the start: JSON must not begin with one (remove it)");
    } else {
        status = parse_value(&p, &doc->root, 0);
        if (status == LM_OK) {
            skip_whitespace(&p);
            if (p.pos < p.len) status = unexpected(&p, "end of input after the JSON value");
        }
    }
    free(p.values);
    free(p.keys);
    if (status != LM_OK) {
        lm_json_free(&doc->root);
        return status;
    }
    *out = &doc->root;
    return LM_OK;
}

lm_status lm_json_parse_file(const char *path, lm_json **out) {
    if (out) *out = NULL;
    lm_buffer buf = {0};
    lm_status status = lm_file_read(path, &buf);
    if (status == LM_OK) status = lm_json_parse(buf.data, buf.len, path, out);
    lm_buffer_free(&buf);
    return status;
}

/* ---- accessors ------------------------------------------------------------------ */

lm_json_type lm_json_type_of(const lm_json *v) { return v ? (lm_json_type)v->type : LM_JSON_NULL; }

int lm_json_bool(const lm_json *v) { return v && v->type == LM_JSON_BOOL && v->boolean; }

double lm_json_number(const lm_json *v) { return v && v->type == LM_JSON_NUMBER ? v->u.number.value : 0.0; }

int lm_json_is_integer(const lm_json *v) { return v && v->type == LM_JSON_NUMBER && v->is_integer; }

int64_t lm_json_int(const lm_json *v) {
    if (!v || v->type != LM_JSON_NUMBER) return 0;
    if (v->is_integer) return v->u.number.integer;
    /* A converted double outside int64 is undefined behaviour: 1e300
     * saturates instead (and fails any range check that follows). */
    const double d = v->u.number.value;
    if (!(d == d)) return 0;
    if (d >= 9.2233720368547758e18) return INT64_MAX;
    if (d < -9.2233720368547758e18) return INT64_MIN;
    return (int64_t)d;
}

const char *lm_json_string(const lm_json *v, size_t *len) {
    if (!v || v->type != LM_JSON_STRING) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = v->u.string.len;
    return v->u.string.text;
}

size_t lm_json_size(const lm_json *v) {
    return v && (v->type == LM_JSON_ARRAY || v->type == LM_JSON_OBJECT) ? v->u.container.count : 0;
}

const lm_json *lm_json_at(const lm_json *v, size_t index) {
    return index < lm_json_size(v) ? &v->u.container.items[index] : NULL;
}

const char *lm_json_key_at(const lm_json *v, size_t index, size_t *key_len) {
    if (!v || v->type != LM_JSON_OBJECT || index >= v->u.container.count) {
        if (key_len) *key_len = 0;
        return NULL;
    }
    if (key_len) *key_len = v->u.container.keys[index].len;
    return v->u.container.keys[index].text;
}

const lm_json *lm_json_get(const lm_json *object, const char *key) {
    if (!object || object->type != LM_JSON_OBJECT || !key) return NULL;
    size_t len = strlen(key), count = object->u.container.count;
    const json_key *keys = object->u.container.keys;
    if (!object->u.container.index) {
        for (size_t i = 0; i < count; i++)
            if (same_key(&keys[i], key, len)) return &object->u.container.items[i];
        return NULL;
    }
    const uint32_t *index = object->u.container.index;
    size_t mask = object->index_mask;
    for (size_t slot = (size_t)lm_hash64(key, len, LM_HASH_SEED) & mask; index[slot]; slot = (slot + 1) & mask)
        if (same_key(&keys[index[slot] - 1], key, len)) return &object->u.container.items[index[slot] - 1];
    return NULL;
}
