/* lmcore.Optimizer: an optimizer plugin instance (lm.optimizer), given to a
 * trainer, which binds it to its model. */
#include <string.h>

#include "lua_bindings.h"
#include "trainer.h"

/* lm.optimizer(name [, settings]): a plugin's name, or Hugging Face's
 * `optim` name for it (adamw_torch, lion_32bit, ...). */
static int new_optimizer(lua_State *L) {
    const char *plugin = NULL;
    if (lm_optimizer_plugin_for(luaL_checkstring(L, 1), &plugin) != LM_OK) return lm_lua_raise(L);
    lua_pushstring(L, plugin);
    lua_replace(L, 1);
    return lm_lua_new_object(L, LM_KIND_OPTIMIZER, LM_OPTIMIZER_MT);
}

/* optimizer:settings() -> table: the hyper-parameters in torch.optim names */
static int optimizer_settings(lua_State *L) {
    lm_object *o = lm_lua_check_object(L, 1, LM_OPTIMIZER_MT);
    lm_buffer members = {0}, text = {0};
    lm_status status = o->plugin->vtable.optimizer.settings_json(o->self, &members);
    if (status == LM_OK) status = lm_buffer_appendf(&text, "{%s}", members.data ? members.data : "");
    lm_buffer_free(&members);
    if (status != LM_OK) {
        lm_buffer_free(&text);
        return lm_lua_raise(L);
    }
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "lm");
    lua_getfield(L, -1, "json_decode");
    lua_pushlstring(L, text.data, text.len);
    lm_buffer_free(&text);
    lua_pushfstring(L, "optimizer '%s' settings", o->plugin->name);
    lua_call(L, 2, 1);
    return 1;
}

void lm_lua_open_optimizer(lua_State *L) {
    static const luaL_Reg methods[] = {{"settings", optimizer_settings}, {NULL, NULL}};
    lm_lua_define_class(L, LM_OPTIMIZER_MT, methods);
    lua_pushcfunction(L, new_optimizer);
    lua_setfield(L, -2, "optimizer");
}
