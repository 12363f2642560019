/* Internal pieces of the `lm` Lua module, one file per concept. */
#ifndef LMCORE_LUA_BINDINGS_H
#define LMCORE_LUA_BINDINGS_H

#include <lauxlib.h>
#include <lua.h>

#include "lmcore/lmcore.h"
#include "registry.h"

/* A plugin instance owned by a Lua userdata. */
typedef struct lm_object {
    const lm_plugin *plugin;
    void *self;
    lm_config *config; /* kept alive as long as the instance: plugins may keep its strings */
} lm_object;

/* Closes an object (idempotent). */
void lm_lua_object_close(lm_object *object);

#define LM_TOKENIZER_MT "lmcore.Tokenizer"
#define LM_DATASET_MT "lmcore.Dataset"
#define LM_MODEL_MT "lmcore.Model"
#define LM_OBJECTIVE_MT "lmcore.Objective"
#define LM_LOGGER_MT "lmcore.Logger"
#define LM_OPTIMIZER_MT "lmcore.Optimizer"
#define LM_BLOCKS_MT "lmcore.Blocks"
#define LM_TRAINER_MT "lmcore.Trainer"
#define LM_BATCH_MT "lmcore.Batch"

/* The registry the runtime was started with (stored in the Lua registry). */
lm_registry *lm_lua_registry(lua_State *L);

/* Raises the current lmcore error as a Lua error at the caller's file:line. */
int lm_lua_raise(lua_State *L);

/* Converts the table at `index` (or nil) to a config owned by the caller;
 * raises on a value that cannot be a config value. */
lm_config *lm_lua_to_config(lua_State *L, int index, const char *owner);

/* lm.<kind>(name [, settings]): a plugin instance of `kind` as a userdata
 * of `metatable` (arguments at 1 and 2); returns 1 (the object). */
int lm_lua_new_object(lua_State *L, lm_plugin_kind kind, const char *metatable);

/* The same, owned by a userdata pushed on the stack (freed by the
 * collector): for configs that must not leak when an error is raised
 * before the caller is done with them. */
lm_config *lm_lua_boxed_config(lua_State *L, int index, const char *owner);

/* Checks that argument `index` is an open object of the metatable. */
lm_object *lm_lua_check_object(lua_State *L, int index, const char *metatable);

/* Creates metatable `name` with __gc/__close/__tostring and the methods
 * (plus close() and name()) as __index. */
void lm_lua_define_class(lua_State *L, const char *name, const luaL_Reg *methods);
/* The same for a userdata that is not a plugin instance: `close` is its
 * __gc, __close and close(). */
void lm_lua_define_plain_class(lua_State *L, const char *name, lua_CFunction close, const luaL_Reg *methods);

/* Checks that argument `index` is open token blocks (lm.blocks). */
struct lm_blocks *lm_lua_check_blocks(lua_State *L, int index);
/* Whether the blocks userdata at `index` was closed. */
int lm_lua_blocks_closed(lua_State *L, int index);

/* Registers metatables and adds the constructors to the module table at -1. */
void lm_lua_open_objects(lua_State *L);
void lm_lua_open_model(lua_State *L);
void lm_lua_open_json(lua_State *L);
void lm_lua_open_optimizer(lua_State *L);
void lm_lua_open_blocks(lua_State *L);
void lm_lua_open_trainer(lua_State *L);
void lm_lua_open_distributed(lua_State *L);
void lm_lua_set_registry(lua_State *L, lm_registry *r);

#endif
