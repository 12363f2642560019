/* lmcore.Model: an architecture instance, plus lm.load_model(dir). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distributed.h"
#include "lua_bindings.h"
#include "generate.h"
#include "model_io.h"

/* The model's user value: the size of the tokenizer it was loaded with
 * (lm.load_model's `tokenizer`), or nil.  Sampling and top_k then stop at
 * the tokenizer's ids, so a model whose vocabulary is padded beyond its
 * tokenizer never yields an id the tokenizer cannot decode. */
static int32_t decodable_ids(lua_State *L, int model_index, int32_t model_vocab) {
    lua_getiuservalue(L, model_index, 1);
    lua_Integer limit = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    return limit > 0 && limit < model_vocab ? (int32_t)limit : model_vocab;
}

static int model_info(lua_State *L) {
    lm_object *m = lm_lua_check_object(L, 1, LM_MODEL_MT);
    lm_arch_info info;
    memset(&info, 0, sizeof info);
    if (m->plugin->vtable.architecture.info(m->self, &info) != LM_OK) return lm_lua_raise(L);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, info.model_type);
    lua_setfield(L, -2, "model_type");
    lua_pushboolean(L, info.causal);
    lua_setfield(L, -2, "causal");
    lua_pushinteger(L, info.vocab_size);
    lua_setfield(L, -2, "vocab_size");
    lua_pushinteger(L, info.max_positions);
    lua_setfield(L, -2, "max_positions");
    lua_pushinteger(L, info.n_params);
    lua_setfield(L, -2, "n_params");
    lua_pushstring(L, info.device ? info.device : "?");
    lua_setfield(L, -2, "device");
    lua_pushstring(L, info.precision ? info.precision : "fp32");
    lua_setfield(L, -2, "precision");
    return 1;
}

/* model:init(seed): Hugging Face initialisation */
static int model_init(lua_State *L) {
    lm_object *m = lm_lua_check_object(L, 1, LM_MODEL_MT);
    /* Seeds are >= 0, as in Hugging Face (a negative one would wrap to 2^64 - n). */
    lua_Integer seed = lm_lua_opt_int_arg(L, 2, "model:init", "seed", 42, 0, LUA_MAXINTEGER);
    if (m->plugin->vtable.architecture.init_weights(m->self, (uint64_t)seed) != LM_OK) return lm_lua_raise(L);
    m->weights_set = 1;
    lua_settop(L, 1);
    return 1;
}

/* model:save(dir [, {tokenizer=tok, args_json=string}]) */
static int model_save(lua_State *L) {
    lm_object *m = lm_lua_check_object(L, 1, LM_MODEL_MT);
    const char *dir = luaL_checkstring(L, 2);
    static const char *const known[] = {"tokenizer", "args_json", NULL};
    lm_lua_check_options(L, 3, "model:save", known);
    lm_lua_check_weights_set(L, m, "model:save");
    lm_object *tok = NULL;
    const char *args_json = lm_lua_string_option(L, 3, "model:save", "args_json", NULL);
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "tokenizer");
        if (!lua_isnil(L, -1) && !luaL_testudata(L, -1, LM_TOKENIZER_MT))
            return lm_lua_error(L, "model:save: option 'tokenizer' must be a Tokenizer (lm.tokenizer), got a %s",
                                luaL_typename(L, -1));
        if (!lua_isnil(L, -1)) tok = lm_lua_check_object(L, lua_gettop(L), LM_TOKENIZER_MT);
    }
    if (lm_distributed_rank() != 0) return 0; /* every rank holds the same weights: rank 0 writes them */
    if (lm_model_save(m->plugin, m->self, dir, tok ? tok->plugin : NULL, tok ? tok->self : NULL, args_json) != LM_OK)
        return lm_lua_raise(L);
    return 0;
}

/* model:load(path): weights from a model.safetensors file or a directory */
static int model_load(lua_State *L) {
    lm_object *m = lm_lua_check_object(L, 1, LM_MODEL_MT);
    const char *path = luaL_checkstring(L, 2);
    char file[PATH_MAX];
    size_t len = strlen(path);
    if (len > 12 && strcmp(path + len - 12, ".safetensors") == 0) snprintf(file, sizeof file, "%s", path);
    else snprintf(file, sizeof file, "%s/model.safetensors", path);
    if (lm_model_load_weights(m->plugin, m->self, file) != LM_OK) return lm_lua_raise(L);
    m->weights_set = 1;
    lua_settop(L, 1);
    return 1;
}

