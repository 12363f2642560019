/* The one way the `lm` bindings read what a script passes: option tables
 * (unknown keys refused, with the nearest known key suggested), integers
 * (64-bit, range-checked before any narrowing) and numbers (finite, in
 * range).  Every message names the function, the key or argument, the
 * accepted range and the value exactly as given, so that `seed = 1.5` or
 * `n = 2^40` never turns into "no integer representation" or a wrapped
 * value.  Errors are raised without a Lua position: they are the script's
 * mistakes, not the runtime's (runtime.c prints no traceback hint then). */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lua_bindings.h"
#include "names.h"

int lm_lua_error(lua_State *L, const char *fmt, ...) {
    /* vsnprintf, not lua_pushvfstring: messages print 64-bit values (%lld, %g). */
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    lua_pushstring(L, message);
    return lua_error(L);
}

void lm_lua_describe_value(lua_State *L, int index, char *out, size_t cap) {
    switch (lua_type(L, index)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, index)) snprintf(out, cap, "%lld", (long long)lua_tointeger(L, index));
        else snprintf(out, cap, "%.17g", (double)lua_tonumber(L, index));
        break;
    case LUA_TSTRING: snprintf(out, cap, "the string '%.60s'", lua_tostring(L, index)); break;
    case LUA_TBOOLEAN: snprintf(out, cap, "%s", lua_toboolean(L, index) ? "true" : "false"); break;
    case LUA_TNONE:
    case LUA_TNIL: snprintf(out, cap, "nothing (nil)"); break;
    default: snprintf(out, cap, "a %s", luaL_typename(L, index)); break;
    }
}

