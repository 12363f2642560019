/* Lua userdata for plugin instances: lm.tokenizer, lm.dataset,
 * lm.architecture (alias lm.model), lm.objective, lm.logger.
 * Every object has __gc and __close; close() is idempotent; using a closed
 * object raises. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_bindings.h"

void lm_lua_object_close(lm_object *object) {
    if (object->self) lm_plugin_release(object->plugin, object->self);
    object->self = NULL;
    lm_config_destroy(object->config);
    object->config = NULL;
}

static int object_close(lua_State *L) {
    lm_object *object = lua_touserdata(L, 1);
    if (object) lm_lua_object_close(object);
    return 0;
}

static int object_tostring(lua_State *L) {
    lm_object *object = lua_touserdata(L, 1);
    if (!object->plugin) lua_pushstring(L, "lmcore object (unset)");
    else
        lua_pushfstring(L, "%s '%s'%s", lm_plugin_kind_name(object->plugin->kind), object->plugin->name,
                        object->self ? "" : " (closed)");
    return 1;
}

static int object_name(lua_State *L) {
    lm_object *object = lua_touserdata(L, 1);
    lua_pushstring(L, object->plugin ? object->plugin->name : "?");
    return 1;
}

/* lm.<kind>(name, settings) */
int lm_lua_new_object(lua_State *L, lm_plugin_kind kind, const char *metatable) {
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 2); /* settings at 2, even when absent */
    const lm_plugin *plugin;
    if (lm_registry_find(lm_lua_registry(L), kind, name, &plugin) != LM_OK) return lm_lua_raise(L);
    lm_object *object = lua_newuserdatauv(L, sizeof *object, 1);
    memset(object, 0, sizeof *object);
    luaL_setmetatable(L, metatable);
    char owner[160];
    snprintf(owner, sizeof owner, "%s '%s'", lm_plugin_kind_name(kind), name);
    object->config = lm_lua_to_config(L, 2, owner); /* raises on bad values; __gc cleans up */
    object->plugin = plugin;
    if (lm_plugin_instantiate(plugin, object->config, &object->self) != LM_OK) {
        lm_config_destroy(object->config);
        object->config = NULL;
        return lm_lua_raise(L);
    }
    return 1;
}

static int new_tokenizer(lua_State *L) { return lm_lua_new_object(L, LM_KIND_TOKENIZER, LM_TOKENIZER_MT); }
static int new_dataset(lua_State *L) { return lm_lua_new_object(L, LM_KIND_DATASET, LM_DATASET_MT); }
static int new_model(lua_State *L) { return lm_lua_new_object(L, LM_KIND_ARCHITECTURE, LM_MODEL_MT); }
static int new_objective(lua_State *L) { return lm_lua_new_object(L, LM_KIND_OBJECTIVE, LM_OBJECTIVE_MT); }
static int new_logger(lua_State *L) { return lm_lua_new_object(L, LM_KIND_LOGGER, LM_LOGGER_MT); }

/* ---- Tokenizer ------------------------------------------------------------ */

