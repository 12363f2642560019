/* The `lm` module across ranks (docs/distributed.md): lm.rank(),
 * lm.world_size(), lm.is_main_process(), and what a rank other than 0
 * leaves to rank 0, so that a script written for one process writes
 * everything once under mpirun: its loggers are silent (no file is opened,
 * no line printed), lm.write_file, lm.lock_dir, model:save and print do
 * nothing, and
 * the log level is raised to warnings (no progress bars).  The rank comes
 * from the launcher's environment, known before any communicator exists. */
#include <stdlib.h>
#include <string.h>

#include "distributed.h"
#include "lua_bindings.h"

/* ---- a silent logger: the one a rank other than 0 gets ---- */

static lm_status silent_create(void **self, lm_config *cfg) {
    (void)cfg;
    *self = malloc(1);
    return *self ? LM_OK : lm_error_set(LM_ERR_NOMEM, "out of memory creating a logger");
}
static void silent_destroy(void *self) { free(self); }
static lm_status silent_log(void *self, const lm_event *ev) {
    (void)self, (void)ev;
    return LM_OK;
}
static const lm_logger_vtable silent_vtable = {silent_create, silent_destroy, silent_log, NULL};

/* A copy of the real plugin's entry (its name in messages) with the silent
 * vtable; one per logger plugin, for the life of the process. */
static const lm_plugin *silent_plugin(const lm_plugin *real) {
    static lm_plugin copies[64];
    static size_t n;
    for (size_t i = 0; i < n; i++)
        if (copies[i].descriptor == real->descriptor) return &copies[i];
    if (n == sizeof copies / sizeof *copies) return NULL;
    lm_plugin *p = &copies[n++];
    *p = *real;
    memset(&p->vtable, 0, sizeof p->vtable);
    p->vtable.logger = silent_vtable;
    return p;
}

/* lm.logger(name, settings) on a rank other than 0: the plugin must exist
 * (a wrong name fails on every rank alike), but nothing is created. */
static int new_silent_logger(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 2);
    const lm_plugin *real;
    if (lm_registry_find(lm_lua_registry(L), LM_KIND_LOGGER, name, &real) != LM_OK) return lm_lua_raise(L);
    const lm_plugin *plugin = silent_plugin(real);
    if (!plugin) return luaL_error(L, "lm.logger: too many logger plugins");
    lm_object *object = lua_newuserdatauv(L, sizeof *object, 1);
    memset(object, 0, sizeof *object);
    luaL_setmetatable(L, LM_LOGGER_MT);
    if (lm_config_create(&object->config, "a silent logger") != LM_OK) return lm_lua_raise(L);
    object->plugin = plugin;
    if (plugin->vtable.logger.create(&object->self, object->config) != LM_OK) return lm_lua_raise(L);
    return 1;
}

static int do_nothing(lua_State *L) {
    (void)L;
    return 0;
}

static int rank_lua(lua_State *L) {
    lua_pushinteger(L, lm_distributed_rank());
    return 1;
}

static int world_size_lua(lua_State *L) {
    lua_pushinteger(L, lm_distributed_size());
    return 1;
}

static int is_main_process_lua(lua_State *L) {
    lua_pushboolean(L, lm_distributed_rank() == 0);
    return 1;
}

/* With the `lm` table on the top of the stack. */
void lm_lua_open_distributed(lua_State *L) {
    static const luaL_Reg functions[] = {
        {"rank", rank_lua}, {"world_size", world_size_lua}, {"is_main_process", is_main_process_lua}, {NULL, NULL}};
    luaL_setfuncs(L, functions, 0);
    if (lm_launch_rank() == 0) return;
    lua_pushcfunction(L, new_silent_logger);
    lua_setfield(L, -2, "logger");
    lua_pushcfunction(L, do_nothing);
    lua_setfield(L, -2, "write_file");
    /* Only rank 0 writes the output folder, so only rank 0 locks it (every
     * rank taking it would refuse all but the first). */
    lua_pushcfunction(L, do_nothing);
    lua_setfield(L, -2, "lock_dir");
    lua_pushcfunction(L, do_nothing);
    lua_setglobal(L, "print");
    if (lm_log_get_level() == LM_LOG_INFO) lm_log_set_level(LM_LOG_WARN);
}