int lm_lua_to_int_in(lua_State *L, int index, lua_Integer lo, lua_Integer hi, lua_Integer *out) {
    if (lua_type(L, index) != LUA_TNUMBER) return 0;
    lua_Integer v;
    if (lua_isinteger(L, index)) v = lua_tointeger(L, index);
    else {
        /* 3.0 (Lua's 3e0, a JSON 3.0) is an integer; 1.5, 2^63 and NaN are not. */
        double d = (double)lua_tonumber(L, index);
        if (!(d == floor(d)) || !(d >= -9.2233720368547758e18 && d < 9.2233720368547758e18)) return 0;
        v = (lua_Integer)d;
    }
    if (v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* "between 0 and 9223372036854775807" reads badly: open ends say >= / <=. */
static void describe_range(char *out, size_t cap, lua_Integer lo, lua_Integer hi) {
    if (hi == LUA_MAXINTEGER && lo == LUA_MININTEGER) snprintf(out, cap, "an integer");
    else if (hi == LUA_MAXINTEGER) snprintf(out, cap, "an integer >= %lld", (long long)lo);
    else if (lo == LUA_MININTEGER) snprintf(out, cap, "an integer <= %lld", (long long)hi);
    else snprintf(out, cap, "an integer between %lld and %lld", (long long)lo, (long long)hi);
}

lua_Integer lm_lua_check_int(lua_State *L, int index, const char *what, lua_Integer lo, lua_Integer hi) {
    lua_Integer v;
    if (lm_lua_to_int_in(L, index, lo, hi, &v)) return v;
    char range[96], given[96];
    describe_range(range, sizeof range, lo, hi);
    lm_lua_describe_value(L, index, given, sizeof given);
    return lm_lua_error(L, "%s must be %s, got %s", what, range, given);
}

lua_Integer lm_lua_int_arg(lua_State *L, int arg, const char *function, const char *name, lua_Integer lo,
                           lua_Integer hi) {
    char what[160];
    snprintf(what, sizeof what, "%s: %s", function, name);
    return lm_lua_check_int(L, arg, what, lo, hi);
}

lua_Integer lm_lua_opt_int_arg(lua_State *L, int arg, const char *function, const char *name, lua_Integer def,
                               lua_Integer lo, lua_Integer hi) {
    if (lua_isnoneornil(L, arg)) return def;
    return lm_lua_int_arg(L, arg, function, name, lo, hi);
}

void lm_lua_check_options(lua_State *L, int index, const char *function, const char *const *known) {
    index = lua_absindex(L, index);
    if (lua_isnoneornil(L, index)) return;
    if (!lua_istable(L, index)) {
        char given[96];
        lm_lua_describe_value(L, index, given, sizeof given);
        lm_lua_error(L, "%s: options must be a table, got %s", function, given);
    }
    lua_pushnil(L);
    while (lua_next(L, index)) {
        lua_pop(L, 1);
        const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int found = 0;
        for (size_t i = 0; key && known[i] && !found; i++) found = strcmp(key, known[i]) == 0;
        if (found) continue;
        char names[512] = "";
        size_t used = 0;
        for (size_t i = 0; known[i] && used < sizeof names; i++)
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", known[i]);
        if (!key) {
            char given[96];
            lm_lua_describe_value(L, -1, given, sizeof given);
            lm_lua_error(L, "%s: option keys are names, got %s (known: %s)", function, given, names);
        }
        const char *near = lm_nearest_name(key, known, (size_t)-1);
        if (near) lm_lua_error(L, "%s: unknown option '%s' (known: %s): did you mean '%s'?", function, key, names, near);
        lm_lua_error(L, "%s: unknown option '%s' (known: %s)", function, key, names);
    }
}

/* Pushes option `key` of the table at `index` (nil when there is no table). */
static int push_option(lua_State *L, int index, const char *key) {
    if (!lua_istable(L, index)) {
        lua_pushnil(L);
        return LUA_TNIL;
    }
    return lua_getfield(L, index, key);
}

lua_Integer lm_lua_int_option(lua_State *L, int index, const char *function, const char *key, lua_Integer def,
                              lua_Integer lo, lua_Integer hi) {
    index = lua_absindex(L, index);
    if (push_option(L, index, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return def;
    }
    char what[160];
    snprintf(what, sizeof what, "%s: option '%s'", function, key);
    lua_Integer v = lm_lua_check_int(L, -1, what, lo, hi);
    lua_pop(L, 1);
    return v;
}

double lm_lua_number_option(lua_State *L, int index, const char *function, const char *key, double def, double lo,
                            double hi) {
    index = lua_absindex(L, index);
    if (push_option(L, index, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return def;
    }
    double v = lua_type(L, -1) == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : NAN;
    if (!(v >= lo && v <= hi)) {
        char given[96];
        lm_lua_describe_value(L, -1, given, sizeof given);
        if (hi == DBL_MAX) lm_lua_error(L, "%s: option '%s' must be a number >= %g, got %s", function, key, lo, given);
        lm_lua_error(L, "%s: option '%s' must be a number between %g and %g, got %s", function, key, lo, hi, given);
    }
    lua_pop(L, 1);
    return v;
}

int lm_lua_bool_option(lua_State *L, int index, const char *function, const char *key, int def) {
    index = lua_absindex(L, index);
    int type = push_option(L, index, key);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return def;
    }
    if (type != LUA_TBOOLEAN) {
        char given[96];
        lm_lua_describe_value(L, -1, given, sizeof given);
        lm_lua_error(L, "%s: option '%s' must be true or false, got %s", function, key, given);
    }
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

const char *lm_lua_string_option(lua_State *L, int index, const char *function, const char *key, const char *def) {
    index = lua_absindex(L, index);
    int type = push_option(L, index, key);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return def;
    }
    if (type != LUA_TSTRING) {
        char given[96];
        lm_lua_describe_value(L, -1, given, sizeof given);
        lm_lua_error(L, "%s: option '%s' must be a string, got %s", function, key, given);
    }
    /* The string stays alive as long as the options table holds it. */
    const char *v = lua_tostring(L, -1);
    lua_pop(L, 1);
    return v;
}

int lm_lua_check_choice(lua_State *L, int arg, const char *function, const char *name, const char *def,
                        const char *const *choices) {
    const char *given = lua_isnoneornil(L, arg) ? def : lua_type(L, arg) == LUA_TSTRING ? lua_tostring(L, arg) : NULL;
    for (int i = 0; given && choices[i]; i++)
        if (strcmp(given, choices[i]) == 0) return i;
    char names[256] = "", value[96];
    size_t used = 0;
    for (int i = 0; choices[i] && used < sizeof names; i++)
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", choices[i]);
    lm_lua_describe_value(L, arg, value, sizeof value);
    const char *near = given ? lm_nearest_name(given, choices, (size_t)-1) : NULL;
    if (near) return lm_lua_error(L, "%s: %s must be one of %s, got %s: did you mean '%s'?", function, name, names, value, near);
    return lm_lua_error(L, "%s: %s must be one of %s, got %s", function, name, names, value);
}
