/* Runs a pipeline script: a fresh Lua state with the standard libraries,
 * the `lm` module preloaded, the `args` table from key=value pairs, a
 * traceback handler, and Ctrl-C or SIGTERM turned into a flag that the
 * trainer polls between steps (it then saves and stops cleanly). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "lua_bindings.h"
#include "runtime.h"
#include "user_file.h"

/* The first interrupting signal: SIGINT (Ctrl-C) or SIGTERM (what Slurm
 * and Kubernetes send before they kill). */
static volatile sig_atomic_t interrupt_signal;

static const char *signal_label(int signo) { return signo == SIGTERM ? "SIGTERM" : "Ctrl-C"; }

static void on_interrupt(int signo) {
    if (lm_interrupted()) {
        /* A second signal: the user (or the scheduler) means it. */
        signal(signo, SIG_DFL);
        raise(signo);
        return;
    }
    interrupt_signal = signo;
    lm_interrupt_request();
}

int lm_runtime_interrupt_signal(void) { return lm_interrupted() ? (int)interrupt_signal : 0; }

/* Lua hook: long pure-Lua loops are interrupted too. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    if (lm_interrupted()) {
        lua_sethook(L, NULL, 0, 0);
        lm_lua_error(L, "interrupted by %s", signal_label(interrupt_signal));
    }
}

static int lm_version(lua_State *L) {
    lua_pushstring(L, LMCORE_VERSION_STRING);
    return 1;
}

/* lm.interrupted() -> whether, and by what ("Ctrl-C", "SIGTERM") */
static int lm_interrupted_lua(lua_State *L) {
    if (!lm_interrupted()) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushboolean(L, 1);
    lua_pushstring(L, signal_label(interrupt_signal));
    return 2;
}

/* lm.log(level, message) with level debug|info|warn|error */
static int lm_log_lua(lua_State *L) {
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    int level = lm_lua_check_choice(L, 1, "lm.log", "the level", NULL, levels);
    const char *message = luaL_checkstring(L, 2);
    lm_log((lm_log_level)level, "%s", message);
    return 0;
}

/* lm.plugins([kind]) -> list of {kind=, name=, version=, description=, path=} */
static int lm_plugins_lua(lua_State *L) {
    lm_registry *r = lm_lua_registry(L);
    const char *kind_filter = luaL_optstring(L, 1, NULL);
    lua_newtable(L);
    int n = 0;
    for (size_t i = 0; i < lm_registry_count(r); i++) {
        const lm_plugin *p = lm_registry_at(r, i);
        const char *kind = lm_plugin_kind_name(p->kind);
        if (kind_filter && strcmp(kind_filter, kind) != 0) continue;
        lua_createtable(L, 0, 5);
        lua_pushstring(L, kind);
        lua_setfield(L, -2, "kind");
        lua_pushstring(L, p->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, p->descriptor->version);
        lua_setfield(L, -2, "version");
        lua_pushstring(L, p->descriptor->description);
        lua_setfield(L, -2, "description");
        lua_pushstring(L, p->path);
        lua_setfield(L, -2, "path");
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

/* lm.mkdir(path): creates a directory and its parents (mkdir -p) */
static int lm_mkdir_lua(lua_State *L) {
    if (lm_mkdir_p(luaL_checkstring(L, 1)) != LM_OK) return lm_lua_raise(L);
    return 0;
}

/* lm.write_file(path, text): writes the whole file atomically (a temporary
 * file renamed into place), so a reader or a crash never sees half of it. */
static int lm_write_file_lua(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    if (lm_file_write_atomic(path, text, len) != LM_OK) return lm_lua_raise(L);
    return 0;
}

static int open_lm(lua_State *L) {
    static const luaL_Reg functions[] = {{"version", lm_version},
                                         {"interrupted", lm_interrupted_lua},
                                         {"log", lm_log_lua},
                                         {"plugins", lm_plugins_lua},
                                         {"mkdir", lm_mkdir_lua},
                                         {"write_file", lm_write_file_lua},
                                         {NULL, NULL}};
    luaL_newlib(L, functions);
    lm_lua_open_objects(L);
    lm_lua_open_model(L);
    lm_lua_open_json(L);
    lm_lua_open_optimizer(L);
    lm_lua_open_blocks(L);
    lm_lua_open_trainer(L);
    lm_lua_open_lock(L);
    lm_lua_open_distributed(L);
    return 1;
}

/* Whether a Lua error message starts with the position Lua adds to the
 * errors of code ("pipeline.lua:91: ...", "[string \"x\"]:3: ..."): an
 * internal error, whose traceback helps.  The script's own mistakes are
 * raised without one (error(msg, 0), the lm.* checks: lm_lua_error), and
 * print just their message. */
static int has_lua_position(const char *message) {
    const char *colon = strchr(message, ':');
    const char *newline = strchr(message, '\n');
    if (!colon || colon == message || (newline && newline < colon)) return 0;
    const char *digits = colon + 1;
    while (*digits >= '0' && *digits <= '9') digits++;
    return digits > colon + 1 && digits[0] == ':' && digits[1] == ' ';
}

static int traceback_handler(lua_State *L) {
    const char *message = lua_tostring(L, 1);
    if (!message) message = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, message, 1);
    return 1;
}

lm_status lm_runtime_parse_args(const char *const *args, int n, lm_config *out) {
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(args[i], '=');
        if (!eq || eq == args[i])
            return lm_error_set(LM_ERR_INVALID, "argument '%s' is not of the form key=value (or --key value)", args[i]);
        for (const char *c = args[i]; c < eq; c++) {
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                  *c == '.' || *c == '-'))
                return lm_error_set(LM_ERR_INVALID,
                                    "argument '%s': keys use letters, digits, '_', '.' and '-' only", args[i]);
        }
        LM_TRY(lm_config_set_parsed(out, args[i]));
    }
    return LM_OK;
}