static int push_ids(lua_State *L, const int32_t *ids, size_t n) {
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* tok:encode(text [, {add_special=bool}]) -> ids, attention_mask */
static int tokenizer_encode(lua_State *L) {
    lm_object *tok = lm_lua_check_object(L, 1, LM_TOKENIZER_MT);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    /* tok:encode(text [, add_special | {add_special = bool}]) */
    int add_special = 1;
    if (lua_istable(L, 3)) {
        static const char *const known[] = {"add_special", NULL};
        lm_lua_check_options(L, 3, "tokenizer:encode", known);
        add_special = lm_lua_bool_option(L, 3, "tokenizer:encode", "add_special", 1);
    } else if (lua_isboolean(L, 3)) {
        add_special = lua_toboolean(L, 3);
    } else if (!lua_isnoneornil(L, 3)) {
        char given[96];
        lm_lua_describe_value(L, 3, given, sizeof given);
        return lm_lua_error(L, "tokenizer:encode: expected add_special as a boolean or {add_special = boolean}, got %s",
                            given);
    }
    lm_ids ids = {0};
    if (tok->plugin->vtable.tokenizer.encode(tok->self, text, len, add_special, &ids) != LM_OK) {
        lm_ids_free(&ids);
        return lm_lua_raise(L);
    }
    push_ids(L, ids.data, ids.len);
    lua_createtable(L, (int)ids.len, 0);
    for (size_t i = 0; i < ids.len; i++) {
        lua_pushinteger(L, 1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lm_ids_free(&ids);
    return 2;
}

/* Reads a Lua list of integers into ids (raises on non-integers). */
static void read_ids(lua_State *L, int index, lm_ids *ids) {
    if (!lua_istable(L, index)) {
        char given[96];
        lm_lua_describe_value(L, index, given, sizeof given);
        lm_lua_error(L, "tokenizer:decode: the ids must be a list of integers, got %s", given);
    }
    lua_Integer n = luaL_len(L, index);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, index, i);
        lua_Integer v;
        /* 64-bit check first: 4294967298 must not decode as id 2.  The
         * tokenizer then names ids outside its vocabulary. */
        if (!lm_lua_to_int_in(L, -1, 0, INT32_MAX, &v)) {
            char given[96];
            lm_lua_describe_value(L, -1, given, sizeof given);
            lm_ids_free(ids);
            lm_lua_error(L, "tokenizer:decode: token list item %d is %s, not a token id (an integer >= 0)", (int)i,
                         given);
        }
        lua_pop(L, 1);
        if (lm_ids_push(ids, (int32_t)v) != LM_OK) {
            lm_ids_free(ids);
            lm_lua_raise(L);
        }
    }
}

/* tok:decode(ids [, skip_special]) -> string */
static int tokenizer_decode(lua_State *L) {
    lm_object *tok = lm_lua_check_object(L, 1, LM_TOKENIZER_MT);
    lm_ids ids = {0};
    read_ids(L, 2, &ids);
    int skip_special = lua_toboolean(L, 3);
    lm_buffer text = {0};
    lm_status status = tok->plugin->vtable.tokenizer.decode(tok->self, ids.data, ids.len, skip_special, &text);
    lm_ids_free(&ids);
    if (status != LM_OK) {
        lm_buffer_free(&text);
        return lm_lua_raise(L);
    }
    lua_pushlstring(L, text.data ? text.data : "", text.len);
    lm_buffer_free(&text);
    return 1;
}

/* The rows of `split` of dataset `ds` (opened on first use by the plugin):
 * raises the dataset's error (unknown split, missing file, bad content).
 * The source lives as long as the dataset object. */
static const lm_text_source *split_rows(lua_State *L, lm_object *ds, const char *split) {
    const lm_text_source *rows = NULL;
    if (ds->plugin->vtable.dataset.open_split(ds->self, split, &rows) != LM_OK) lm_lua_raise(L);
    return rows;
}

/* tok:train(dataset, split) */
static int tokenizer_train(lua_State *L) {
    lm_object *tok = lm_lua_check_object(L, 1, LM_TOKENIZER_MT);
    lm_object *ds = lm_lua_check_object(L, 2, LM_DATASET_MT);
    const char *split = luaL_optstring(L, 3, "train");
    if (!tok->plugin->vtable.tokenizer.train)
        return lm_lua_error(L, "tokenizer '%s' cannot be trained (load one from a file instead)", tok->plugin->name);
    const lm_text_source *rows = split_rows(L, ds, split);
    if (tok->plugin->vtable.tokenizer.train(tok->self, rows) != LM_OK) return lm_lua_raise(L);
    lua_settop(L, 1);
    return 1;
}

static int tokenizer_save(lua_State *L) {
    lm_object *tok = lm_lua_check_object(L, 1, LM_TOKENIZER_MT);
    const char *path = luaL_checkstring(L, 2);
    if (tok->plugin->vtable.tokenizer.save(tok->self, path) != LM_OK) return lm_lua_raise(L);
    return 0;
}

static void set_int_field(lua_State *L, const char *name, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, name);
}

