/* lm.lock_dir(path [, setting]): one run per output folder (dir_lock.h).
 * Returns a lock to hold for the run, released by close() or at the end of
 * its scope (`local lock <close> = lm.lock_dir(dir)`), and by the kernel
 * if the process dies.  The folder is created if needed.  `setting` names
 * the folder in messages (default "output_dir"). */
#include "dir_lock.h"
#include "lua_bindings.h"

#define LM_DIR_LOCK_MT "lmcore.DirLock"

typedef struct lua_dir_lock {
    lm_dir_lock *lock;
} lua_dir_lock;

static int lock_dir(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    const char *setting = luaL_optstring(L, 2, "output_dir");
    lua_dir_lock *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->lock = NULL;
    luaL_setmetatable(L, LM_DIR_LOCK_MT);
    if (lm_dir_lock_acquire(path, setting, &box->lock) != LM_OK) return lm_lua_raise(L);
    return 1;
}

static int lock_close(lua_State *L) {
    lua_dir_lock *box = luaL_checkudata(L, 1, LM_DIR_LOCK_MT);
    lm_dir_lock_release(box->lock);
    box->lock = NULL;
    return 0;
}

void lm_lua_open_lock(lua_State *L) {
    static const luaL_Reg methods[] = {{NULL, NULL}};
    lm_lua_define_plain_class(L, LM_DIR_LOCK_MT, lock_close, methods);
    lua_pushcfunction(L, lock_dir);
    lua_setfield(L, -2, "lock_dir");
}