/* The tensors' values packed in buffer order: what a tensor's storage
 * holds beyond its shape (padding rows, lm_param_desc.storage) and
 * elements no tensor claims are left out, so that a model hashes the same
 * whatever it pads.  Returns the floats kept. */
static size_t pack_tensor_values(float *host, const lm_param_set *set) {
    size_t kept = 0, next = 0; /* the next tensor is the one with the smallest offset >= next */
    for (size_t done = 0; done < set->n_descs; done++) {
        const lm_param_desc *d = NULL;
        for (size_t i = 0; i < set->n_descs; i++)
            if (set->descs[i].offset >= next && (!d || set->descs[i].offset < d->offset)) d = &set->descs[i];
        if (!d) break;
        size_t n = 1;
        for (int32_t k = 0; k < d->ndim; k++) n *= (size_t)d->shape[k];
        memmove(host + kept, host + d->offset, n * sizeof(float));
        kept += n;
        next = d->offset + (d->storage > 0 ? d->storage : 1);
    }
    return kept;
}

/* model:weights_hash() -> 16 hex digits: a hash of every parameter's bits
 * (one read of the parameters), to compare runs or processes. */
static int model_weights_hash(lua_State *L) {
    lm_object *m = lm_lua_check_object(L, 1, LM_MODEL_MT);
    lm_param_set set;
    float *host = NULL;
    if (m->plugin->vtable.architecture.parameters(m->self, &set) != LM_OK ||
        lm_alloc((void **)&host, set.n_params * sizeof(float), "a host copy of the parameters") != LM_OK)
        return lm_lua_raise(L);
    if (set.device->ops->download(set.device, host, set.params, set.n_params * sizeof(float)) != LM_OK) {
        lm_free(host);
        return lm_lua_raise(L);
    }
    uint64_t hash = lm_hash64(host, pack_tensor_values(host, &set) * sizeof(float), LM_HASH_SEED);
    lm_free(host);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)hash);
    lua_pushstring(L, hex);
    return 1;
}

static int model_n_params(lua_State *L) {
    lm_object *m = lm_lua_check_object(L, 1, LM_MODEL_MT);
    lm_arch_info info;
    if (m->plugin->vtable.architecture.info(m->self, &info) != LM_OK) return lm_lua_raise(L);
    lua_pushinteger(L, info.n_params);
    return 1;
}


/* Runs one sequence through the model in eval mode and returns its logits
 * ([T, vocab], malloc'd) or NULL with the error set.  `ids` is the Lua list
 * at `index`; token types are zero, no padding. */
static float *sequence_logits(lua_State *L, lm_object *m, int index, const char *use, int32_t *T_out,
                              int32_t *V_out) {
    lm_lua_check_weights_set(L, m, use);
    if (!lua_istable(L, index)) {
        char given[96];
        lm_lua_describe_value(L, index, given, sizeof given);
        lm_lua_error(L, "%s: the token ids must be a list of integers, got %s", use, given);
        return NULL;
    }
    lua_Integer T = luaL_len(L, index);
    if (T < 1) {
        lm_lua_error(L, "%s: need at least one token id", use);
        return NULL;
    }
    lm_arch_info info;
    if (m->plugin->vtable.architecture.info(m->self, &info) != LM_OK) {
        lm_lua_raise(L);
        return NULL;
    }
    if (T > info.max_positions) {
        lm_lua_error(L, "%s: %lld tokens exceed the model's %d positions", use, (long long)T, info.max_positions);
        return NULL;
    }
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    float *logits = malloc((size_t)T * (size_t)info.vocab_size * sizeof *logits);
    if (!ids || !logits) {
        free(ids);
        free(logits);
        lm_lua_error(L, "out of memory for %d x %d logits", (int)T, info.vocab_size);
        return NULL;
    }
    for (lua_Integer i = 1; i <= T; i++) {
        lua_geti(L, index, i);
        lua_Integer id;
        if (!lm_lua_to_int_in(L, -1, 0, info.vocab_size - 1, &id)) {
            char given[96];
            lm_lua_describe_value(L, -1, given, sizeof given);
            free(ids);
            free(logits);
            lm_lua_error(L, "token %d of the sequence is not an id of this model's vocabulary (0..%d): got %s%s",
                         (int)i, info.vocab_size - 1, given,
                         lua_isinteger(L, -1) && lua_tointeger(L, -1) >= info.vocab_size
                             ? " (ids from a tokenizer with a larger vocabulary than the model's? encode with the "
                               "tokenizer saved beside the model)"
                             : "");
            return NULL;
        }
        lua_pop(L, 1);
        ids[i - 1] = (int32_t)id;
    }
    lm_batch batch;
    memset(&batch, 0, sizeof batch);
    batch.struct_size = sizeof batch;
    batch.B = 1;
    batch.T = (int32_t)T;
    batch.input_ids = ids;
    const lm_architecture_vtable *vt = &m->plugin->vtable.architecture;
    lm_status status = vt->set_training(m->self, 0);
    if (status == LM_OK) status = vt->forward(m->self, &batch, NULL);
    if (status == LM_OK) status = vt->logits(m->self, logits, (size_t)T * (size_t)info.vocab_size);
    vt->set_training(m->self, 1);
    free(ids);
    if (status != LM_OK) {
        free(logits);
        lm_lua_raise(L);
        return NULL;
    }
    *T_out = (int32_t)T;
    *V_out = info.vocab_size;
    return logits;
}

