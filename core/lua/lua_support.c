/* Helpers shared by the Lua bindings: errors, configs, object checks. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "lua_bindings.h"

static const char registry_key = 'r';

lm_registry *lm_lua_registry(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &registry_key);
    lm_registry *r = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return r;
}


void lm_lua_set_registry(lua_State *L, lm_registry *r) {
    lua_pushlightuserdata(L, r);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &registry_key);
}

int lm_lua_raise(lua_State *L) {
    const char *message = lm_error_message();
    /* An lmcore error names what failed and how to fix it: no Lua position. */
    return lm_lua_error(L, "%s", *message ? message : "unknown lmcore error");
}

static int push_config_value(lua_State *L, lm_config *cfg, const char *key, int value_index, const char *owner) {
    lm_status status = LM_OK;
    switch (lua_type(L, value_index)) {
    case LUA_TBOOLEAN: status = lm_config_set_bool(cfg, key, lua_toboolean(L, value_index)); break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, value_index)) status = lm_config_set_int(cfg, key, lua_tointeger(L, value_index));
        else status = lm_config_set_number(cfg, key, lua_tonumber(L, value_index));
        break;
    case LUA_TSTRING: status = lm_config_set_string(cfg, key, lua_tostring(L, value_index)); break;
    case LUA_TTABLE: {
        lua_Integer n = luaL_len(L, value_index);
        const char *items[256];
        if (n > 256) {
            lm_error_set(LM_ERR_INVALID, "config key '%s' for %s: lists hold at most 256 items", key, owner);
            return 0;
        }
        /* Items stay on the stack until copied: a number converted by
         * lua_tostring exists only there. */
        luaL_checkstack(L, (int)n + 4, "config list too long");
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, value_index, i);
            if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER) {
                lua_pop(L, (int)i);
                lm_error_set(LM_ERR_INVALID, "config key '%s' for %s: list item %d must be a string", key, owner,
                             (int)i);
                return 0;
            }
            items[i - 1] = lua_tostring(L, -1);
        }
        status = lm_config_set_list(cfg, key, items, (size_t)n);
        lua_pop(L, (int)n);
        break;
    }
    default:
        lm_error_set(LM_ERR_INVALID, "config key '%s' for %s: a %s cannot be a config value", key, owner,
                     luaL_typename(L, value_index));
        return 0;
    }
    return status == LM_OK;
}

lm_config *lm_lua_to_config(lua_State *L, int index, const char *owner) {
    index = lua_absindex(L, index);
    lm_config *cfg = NULL;
    if (lm_config_create(&cfg, owner) != LM_OK) {
        lm_lua_raise(L);
        return NULL;
    }
    if (lua_isnoneornil(L, index)) return cfg;
    if (!lua_istable(L, index)) {
        lm_config_destroy(cfg);
        lm_lua_error(L, "settings for %s must be a table, got %s", owner, luaL_typename(L, index));
        return NULL;
    }
    lua_pushnil(L);
    while (lua_next(L, index)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lm_config_destroy(cfg);
            lm_lua_error(L, "settings for %s: keys must be strings, got a %s", owner, luaL_typename(L, -2));
            return NULL;
        }
        const char *key = lua_tostring(L, -2);
        if (!push_config_value(L, cfg, key, lua_gettop(L), owner)) {
            lm_config_destroy(cfg);
            lm_lua_raise(L);
            return NULL;
        }
        lua_pop(L, 1);
    }
    return cfg;
}

static int config_box_gc(lua_State *L) {
    lm_config **box = lua_touserdata(L, 1);
    if (box && *box) lm_config_destroy(*box);
    if (box) *box = NULL;
    return 0;
}

lm_config *lm_lua_boxed_config(lua_State *L, int index, const char *owner) {
    index = lua_absindex(L, index);
    lm_config **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    if (luaL_newmetatable(L, "lmcore.ConfigBox")) {
        lua_pushcfunction(L, config_box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    *box = lm_lua_to_config(L, index, owner); /* raises on bad values; the box is collected then */
    return *box;
}

lm_object *lm_lua_check_object(lua_State *L, int index, const char *metatable) {
    lm_object *object = luaL_checkudata(L, index, metatable);
    if (!object->self) lm_lua_error(L, "attempt to use a closed %s", metatable + strlen("lmcore."));
    return object;
}

void lm_lua_define_plain_class(lua_State *L, const char *name, lua_CFunction close, const luaL_Reg *methods) {
    luaL_newmetatable(L, name);
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__close");
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "close");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
