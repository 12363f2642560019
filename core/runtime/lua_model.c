/* lmcore.Model: an architecture instance, plus lm.load_model(dir). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "lua_bindings.h"
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

static int model_n_params(lua_State *L) {
    lm_object *m = lm_lua_check_object(L, 1, LM_MODEL_MT);
    lm_arch_info info;
    if (m->plugin->vtable.architecture.info(m->self, &info) != LM_OK) return lm_lua_raise(L);
    lua_pushinteger(L, info.n_params);
    return 1;
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
                                       {"load", model_load}, {"n_params", model_n_params}, {NULL, NULL}};
    lm_lua_define_class(L, LM_MODEL_MT, methods);
    lua_pushcfunction(L, load_model);
    lua_setfield(L, -2, "load_model");
}