/* model:logits(ids, position) -> list of vocab_size logits at position (from 1) */
static int model_logits(lua_State *L) {
    lm_object *m = lm_lua_check_object(L, 1, LM_MODEL_MT);
    int32_t T, V;
    float *logits = sequence_logits(L, m, 2, "model:logits", &T, &V);
    lua_Integer position;
    if (!lm_lua_to_int_in(L, 3, 1, T, &position)) {
        free(logits);
        char given[96];
        lm_lua_describe_value(L, 3, given, sizeof given);
        return lm_lua_error(L, "model:logits: position must be an integer between 1 and %d (the sequence's "
                               "length), got %s", (int)T, given);
    }
    lua_createtable(L, V, 0);
    const float *row = logits + (size_t)(position - 1) * (size_t)V;
    for (int32_t v = 0; v < V; v++) {
        lua_pushnumber(L, row[v]);
        lua_rawseti(L, -2, v + 1);
    }
    free(logits);
    return 1;
}

/* model:top_k(ids, positions, k) -> for each position (from 1) a list of
 * {id=, prob=} with the k most probable tokens (softmax over the vocabulary) */
static int model_top_k(lua_State *L) {
    lm_object *m = lm_lua_check_object(L, 1, LM_MODEL_MT);
    if (!lua_istable(L, 3)) {
        char given[96];
        lm_lua_describe_value(L, 3, given, sizeof given);
        return lm_lua_error(L, "model:top_k: positions must be a list of integers, got %s", given);
    }
    /* top_k gives at most 64 candidates per position. */
    lua_Integer k = lm_lua_opt_int_arg(L, 4, "model:top_k", "top_k", 5, 1, 64);
    int32_t T, V;
    float *logits = sequence_logits(L, m, 2, "model:top_k", &T, &V);
    const int32_t stride = V; /* rows keep the model's width; candidates stop at the tokenizer's ids */
    V = decodable_ids(L, 1, V);
    if (k > V) k = V;
    lua_Integer n_positions = luaL_len(L, 3);
    lua_createtable(L, (int)n_positions, 0);
    for (lua_Integer p = 1; p <= n_positions; p++) {
        lua_geti(L, 3, p);
        lua_Integer position;
        if (!lm_lua_to_int_in(L, -1, 1, T, &position)) {
            free(logits);
            char given[96];
            lm_lua_describe_value(L, -1, given, sizeof given);
            return lm_lua_error(L, "model:top_k: position %d must be an integer between 1 and %d (the sequence's "
                                   "length), got %s", (int)p, (int)T, given);
        }
        lua_pop(L, 1);
        const float *row = logits + (size_t)(position - 1) * (size_t)stride;
        double max = row[0], sum = 0;
        for (int32_t v = 1; v < V; v++) max = row[v] > max ? row[v] : max;
        for (int32_t v = 0; v < V; v++) sum += exp((double)row[v] - max);
        lua_createtable(L, (int)k, 0);
        int32_t chosen[64];
        int32_t limit = k > 64 ? 64 : (int32_t)k;
        for (int32_t r = 0; r < limit; r++) {
            int32_t best = -1;
            for (int32_t v = 0; v < V; v++) {
                int taken = 0;
                for (int32_t c = 0; c < r; c++) taken |= chosen[c] == v;
                if (!taken && (best < 0 || row[v] > row[best])) best = v;
            }
            chosen[r] = best;
            lua_createtable(L, 0, 2);
            lua_pushinteger(L, best);
            lua_setfield(L, -2, "id");
            lua_pushnumber(L, exp((double)row[best] - max) / sum);
            lua_setfield(L, -2, "prob");
            lua_rawseti(L, -2, r + 1);
        }
        lua_rawseti(L, -2, p);
    }
    free(logits);
    return 1;
}