static int tokenizer_info(lua_State *L) {
    lm_object *tok = lm_lua_check_object(L, 1, LM_TOKENIZER_MT);
    lm_vocab_info info;
    memset(&info, 0, sizeof info);
    if (tok->plugin->vtable.tokenizer.info(tok->self, &info) != LM_OK) return lm_lua_raise(L);
    lua_newtable(L);
    set_int_field(L, "vocab_size", info.vocab_size);
    const struct {
        const char *name;
        int32_t id;
    } specials[] = {{"unk_id", info.unk_id}, {"pad_id", info.pad_id}, {"bos_id", info.bos_id},
                    {"eos_id", info.eos_id}, {"cls_id", info.cls_id}, {"sep_id", info.sep_id},
                    {"mask_id", info.mask_id}};
    for (size_t i = 0; i < sizeof specials / sizeof *specials; i++)
        if (specials[i].id >= 0) set_int_field(L, specials[i].name, specials[i].id);
    push_ids(L, info.special_ids, info.n_special);
    lua_setfield(L, -2, "special_ids");
    lua_pushstring(L, tok->plugin->name);
    lua_setfield(L, -2, "name");
    return 1;
}

static int tokenizer_vocab_size(lua_State *L) {
    lm_object *tok = lm_lua_check_object(L, 1, LM_TOKENIZER_MT);
    lm_vocab_info info;
    if (tok->plugin->vtable.tokenizer.info(tok->self, &info) != LM_OK) return lm_lua_raise(L);
    lua_pushinteger(L, info.vocab_size);
    return 1;
}

static int tokenizer_id_to_token(lua_State *L) {
    lm_object *tok = lm_lua_check_object(L, 1, LM_TOKENIZER_MT);
    lua_Integer id = lm_lua_int_arg(L, 2, "tokenizer:id_to_token", "the id", 0, INT32_MAX);
    if (!tok->plugin->vtable.tokenizer.id_to_token)
        return lm_lua_error(L, "tokenizer '%s' does not expose its tokens", tok->plugin->name);
    const char *token;
    size_t len;
    if (tok->plugin->vtable.tokenizer.id_to_token(tok->self, (int32_t)id, &token, &len) != LM_OK)
        return lm_lua_raise(L);
    lua_pushlstring(L, token, len);
    return 1;
}

static int tokenizer_token_to_id(lua_State *L) {
    lm_object *tok = lm_lua_check_object(L, 1, LM_TOKENIZER_MT);
    size_t len;
    const char *token = luaL_checklstring(L, 2, &len);
    if (!tok->plugin->vtable.tokenizer.token_to_id)
        return lm_lua_error(L, "tokenizer '%s' does not expose its tokens", tok->plugin->name);
    int32_t id;
    if (tok->plugin->vtable.tokenizer.token_to_id(tok->self, token, len, &id) != LM_OK) {
        lua_pushnil(L);
        lua_pushstring(L, lm_error_message());
        return 2;
    }
    lua_pushinteger(L, id);
    return 1;
}

/* ---- Dataset ------------------------------------------------------------- */

static int dataset_splits(lua_State *L) {
    lm_object *ds = lm_lua_check_object(L, 1, LM_DATASET_MT);
    size_t n;
    if (ds->plugin->vtable.dataset.split_count(ds->self, &n) != LM_OK) return lm_lua_raise(L);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        if (ds->plugin->vtable.dataset.split_name(ds->self, i, &name) != LM_OK) return lm_lua_raise(L);
        lua_pushstring(L, name);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int dataset_count(lua_State *L) {
    lm_object *ds = lm_lua_check_object(L, 1, LM_DATASET_MT);
    const char *split = luaL_checkstring(L, 2);
    lua_pushinteger(L, (lua_Integer)split_rows(L, ds, split)->count);
    return 1;
}

/* ds:row(split, index): index counts from 0, as in Hugging Face datasets. */
static int dataset_row(lua_State *L) {
    lm_object *ds = lm_lua_check_object(L, 1, LM_DATASET_MT);
    const char *split = luaL_checkstring(L, 2);
    const lm_text_source *rows = split_rows(L, ds, split);
    const size_t n = rows->count;
    if (n == 0) return lm_lua_error(L, "dataset:row: split '%s' has no rows", split);
    char what[160];
    snprintf(what, sizeof what, "dataset:row: the row index of split '%.60s' (from 0)", split);
    lua_Integer index = lm_lua_check_int(L, 3, what, 0, (lua_Integer)n - 1);
    const char *text;
    size_t len;
    if (rows->row(rows->ctx, (size_t)index, &text, &len) != LM_OK) return lm_lua_raise(L);
    lua_pushlstring(L, text, len);
    return 1;
}

/* ds:sample(split, n, seed) -> list of {index=, text=}: distinct rows drawn
 * with a seeded partial Fisher-Yates shuffle (counter-based RNG). */
static int dataset_sample(lua_State *L) {
    lm_object *ds = lm_lua_check_object(L, 1, LM_DATASET_MT);
    const char *split = luaL_checkstring(L, 2);
    lua_Integer want = lm_lua_opt_int_arg(L, 3, "dataset:sample", "the number of rows", 5, 0, LUA_MAXINTEGER);
    lua_Integer seed = lm_lua_opt_int_arg(L, 4, "dataset:sample", "seed", 42, 0, LUA_MAXINTEGER);
    const lm_text_source *rows = split_rows(L, ds, split);
    const size_t n = rows->count;
    if ((size_t)want > n) want = (lua_Integer)n;
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!order) return lm_lua_error(L, "out of memory sampling %d rows", (int)n);
    for (size_t i = 0; i < n; i++) order[i] = i;
    for (size_t i = 0; i < (size_t)want; i++) {
        size_t j = i + lm_rng_below((uint64_t)seed, LM_RNG_STREAM_DATA, i, (uint32_t)(n - i));
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    lua_createtable(L, (int)want, 0);
    for (lua_Integer i = 0; i < want; i++) {
        const char *text;
        size_t len;
        if (rows->row(rows->ctx, order[i], &text, &len) != LM_OK) {
            free(order);
            return lm_lua_raise(L);
        }
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, (lua_Integer)order[i]);
        lua_setfield(L, -2, "index");
        lua_pushlstring(L, text, len);
        lua_setfield(L, -2, "text");
        lua_rawseti(L, -2, i + 1);
    }
    free(order);
    return 1;
}

