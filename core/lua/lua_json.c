/* lm.json_decode(text) and lm.json_encode(value [, indent]): JSON for
 * scripts (run results, reports), on top of the core's strict parser. */
#include <math.h>
#include <string.h>

#include "lua_bindings.h"

static void push_json(lua_State *L, const lm_json *v) {
    luaL_checkstack(L, 4, "JSON nested too deeply");
    switch (lm_json_type_of(v)) {
    case LM_JSON_NULL: lua_pushnil(L); break;
    case LM_JSON_BOOL: lua_pushboolean(L, lm_json_bool(v)); break;
    case LM_JSON_NUMBER:
        if (lm_json_is_integer(v)) lua_pushinteger(L, (lua_Integer)lm_json_int(v));
        else lua_pushnumber(L, lm_json_number(v));
        break;
    case LM_JSON_STRING: {
        size_t len;
        const char *s = lm_json_string(v, &len);
        lua_pushlstring(L, s, len);
        break;
    }
    case LM_JSON_ARRAY: {
        size_t n = lm_json_size(v);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            push_json(L, lm_json_at(v, i));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case LM_JSON_OBJECT: {
        size_t n = lm_json_size(v);
        lua_createtable(L, 0, (int)n);
        for (size_t i = 0; i < n; i++) {
            size_t klen;
            const char *key = lm_json_key_at(v, i, &klen);
            lua_pushlstring(L, key, klen);
            push_json(L, lm_json_at(v, i));
            lua_rawset(L, -3);
        }
        break;
    }
    }
}

static int json_decode(lua_State *L) {
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *source = luaL_optstring(L, 2, "string");
    lm_json *root;
    if (lm_json_parse(text, len, source, &root) != LM_OK) return lm_lua_raise(L);
    push_json(L, root);
    lm_json_free(root);
    return 1;
}

/* Raises on anything that cannot be JSON, before any writing starts, so
 * that the writer's buffer never leaks through a Lua error. */
static void validate(lua_State *L, int index, int depth) {
    index = lua_absindex(L, index);
    if (depth > 100) lm_lua_error(L, "json_encode: value nested too deeply (cycle?)");
    int t = lua_type(L, index);
    if (t == LUA_TNIL || t == LUA_TBOOLEAN || t == LUA_TNUMBER || t == LUA_TSTRING) return;
    if (t != LUA_TTABLE) lm_lua_error(L, "json_encode: a %s cannot be written as JSON", luaL_typename(L, index));
    luaL_checkstack(L, 4, "json_encode: value nested too deeply");
    lua_pushnil(L);
    while (lua_next(L, index)) {
        if (lua_type(L, -2) != LUA_TSTRING && lua_type(L, -2) != LUA_TNUMBER)
            lm_lua_error(L, "json_encode: table keys must be strings (or array indices)");
        validate(L, -1, depth + 1);
        lua_pop(L, 1);
    }
}

static void write_value(lua_State *L, int index, lm_json_writer *w, int depth);

static int is_array(lua_State *L, int index) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, index);
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, index)) {
        count++;
        lua_pop(L, 1);
    }
    return count == n && (n > 0 || count == 0);
}

static void write_value(lua_State *L, int index, lm_json_writer *w, int depth) {
    index = lua_absindex(L, index);
    switch (lua_type(L, index)) {
    case LUA_TNIL: lm_json_write_null(w); break;
    case LUA_TBOOLEAN: lm_json_write_bool(w, lua_toboolean(L, index)); break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, index)) lm_json_write_int(w, (int64_t)lua_tointeger(L, index));
        else lm_json_write_number(w, lua_tonumber(L, index));
        break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, index, &len);
        lm_json_write_string(w, s, len);
        break;
    }
    case LUA_TTABLE:
        if (is_array(L, index) && lua_rawlen(L, index) > 0) {
            lm_json_begin_array(w);
            lua_Integer n = (lua_Integer)lua_rawlen(L, index);
            for (lua_Integer i = 1; i <= n; i++) {
                lua_rawgeti(L, index, i);
                write_value(L, -1, w, depth + 1);
                lua_pop(L, 1);
            }
            lm_json_end_array(w);
        } else {
            /* Sorted keys: stable files that diff well. */
            lua_newtable(L);
            int keys = lua_gettop(L);
            lua_Integer n = 0;
            lua_pushnil(L);
            while (lua_next(L, index)) {
                lua_pop(L, 1);
                lua_pushvalue(L, -1);
                if (lua_type(L, -1) == LUA_TNUMBER) lua_tolstring(L, -1, NULL); /* sparse array: keys as strings */
                lua_rawseti(L, keys, ++n);
            }
            lua_getglobal(L, "table");
            lua_getfield(L, -1, "sort");
            lua_pushvalue(L, keys);
            lua_call(L, 1, 0);
            lua_pop(L, 1);
            lm_json_begin_object(w);
            for (lua_Integer i = 1; i <= n; i++) {
                lua_rawgeti(L, keys, i);
                lm_json_key(w, lua_tostring(L, -1));
                lua_pushvalue(L, -1);
                lua_gettable(L, index);
                if (lua_isnil(L, -1)) { /* the key was a number turned string */
                    lua_pop(L, 1);
                    lua_pushinteger(L, lua_tointeger(L, -1));
                    lua_gettable(L, index);
                }
                lua_remove(L, -2);
                write_value(L, -1, w, depth + 1);
                lua_pop(L, 1);
            }
            lm_json_end_object(w);
            lua_pop(L, 1);
        }
        break;
    default: lm_json_write_null(w); break; /* excluded by validate() */
    }
}

static int json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    int indent = (int)lm_lua_opt_int_arg(L, 2, "lm.json_encode", "indent", 2, 0, 16);
    validate(L, 1, 0);
    lm_buffer out = {0};
    lm_json_writer w;
    lm_json_writer_init(&w, &out, indent);
    write_value(L, 1, &w, 0);
    if (lm_json_writer_finish(&w) != LM_OK) {
        lm_buffer_free(&out);
        return lm_lua_raise(L);
    }
    lua_pushlstring(L, out.data ? out.data : "", out.len);
    lm_buffer_free(&out);
    return 1;
}

void lm_lua_open_json(lua_State *L) {
    lua_pushcfunction(L, json_decode);
    lua_setfield(L, -2, "json_decode");
    lua_pushcfunction(L, json_encode);
    lua_setfield(L, -2, "json_encode");
}
