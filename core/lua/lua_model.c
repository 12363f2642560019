/* lmcore.Model: an architecture instance, plus lm.load_model(dir). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distributed.h"
#include "lua_bindings.h"
#include "generate.h"
#include "model_io.h"

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
    lua_Integer seed = luaL_optinteger(L, 2, 42);
    if (m->plugin->vtable.architecture.init_weights(m->self, (uint64_t)seed) != LM_OK) return lm_lua_raise(L);
    lua_settop(L, 1);
    return 1;
}

/* model:save(dir [, {tokenizer=tok, args_json=string}]) */
static int model_save(lua_State *L) {
    lm_object *m = lm_lua_check_object(L, 1, LM_MODEL_MT);
    const char *dir = luaL_checkstring(L, 2);
    lm_object *tok = NULL;
    const char *args_json = NULL;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "tokenizer");
        if (!lua_isnil(L, -1)) tok = lm_lua_check_object(L, lua_gettop(L), LM_TOKENIZER_MT);
        lua_getfield(L, 3, "args_json");
        if (!lua_isnil(L, -1)) args_json = luaL_checkstring(L, -1);
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
    lua_settop(L, 1);
    return 1;
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
    uint64_t hash = lm_hash64(host, set.n_params * sizeof(float), LM_HASH_SEED);
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
static float *sequence_logits(lua_State *L, lm_object *m, int index, int32_t *T_out, int32_t *V_out) {
    luaL_checktype(L, index, LUA_TTABLE);
    lua_Integer T = luaL_len(L, index);
    if (T < 1) {
        luaL_error(L, "need at least one token id");
        return NULL;
    }
    lm_arch_info info;
    if (m->plugin->vtable.architecture.info(m->self, &info) != LM_OK) {
        lm_lua_raise(L);
        return NULL;
    }
    if (T > info.max_positions) {
        luaL_error(L, "%d tokens exceed the model's %d positions", (int)T, info.max_positions);
        return NULL;
    }
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    float *logits = malloc((size_t)T * (size_t)info.vocab_size * sizeof *logits);
    if (!ids || !logits) {
        free(ids);
        free(logits);
        luaL_error(L, "out of memory for %d x %d logits", (int)T, info.vocab_size);
        return NULL;
    }
    for (lua_Integer i = 1; i <= T; i++) {
        lua_geti(L, index, i);
        int ok;
        lua_Integer id = lua_tointegerx(L, -1, &ok);
        lua_pop(L, 1);
        if (!ok || id < 0 || id >= info.vocab_size) {
            free(ids);
            free(logits);
            luaL_error(L, "token %d of the sequence is not an id of this model's vocabulary (0..%d)", (int)i,
                       info.vocab_size - 1);
            return NULL;
        }
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
    lua_Integer position = luaL_checkinteger(L, 3);
    int32_t T, V;
    float *logits = sequence_logits(L, m, 2, &T, &V);
    if (position < 1 || position > T) {
        free(logits);
        return luaL_error(L, "position %d is outside 1..%d", (int)position, (int)T);
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
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer k = luaL_optinteger(L, 4, 5);
    if (k > 64) return luaL_argerror(L, 4, "top_k gives at most 64 candidates per position");
    int32_t T, V;
    float *logits = sequence_logits(L, m, 2, &T, &V);
    if (k < 1) k = 1;
    if (k > V) k = V;
    lua_Integer n_positions = luaL_len(L, 3);
    lua_createtable(L, (int)n_positions, 0);
    for (lua_Integer p = 1; p <= n_positions; p++) {
        lua_geti(L, 3, p);
        lua_Integer position = lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (position < 1 || position > T) {
            free(logits);
            return luaL_error(L, "position %d is outside 1..%d", (int)position, (int)T);
        }
        const float *row = logits + (size_t)(position - 1) * (size_t)V;
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


static double number_option(lua_State *L, int table, const char *key, double def) {
    if (!lua_istable(L, table)) return def;
    lua_getfield(L, table, key);
    double v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* model:generate(ids, {max_new_tokens=50, temperature=1, top_k=0, top_p=1,
 *                      seed=42, eos_id=-1}) -> new ids, stats */
static int model_generate(lua_State *L) {
    lm_object *m = lm_lua_check_object(L, 1, LM_MODEL_MT);
    luaL_checktype(L, 2, LUA_TTABLE);
    lm_generate_options o;
    o.max_new_tokens = (int32_t)number_option(L, 3, "max_new_tokens", 50);
    o.temperature = number_option(L, 3, "temperature", 1.0);
    o.top_k = (int32_t)number_option(L, 3, "top_k", 0);
    o.top_p = number_option(L, 3, "top_p", 1.0);
    o.seed = (uint64_t)number_option(L, 3, "seed", 42);
    o.eos_id = (int32_t)number_option(L, 3, "eos_id", -1);
    lua_Integer n = luaL_len(L, 2);
    if (n > 1 << 20) return luaL_error(L, "prompt too long");
    lm_ids prompt = {0}, out = {0};
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 2, i);
        int ok;
        lua_Integer id = lua_tointegerx(L, -1, &ok);
        lua_pop(L, 1);
        if (!ok || lm_ids_push(&prompt, (int32_t)id) != LM_OK) {
            lm_ids_free(&prompt);
            return luaL_error(L, "prompt item %d is not a token id", (int)i);
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

/* lm.load_model(dir [, settings]): the architecture named by config.json's
 * model_type, configured from that file, with the saved weights. */
static int load_model(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    lua_settop(L, 2); /* settings at 2, even when absent */
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
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (lm_model_load_weights(plugin, object->self, path) != LM_OK) return lm_lua_raise(L);
    return 1;
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
