/* Lua's own file openers made safe for a user's paths.
 *
 * io.open, io.lines, io.input, io.output, loadfile and dofile call
 * fopen(), which blocks forever on a FIFO, and a read of /dev/zero never
 * ends.  Each is wrapped:
 * a path that exists and is neither a regular file nor a directory is
 * refused (stat() never blocks) before the original runs, with the message of
 * core/host/user_file.h naming the path and what it is.  Writing stays
 * allowed to character devices (io.open("/dev/null", "w")), which never
 * block; a FIFO is refused for writing too (fopen waits for a reader).
 *
 * `require` goes through package.searchers, whose Lua and C searchers open
 * every candidate of package.path / package.cpath with fopen() (and dlopen()
 * for C modules): each is wrapped too, so that the candidates are checked
 * with stat() first and a FIFO or a device on the path is named instead of
 * hanging the run. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lua_bindings.h"
#include "user_file.h"

/* 1 when a path about to be opened with `mode` must be refused; the
 * message is then lmcore's error message. */
static int refused(const char *path, const char *mode) {
    int reading = strchr(mode, 'r') != NULL || strchr(mode, '+') != NULL;
    struct stat info;
    /* A directory never blocks, and scripts test that a folder exists with
     * io.open(path): Lua's own behaviour is kept for it. */
    if (reading && stat(path, &info) == 0 && S_ISDIR(info.st_mode)) return 0;
    if (reading) return lm_user_file_check(path) != LM_OK;
    if (stat(path, &info) == 0 && (S_ISFIFO(info.st_mode) || S_ISSOCK(info.st_mode))) {
        lm_error_set(LM_ERR_IO, "'%s' is %s: lmcore writes regular files only", path,
                     lm_user_file_kind(info.st_mode));
        return 1;
    }
    return 0;
}

/* io.open(path [, mode]): nil, message, errno when refused (io.open's own
 * way to fail), else the original. */
static int guarded_io_open(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    const char *mode = luaL_optstring(L, 2, "r");
    if (refused(path, mode)) {
        lua_pushnil(L);
        lua_pushstring(L, lm_error_message());
        lua_pushinteger(L, EINVAL);
        return 3;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* io.lines(path, ...), io.input(path), dofile(path): raise when refused.
 * loadfile(path, ...): nil, message when refused.  A nil path means
 * standard input for all three, which is left alone. */
static int guarded_reader(lua_State *L, int raises) {
    if (lua_type(L, 1) == LUA_TSTRING && refused(lua_tostring(L, 1), "r")) {
        if (raises) return lm_lua_error(L, "%s", lm_error_message());
        lua_pushnil(L);
        lua_pushstring(L, lm_error_message());
        return 2;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int guarded_raising_reader(lua_State *L) { return guarded_reader(L, 1); }

/* io.output(path): raises when `path` is a FIFO or a socket (a file or no
 * argument is left to the original). */
static int guarded_output(lua_State *L) {
    if (lua_type(L, 1) == LUA_TSTRING && refused(lua_tostring(L, 1), "w"))
        return luaL_error(L, "%s", lm_error_message());
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}
static int guarded_loadfile(lua_State *L) { return guarded_reader(L, 0); }

/* The candidates package.searchpath would try for `name` along the
 * templates of package[field] ("path" or "cpath"), checked with stat()
 * alone, in the same order, up to the first regular file (the one the
 * original searcher will open).  Raises for a candidate that would block
 * or never end; a missing one is skipped as searchpath skips it. */
static void check_candidates(lua_State *L, const char *name, const char *templates) {
    char module[512], candidate[4096];
    size_t n = strlen(name);
    if (n >= sizeof module) return; /* the original reports a name this long */
    for (size_t i = 0; i <= n; i++) module[i] = name[i] == '.' ? '/' : name[i];
    for (const char *t = templates; *t;) {
        const char *end = strchr(t, ';');
        size_t len = end ? (size_t)(end - t) : strlen(t), used = 0;
        for (size_t i = 0; i < len && used + 1 < sizeof candidate; i++) {
            if (t[i] == '?') used += (size_t)snprintf(candidate + used, sizeof candidate - used, "%s", module);
            else candidate[used++] = t[i];
            if (used >= sizeof candidate) used = sizeof candidate - 1;
        }
        candidate[used] = '\0';
        struct stat info;
        if (len > 0 && stat(candidate, &info) == 0) {
            if (S_ISREG(info.st_mode)) return;
            if (refused(candidate, "r"))
                luaL_error(L, "require '%s': %s", name, lm_error_message());
        }
        if (!end) break;
        t = end + 1;
    }
}

/* package.searchers[i] (upvalue 1) for the path of package[field]
 * (upvalue 2: "path" or "cpath"; upvalue 3: the package table; upvalue 4:
 * true for the C root searcher, which looks for the name up to its first
 * dot). */
static int guarded_searcher(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    lua_getfield(L, lua_upvalueindex(3), lua_tostring(L, lua_upvalueindex(2)));
    const char *templates = lua_tostring(L, -1);
    if (templates) {
        const char *dot = lua_toboolean(L, lua_upvalueindex(4)) ? strchr(name, '.') : NULL;
        if (dot) lua_pushlstring(L, name, (size_t)(dot - name));
        else lua_pushstring(L, name);
        check_candidates(L, lua_tostring(L, -1), templates);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* Wraps package.searchers[2..4] (Lua's standard order: preload, Lua, C, C
 * root); the package table is at the top of the stack. */
static void wrap_searchers(lua_State *L) {
    static const struct {
        int index;
        const char *field;
        int root;
    } searchers[] = {{2, "path", 0}, {3, "cpath", 0}, {4, "cpath", 1}};
    if (lua_getfield(L, -1, "searchers") != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    for (size_t i = 0; i < sizeof searchers / sizeof searchers[0]; i++) {
        if (lua_rawgeti(L, -1, searchers[i].index) != LUA_TFUNCTION) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushstring(L, searchers[i].field);
        lua_pushvalue(L, -4); /* the package table */
        lua_pushboolean(L, searchers[i].root);
        lua_pushcclosure(L, guarded_searcher, 4);
        lua_rawseti(L, -2, searchers[i].index);
    }
    lua_pop(L, 1);
}

/* Replaces table[name] (the table at the top of the stack) by a closure of
 * `guard` over the original function. */
static void wrap_field(lua_State *L, const char *name, lua_CFunction guard) {
    lua_getfield(L, -1, name);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_pushcclosure(L, guard, 1);
    lua_setfield(L, -2, name);
}

void lm_lua_guard_file_openers(lua_State *L) {
    lua_pushglobaltable(L);
    wrap_field(L, "loadfile", guarded_loadfile);
    wrap_field(L, "dofile", guarded_raising_reader);
    if (lua_getfield(L, -1, "io") == LUA_TTABLE) {
        wrap_field(L, "open", guarded_io_open);
        wrap_field(L, "lines", guarded_raising_reader);
        wrap_field(L, "input", guarded_raising_reader);
        wrap_field(L, "output", guarded_output);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "package") == LUA_TTABLE) wrap_searchers(L);
    lua_pop(L, 2);
}