/* model:generate(ids, {max_new_tokens=50, temperature=1, top_k=0, top_p=1,
 *                      seed=42, eos_id=-1, repetition_penalty=1,
 *                      no_repeat_ngram_size=0}) -> new ids, stats */
static int model_generate(lua_State *L) {
    static const char *const known[] = {"max_new_tokens", "temperature",        "top_k",
                                        "top_p",          "seed",               "eos_id",
                                        "repetition_penalty", "no_repeat_ngram_size", NULL};
    static const char *const function = "model:generate";
    lm_object *m = lm_lua_check_object(L, 1, LM_MODEL_MT);
    lm_lua_check_options(L, 3, function, known);
    lm_lua_check_weights_set(L, m, "model:generate");
    if (!lua_istable(L, 2)) {
        char given[96];
        lm_lua_describe_value(L, 2, given, sizeof given);
        return lm_lua_error(L, "model:generate: the prompt must be a list of token ids, got %s", given);
    }
    lm_arch_info info;
    if (m->plugin->vtable.architecture.info(m->self, &info) != LM_OK) return lm_lua_raise(L);
    lm_generate_options o;
    memset(&o, 0, sizeof o);
    /* At most 2^20 here (prompt + new tokens stay within int32); lm_generate
     * then checks them against the model's positions. */
    o.max_new_tokens = (int32_t)lm_lua_int_option(L, 3, function, "max_new_tokens", 50, 0, 1 << 20);
    o.temperature = lm_lua_number_option(L, 3, function, "temperature", 1.0, 0.0, DBL_MAX);
    o.top_k = (int32_t)lm_lua_int_option(L, 3, function, "top_k", 0, 0, INT32_MAX); /* above the vocabulary: all */
    o.top_p = lm_lua_number_option(L, 3, function, "top_p", 1.0, 0.0, 1.0);
    if (o.top_p == 0.0) return lm_lua_error(L, "model:generate: option 'top_p' must be above 0 (at most 1), got 0");
    o.seed = (uint64_t)lm_lua_int_option(L, 3, function, "seed", 42, 0, LUA_MAXINTEGER);
    o.eos_id = (int32_t)lm_lua_int_option(L, 3, function, "eos_id", -1, -1, info.vocab_size - 1);
    o.n_decodable = decodable_ids(L, 1, info.vocab_size);
    o.repetition_penalty = lm_lua_number_option(L, 3, function, "repetition_penalty", 1.0, 0.0, DBL_MAX);
    if (!(o.repetition_penalty > 0))
        return lm_lua_error(L, "model:generate: option 'repetition_penalty' must be above 0 (1: off), got 0");
    o.no_repeat_ngram_size = (int32_t)lm_lua_int_option(L, 3, function, "no_repeat_ngram_size", 0, 0, 1 << 20);
    lua_Integer n = luaL_len(L, 2);
    if (n > 1 << 20)
        return lm_lua_error(L, "model:generate: the prompt has %lld tokens, more than the model's %d positions",
                            (long long)n, (int)info.max_positions);
    lm_ids prompt = {0}, out = {0};
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 2, i);
        lua_Integer id;
        /* Range-checked here in 64 bits (4294967298 must not become id 2); lm_generate names ids
         * outside the vocabulary. */
        if (!lm_lua_to_int_in(L, -1, INT32_MIN, INT32_MAX, &id)) {
            char given[96];
            lm_lua_describe_value(L, -1, given, sizeof given);
            lm_ids_free(&prompt);
            return lm_lua_error(L, "model:generate: prompt item %d is %s, not a token id of the model's vocabulary "
                                   "(0..%d)",
                                (int)i, given, (int)info.vocab_size - 1);
        }
        lua_pop(L, 1);
        if (lm_ids_push(&prompt, (int32_t)id) != LM_OK) {
            lm_ids_free(&prompt);
            return lm_lua_raise(L);
        }
    }
    lm_handle model = {m->plugin, m->self};
    lm_generate_stats stats;
    lm_status status = lm_generate(model, prompt.data, (int32_t)prompt.len, &o, &out, &stats);
    lm_ids_free(&prompt);
    if (status != LM_OK) {
        lm_ids_free(&out);
        return lm_lua_raise(L);
    }
    lua_createtable(L, (int)out.len, 0);
    for (size_t i = 0; i < out.len; i++) {
        lua_pushinteger(L, out.data[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lm_ids_free(&out);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, stats.new_tokens);
    lua_setfield(L, -2, "new_tokens");
    lua_pushnumber(L, stats.seconds);
    lua_setfield(L, -2, "seconds");
    lua_pushnumber(L, stats.seconds > 0 ? stats.new_tokens / stats.seconds : 0);
    lua_setfield(L, -2, "tokens_per_second");
    lua_pushboolean(L, stats.used_kv_cache);
    lua_setfield(L, -2, "kv_cache");
    return 2;
}

/* Settings at `index` without the key `tokenizer`, which is lm.load_model's
 * own and not the architecture's: a copy replaces them on the stack. */
static lm_object *take_tokenizer_setting(lua_State *L, int index) {
    if (!lua_istable(L, index)) return NULL;
    lua_getfield(L, index, "tokenizer");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    lm_object *tok = lm_lua_check_object(L, lua_gettop(L), LM_TOKENIZER_MT);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, index)) {
        if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "tokenizer") == 0) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, -4);
    }
    lua_replace(L, index); /* the tokenizer stays on the stack, alive */
    return tok;
}

