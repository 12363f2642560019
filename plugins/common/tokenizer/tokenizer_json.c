/* Hugging Face tokenizer.json pieces shared by the tokenizer plugins (see
 * tokenizer_json.h). */
#include "tokenizer_json.h"

const char *tokenizer_json_type(const lm_json *obj) {
    const lm_json *type = lm_json_get(obj, "type"); /* NULL for a non-object */
    return lm_json_type_of(type) == LM_JSON_STRING ? lm_json_string(type, NULL) : NULL;
}

void tokenizer_json_begin(lm_json_writer *w) {
    lm_json_begin_object(w);
    lm_json_key(w, "version");
    lm_json_write_cstr(w, "1.0");
    lm_json_key(w, "truncation");
    lm_json_write_null(w);
    lm_json_key(w, "padding");
    lm_json_write_null(w);
}

void tokenizer_json_added_token(lm_json_writer *w, int64_t id, const char *content, size_t len,
                                tokenizer_json_token_flags flags) {
    lm_json_begin_object(w);
    lm_json_key(w, "id");
    lm_json_write_int(w, id);
    lm_json_key(w, "content");
    lm_json_write_string(w, content, len);
    static const char *const names[] = {"single_word", "lstrip", "rstrip", "normalized", "special"};
    const int values[] = {flags.single_word, flags.lstrip, flags.rstrip, flags.normalized, flags.special};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        lm_json_key(w, names[k]);
        lm_json_write_bool(w, values[k]);
    }
    lm_json_end_object(w);
}

lm_status tokenizer_json_save(lm_json_writer *w, lm_buffer *text, const char *path) {
    LM_TRY(lm_json_writer_finish(w));
    LM_TRY(lm_buffer_append(text, "\n", 1));
    return lm_file_write_atomic(path, text->data, text->len);
}