/* Pushes the `args` table built from the parsed config. */
static int push_args(lua_State *L) {
    const lm_runtime_options *options = lua_touserdata(L, 1);
    lm_config *cfg;
    if (lm_config_create(&cfg, "script arguments") != LM_OK) return lm_lua_raise(L);
    if (lm_runtime_parse_args(options->args, options->n_args, cfg) != LM_OK) {
        lm_config_destroy(cfg);
        return lm_lua_raise(L);
    }
    lua_newtable(L);
    for (size_t i = 0; i < lm_config_count(cfg); i++) {
        const char *key = lm_config_key_at(cfg, i);
        switch (lm_config_type_at(cfg, i)) {
        case LM_CONFIG_BOOL: lua_pushboolean(L, lm_config_bool(cfg, key, 0)); break;
        case LM_CONFIG_INT: lua_pushinteger(L, (lua_Integer)lm_config_int(cfg, key, 0)); break;
        case LM_CONFIG_NUMBER: lua_pushnumber(L, lm_config_number(cfg, key, 0)); break;
        default: lua_pushstring(L, lm_config_string(cfg, key, "")); break;
        }
        lua_setfield(L, -2, key);
    }
    lm_config_destroy(cfg);
    lua_setglobal(L, "args");
    return 0;
}

lm_status lm_runtime_run(const lm_runtime_options *options, char **traceback) {
    *traceback = NULL;
    lua_State *L = luaL_newstate();
    if (!L) return lm_error_set(LM_ERR_NOMEM, "cannot create a Lua state (out of memory)");
    luaL_openlibs(L);
    lm_lua_guard_file_openers(L);
    lm_lua_set_registry(L, options->registry);
    luaL_requiref(L, "lm", open_lm, 1);
    lua_pop(L, 1);

    lm_status status = LM_OK;
    lua_pushcfunction(L, push_args);
    lua_pushlightuserdata(L, (void *)options);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        status = lm_error_set(LM_ERR_INVALID, "%s", lua_tostring(L, -1));
        lua_close(L);
        return status;
    }

    /* Script path as arg[0], like the standalone interpreter. */
    lua_createtable(L, 0, 1);
    lua_pushstring(L, options->script);
    lua_rawseti(L, -2, 0);
    lua_setglobal(L, "arg");

    lua_pushcfunction(L, traceback_handler);
    int handler = lua_gettop(L);
    /* luaL_loadfile would block on a FIFO: what is not a regular file is
     * refused first (stat() does not block). */
    if (lm_user_file_check(options->script) != LM_OK) {
        lm_error_prefix("script ");
        status = LM_ERR_IO;
        lua_close(L);
        return status;
    }
    int rc = luaL_loadfile(L, options->script);
    if (rc != LUA_OK) {
        const char *message = lua_tostring(L, -1);
        status = lm_error_set(rc == LUA_ERRFILE ? LM_ERR_IO : LM_ERR_INVALID, "%s", message ? message : "load error");
        lua_close(L);
        return status;
    }
    lm_interrupt_clear();
    interrupt_signal = SIGINT; /* what an lm_interrupt_request() from elsewhere counts as */
    void (*previous_int)(int) = signal(SIGINT, on_interrupt);
    void (*previous_term)(int) = signal(SIGTERM, on_interrupt);
    lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, 1000);
    rc = lua_pcall(L, 0, 0, handler);
    signal(SIGINT, previous_int == SIG_ERR ? SIG_DFL : previous_int);
    signal(SIGTERM, previous_term == SIG_ERR ? SIG_DFL : previous_term);
    if (rc != LUA_OK) {
        const char *full = lua_tostring(L, -1);
        if (!full) full = "(error object is not a string)";
        /* The first line is the message; the rest is the traceback. */
        const char *newline = strchr(full, '\n');
        size_t first_len = newline ? (size_t)(newline - full) : strlen(full);
        status = lm_interrupted() ? LM_ERR_INTERRUPTED : LM_ERR_INVALID;
        lm_error_set(status, "%.*s", (int)first_len, full);
        /* The traceback (and main's hint about it) only for internal
         * errors, or when asked for (LMCORE_TRACEBACK). */
        if (newline && (has_lua_position(full) || getenv("LMCORE_TRACEBACK"))) {
            *traceback = malloc(strlen(newline + 1) + 1);
            if (*traceback) strcpy(*traceback, newline + 1);
        }
    }
    lua_close(L); /* runs __gc of every object: plugins are released */
    return status;
}