/* lm.load_model(dir [, settings]): the architecture named by config.json's
 * model_type, configured from that file, with the saved weights.
 * settings.tokenizer (a Tokenizer) is checked against the model: refused
 * when it has more tokens than the model or a special id outside it. */
static int load_model(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    lua_settop(L, 2); /* settings at 2, even when absent */
    lm_object *tok = take_tokenizer_setting(L, 2);
    char model_type[64];
    if (lm_model_type_of(dir, model_type, sizeof model_type) != LM_OK) return lm_lua_raise(L);
    const lm_plugin *plugin;
    if (lm_registry_find(lm_lua_registry(L), LM_KIND_ARCHITECTURE, model_type, &plugin) != LM_OK)
        return lm_lua_raise(L);
    lm_object *object = lua_newuserdatauv(L, sizeof *object, 1);
    memset(object, 0, sizeof *object);
    luaL_setmetatable(L, LM_MODEL_MT);
    char owner[160];
    snprintf(owner, sizeof owner, "architecture '%s'", model_type);
    object->config = lm_lua_to_config(L, 2, owner);
    object->plugin = plugin;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (lm_config_set_string(object->config, "hf_config", path) != LM_OK) return lm_lua_raise(L);
    if (lm_plugin_instantiate(plugin, object->config, &object->self) != LM_OK) return lm_lua_raise(L);
    const lm_architecture_vtable *vt = &plugin->vtable.architecture;
    if (tok) {
        /* Before the weights: a mismatched pair fails without loading them. */
        lm_arch_info info;
        lm_vocab_info vocab;
        memset(&info, 0, sizeof info);
        memset(&vocab, 0, sizeof vocab);
        if (vt->info(object->self, &info) != LM_OK || tok->plugin->vtable.tokenizer.info(tok->self, &vocab) != LM_OK)
            return lm_lua_raise(L);
        char fix[PATH_MAX + 96];
        snprintf(fix, sizeof fix, "use the tokenizer.json saved with the model in '%s'", dir);
        if (lm_vocab_check(&vocab, info.vocab_size, fix) != LM_OK) {
            lm_error_prefix("loading the model in '%s': ", dir);
            return lm_lua_raise(L);
        }
        lua_pushinteger(L, vocab.vocab_size);
        lua_setiuservalue(L, -2, 1);
    }
    /* Loaded in eval mode: the weights need no gradients (model_parameters
     * allocates them only for training); training mode is back after. */
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    lm_status status = vt->set_training(object->self, 0);
    if (status == LM_OK) status = lm_model_load_weights(plugin, object->self, path);
    vt->set_training(object->self, 1);
    if (status != LM_OK) return lm_lua_raise(L);
    object->weights_set = 1;
    return 1;
}

void lm_lua_check_weights_set(lua_State *L, lm_object *model, const char *use) {
    if (model->weights_set) return;
    lm_lua_error(L, "%s: the %s model's weights were never set (they are all zero): call model:init(seed) for "
                    "new weights or model:load(dir) for saved ones first",
                 use, model->plugin->name);
}

void lm_lua_open_model(lua_State *L) {
    static const luaL_Reg methods[] = {{"info", model_info}, {"init", model_init},         {"save", model_save},
                                       {"load", model_load}, {"n_params", model_n_params}, {"logits", model_logits},
                                       {"top_k", model_top_k}, {"generate", model_generate},
                                       {"weights_hash", model_weights_hash},
                                       {NULL, NULL}};
    lm_lua_define_class(L, LM_MODEL_MT, methods);
    lua_pushcfunction(L, load_model);
    lua_setfield(L, -2, "load_model");
}