/* ---- Logger ---------------------------------------------------------------- */

/* logger:message(text [, level]) */
static int logger_message(lua_State *L) {
    lm_object *logger = lm_lua_check_object(L, 1, LM_LOGGER_MT);
    const char *text = luaL_checkstring(L, 2);
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    int level = lm_lua_check_choice(L, 3, "logger:message", "the level", "info", levels);
    lm_event event;
    memset(&event, 0, sizeof event);
    event.kind = LM_EVENT_MESSAGE;
    event.level = level;
    event.text = text;
    if (logger->plugin->vtable.logger.log(logger->self, &event) != LM_OK) return lm_lua_raise(L);
    return 0;
}

/* ---- registration --------------------------------------------------------- */

void lm_lua_define_class(lua_State *L, const char *name, const luaL_Reg *methods) {
    luaL_newmetatable(L, name);
    static const luaL_Reg common[] = {{"__gc", object_close},       {"__close", object_close},
                                      {"__tostring", object_tostring}, {NULL, NULL}};
    luaL_setfuncs(L, common, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_pushcfunction(L, object_close);
    lua_setfield(L, -2, "close");
    lua_pushcfunction(L, object_name);
    lua_setfield(L, -2, "name");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

void lm_lua_open_objects(lua_State *L) {
    static const luaL_Reg tokenizer_methods[] = {
        {"encode", tokenizer_encode},         {"decode", tokenizer_decode},       {"train", tokenizer_train},
        {"save", tokenizer_save},             {"info", tokenizer_info},           {"vocab_size", tokenizer_vocab_size},
        {"id_to_token", tokenizer_id_to_token}, {"token_to_id", tokenizer_token_to_id}, {NULL, NULL}};
    static const luaL_Reg dataset_methods[] = {{"splits", dataset_splits}, {"count", dataset_count},
                                               {"row", dataset_row},       {"sample", dataset_sample},
                                               {NULL, NULL}};
    static const luaL_Reg no_methods[] = {{NULL, NULL}};
    static const luaL_Reg logger_methods[] = {{"message", logger_message}, {NULL, NULL}};
    lm_lua_define_class(L, LM_TOKENIZER_MT, tokenizer_methods);
    lm_lua_define_class(L, LM_DATASET_MT, dataset_methods);
    lm_lua_define_class(L, LM_OBJECTIVE_MT, no_methods);
    lm_lua_define_class(L, LM_LOGGER_MT, logger_methods);
    /* lmcore.Model gets its methods from lua_model.c. */
    static const luaL_Reg constructors[] = {{"tokenizer", new_tokenizer}, {"dataset", new_dataset},
                                            {"architecture", new_model},  {"model", new_model},
                                            {"objective", new_objective}, {"logger", new_logger},
                                            {NULL, NULL}};
    luaL_setfuncs(L, constructors, 0);
}
