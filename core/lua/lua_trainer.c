/* lm.trainer: the training step as methods a Lua loop calls, and fit(),
 * the loop with Hugging Face's cadence and callbacks (written in Lua on the
 * same methods: core/lua/embedded/trainer.lua). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "distributed.h"
#include "lua_bindings.h"
#include "trainer.h"

/* Uservalue slots of a Trainer: the table of its parts (kept alive, and
 * checked still open before each call), and the Lua schedule function. */
enum { TRAINER_PARTS = 1, TRAINER_SCHEDULE = 2 };

typedef struct lua_trainer {
    lm_trainer *trainer;
} lua_trainer;

/* A Batch: the trainer's latest micro-batch, valid until the next one. */
typedef struct lua_batch {
    const lm_batch *batch;
    uint64_t serial;
    lm_trainer *trainer; /* checked against the trainer userdata's (uservalue 1) */
} lua_batch;

static const char lua_code_key = 'c'; /* the table trainer.lua returns, in the registry */

extern const char lm_lua_trainer_lua[]; /* core/lua/embedded/trainer.lua, embedded */

static int trainer_close(lua_State *L) {
    lua_trainer *t = lua_touserdata(L, 1);
    if (t) {
        lm_trainer_destroy(t->trainer);
        t->trainer = NULL;
    }
    return 0;
}

/* The trainer holds raw pointers to its parts: refuse to run it once the
 * script closed one of them (closing does not wait for the collector). */
static void check_parts_open(lua_State *L, int index) {
    static const char *const parts[] = {"model", "objective", "tokenizer", "optimizer", "train", "eval"};
    lua_getiuservalue(L, index, TRAINER_PARTS);
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        lua_getfield(L, -1, parts[i]);
        int closed = 0;
        if (luaL_testudata(L, -1, LM_BLOCKS_MT)) closed = lm_lua_blocks_closed(L, -1);
        else if (lua_isuserdata(L, -1)) closed = ((lm_object *)lua_touserdata(L, -1))->self == NULL;
        lua_pop(L, 1);
        if (closed)
            lm_lua_error(L, "the trainer's %s was closed: close the trainer first, or keep its parts open while it runs",
                       parts[i]);
    }
    lua_getfield(L, -1, "loggers");
    if (lua_istable(L, -1)) {
        for (lua_Integer i = 1; lua_geti(L, -1, i) != LUA_TNIL; i++) {
            int closed = ((lm_object *)lua_touserdata(L, -1))->self == NULL;
            lua_pop(L, 1);
            if (closed) lm_lua_error(L, "the trainer's logger %d was closed: close the trainer first", (int)i);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
}

static lm_trainer *check_trainer(lua_State *L, int index) {
    lua_trainer *t = luaL_checkudata(L, index, LM_TRAINER_MT);
    if (!t->trainer) lm_lua_error(L, "attempt to use a closed trainer");
    check_parts_open(L, index);
    return t->trainer;
}

/* Pushes field `name` of the table trainer.lua returned. */
static void push_lua_code(lua_State *L, const char *name) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &lua_code_key);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
}

static lm_handle handle_of(lm_object *o) {
    lm_handle h = {o->plugin, o->self};
    return h;
}

/* Keys of the lm.trainer table that are objects (or Lua values), not
 * settings: everything else goes to the C trainer as a setting. */
static const char *const object_keys[] = {"model",     "objective", "tokenizer", "train",
                                          "eval",      "loggers",   "optimizer", "optimizer_args",
                                          "callbacks", "lr_scheduler_kwargs", "optim", NULL};

static int is_object_key(lua_State *L, int key_index) {
    if (lua_type(L, key_index) != LUA_TSTRING) return 0;
    const char *key = lua_tostring(L, key_index);
    for (int i = 0; object_keys[i]; i++)
        if (strcmp(key, object_keys[i]) == 0) return 1;
    return 0;
}

/* The optimizer: the Optimizer object given, or one made from its name (and
 * the trainer table's optimizer settings, and optimizer_args).  Leaves the
 * Optimizer on the stack. */
static lm_object *make_optimizer(lua_State *L, int table, lm_config *settings) {
    /* optim, Hugging Face's name for the key, is taken as optimizer's alias. */
    lua_getfield(L, table, "optim");
    int optim_given = !lua_isnil(L, -1);
    lua_getfield(L, table, "optimizer");
    if (optim_given && !lua_isnil(L, -1))
        lm_lua_error(L, "lm.trainer: optimizer and optim (its Hugging Face name) are both given: keep one");
    if (optim_given) lua_copy(L, -2, -1);
    lua_remove(L, -2);
    if (luaL_testudata(L, -1, LM_OPTIMIZER_MT)) {
        lm_object *given = lm_lua_check_object(L, -1, LM_OPTIMIZER_MT);
        const char *stray = lm_trainer_stray_optimizer_setting(settings);
        lua_getfield(L, table, "optimizer_args");
        int has_args = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (stray || has_args) {
            lm_lua_error(L, "lm.trainer: '%s' belongs to the optimizer, which is given as an object: set it when "
                          "creating the optimizer (lm.optimizer('%s', {...}))",
                       stray ? stray : "optimizer_args", given->plugin->name);
        }
        return given;
    }
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        lm_lua_error(L, "lm.trainer: optimizer must be a name (adamw, sgd, lion, ...) or an Optimizer, got a %s",
                   luaL_typename(L, -1));
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "adamw");
    }
    const char *plugin = NULL;
    if (lm_optimizer_plugin_for(lua_tostring(L, -1), &plugin) != LM_OK) lm_lua_raise(L);
    lua_pushstring(L, plugin);
    lua_remove(L, -2);
    int name = lua_gettop(L);
    /* lm.optimizer(name, settings) with settings = optimizer_args + the
     * trainer's optimizer keys. */
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "lm");
    lua_getfield(L, -1, "optimizer");
    lua_remove(L, -2);
    lua_remove(L, -2);
    lua_pushvalue(L, name);
    lua_remove(L, name); /* the function and the name are now the call's */
    lua_getfield(L, table, "optimizer_args");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
    } else if (!lua_istable(L, -1)) {
        lm_lua_error(L, "lm.trainer: optimizer_args must be a table of the optimizer's settings, got a %s",
                   luaL_typename(L, -1));
    } else {
        /* a copy: the caller's table stays as it was */
        lua_newtable(L);
        lua_pushnil(L);
        while (lua_next(L, -3)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -4);
        }
        lua_remove(L, -2);
    }
    lua_pushnil(L);
    lm_config *extra = lm_lua_boxed_config(L, -1, "the optimizer"); /* empty, freed with its box */
    lua_remove(L, -2);
    lua_insert(L, -2); /* the box below the settings table */
    if (lm_trainer_optimizer_settings(settings, extra) != LM_OK) lm_lua_raise(L);
    for (size_t i = 0; i < lm_config_count(extra); i++) {
        const char *key = lm_config_key_at(extra, i);
        lua_getfield(L, -1, key);
        int given = !lua_isnil(L, -1);
        lua_pop(L, 1);
        /* weight_decay is in `extra` even when the trainer's table lacks it
         * (its default, 0.01): optimizer_args may give it then. */
        int from_trainer = strcmp(key, "weight_decay") != 0 || lm_config_has(settings, "weight_decay");
        if (given && from_trainer)
            lm_lua_error(L, "lm.trainer: '%s' is given twice, in the trainer's settings and in optimizer_args: keep one",
                       key);
        if (given) continue;
        lua_pushnumber(L, lm_config_number(extra, key, 0.0));
        lua_setfield(L, -2, key);
    }
    lua_remove(L, -2); /* the box: done with it */
    lua_call(L, 2, 1); /* raises with the plugin's message on bad settings */
    return lm_lua_check_object(L, -1, LM_OPTIMIZER_MT);
}

/* lm.trainer{model=, objective=, tokenizer=, train=, eval=, loggers={...},
 *            optimizer=, optimizer_args=, callbacks={...}, <settings>} */
/* The part `key` of the lm.trainer table, on the stack: an open object of
 * `metatable`, named in the message by what makes one. */
static void *trainer_part(lua_State *L, const char *key, const char *metatable, const char *made_by, int optional) {
    lua_getfield(L, 1, key);
    if (optional && lua_isnil(L, -1)) return NULL;
    if (!luaL_testudata(L, -1, metatable)) {
        char given[96];
        lm_lua_describe_value(L, -1, given, sizeof given);
        lm_lua_error(L, "lm.trainer: '%s' must be %s, got %s", key, made_by, given);
    }
    if (strcmp(metatable, LM_BLOCKS_MT) == 0) return lm_lua_check_blocks(L, lua_gettop(L));
    return lm_lua_check_object(L, -1, metatable);
}

static int new_trainer(lua_State *L) {
    if (!lua_istable(L, 1)) {
        char given[96];
        lm_lua_describe_value(L, 1, given, sizeof given);
        return lm_lua_error(L, "lm.trainer takes one table {model = ..., objective = ..., tokenizer = ..., train = "
                               "..., <settings>}, got %s", given);
    }
    lua_settop(L, 1);
    lm_object *model = trainer_part(L, "model", LM_MODEL_MT, "a model (lm.architecture or lm.load_model)", 0);
    lm_object *objective = trainer_part(L, "objective", LM_OBJECTIVE_MT, "an objective (lm.objective)", 0);
    lm_object *tokenizer = trainer_part(L, "tokenizer", LM_TOKENIZER_MT, "a tokenizer (lm.tokenizer)", 0);
    lm_blocks *train = trainer_part(L, "train", LM_BLOCKS_MT, "token blocks (lm.blocks)", 0);
    lm_blocks *eval = trainer_part(L, "eval", LM_BLOCKS_MT, "token blocks (lm.blocks) or nil", 1);
    lm_handle loggers[16];
    size_t n_loggers = 0;
    lua_getfield(L, 1, "loggers");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            return lm_lua_error(L, "lm.trainer: 'loggers' must be a list of loggers (lm.logger), got a %s",
                                luaL_typename(L, -1));
        lua_Integer n = luaL_len(L, -1);
        if (n > 16) return lm_lua_error(L, "lm.trainer: at most 16 loggers, got %lld", (long long)n);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, -1, i);
            if (!luaL_testudata(L, -1, LM_LOGGER_MT)) {
                char given[96];
                lm_lua_describe_value(L, -1, given, sizeof given);
                return lm_lua_error(L, "lm.trainer: loggers[%d] must be a logger (lm.logger), got %s", (int)i, given);
            }
            loggers[n_loggers++] = handle_of(lm_lua_check_object(L, -1, LM_LOGGER_MT));
            lua_pop(L, 1);
        }
    }
    lua_settop(L, 1);
    /* Callbacks are checked (names, event keys) before anything is made. */
    lua_getfield(L, 1, "callbacks");
    push_lua_code(L, "check_callbacks");
    lua_insert(L, -2);
    lua_call(L, 1, 1); /* the list, with shipped callbacks' names replaced by callbacks */
    int callbacks = lua_gettop(L);

    /* The settings are the table minus the object keys; a function given as
     * the schedule is the caller's schedule. */
    lua_newtable(L);
    int settings_table = lua_gettop(L);
    int host_schedule = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if (is_object_key(L, -2)) {
            lua_pop(L, 1);
            continue;
        }
        if (lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1) &&
            (strcmp(lua_tostring(L, -2), "lr_scheduler_type") == 0 || strcmp(lua_tostring(L, -2), "schedule") == 0)) {
            host_schedule = 1;
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, settings_table);
    }
    lm_config *settings = lm_lua_boxed_config(L, settings_table, "the trainer");
    lm_object *optimizer = make_optimizer(L, 1, settings);
    int optimizer_index = lua_gettop(L);
    lm_config *kwargs = NULL;
    lua_getfield(L, 1, "lr_scheduler_kwargs");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            return lm_lua_error(L, "lm.trainer: lr_scheduler_kwargs must be a table, got a %s", luaL_typename(L, -1));
        kwargs = lm_lua_boxed_config(L, -1, "lr_scheduler_kwargs");
        lua_insert(L, -2); /* the box stays below the table, on the stack until the trainer is made */
    }
    lua_pop(L, 1);

    lua_trainer *t = lua_newuserdatauv(L, sizeof *t, 2);
    t->trainer = NULL;
    luaL_setmetatable(L, LM_TRAINER_MT);
    /* Keep the parts alive as long as the trainer, in a table of its own
     * (the script may change the one it passed): check_parts_open() reads it. */
    lua_createtable(L, 0, 10);
    for (int i = 0; object_keys[i]; i++) {
        if (strcmp(object_keys[i], "optimizer") == 0) lua_pushvalue(L, optimizer_index);
        else if (strcmp(object_keys[i], "callbacks") == 0) lua_pushvalue(L, callbacks);
        else if (strcmp(object_keys[i], "loggers") == 0) {
            lua_createtable(L, (int)n_loggers, 0);
            lua_getfield(L, 1, "loggers");
            for (lua_Integer i2 = 1; i2 <= (lua_Integer)n_loggers; i2++) {
                lua_geti(L, -1, i2);
                lua_seti(L, -3, i2);
            }
            lua_pop(L, 1);
        } else lua_getfield(L, 1, object_keys[i]);
        lua_setfield(L, -2, object_keys[i]);
    }
    lua_setiuservalue(L, -2, TRAINER_PARTS);
    if (host_schedule) {
        lua_getfield(L, 1, "lr_scheduler_type");
        if (!lua_isfunction(L, -1)) {
            lua_pop(L, 1);
            lua_getfield(L, 1, "schedule");
        }
        lua_setiuservalue(L, -2, TRAINER_SCHEDULE);
    }
    lm_trainer_parts parts;
    memset(&parts, 0, sizeof parts);
    parts.model = handle_of(model);
    parts.objective = handle_of(objective);
    parts.optimizer = handle_of(optimizer);
    parts.tokenizer = handle_of(tokenizer);
    parts.train = train;
    parts.eval = eval;
    parts.loggers = loggers;
    parts.n_loggers = n_loggers;
    /* Data parallel (docs/distributed.md): the process's communicator,
     * "auto" = mpi/nccl under mpirun or srun, none in one process. */
    const char *communicator = lm_config_string(settings, "communicator", "auto");
    const int64_t zero_stage = lm_config_int(settings, "zero_stage", 0);
    parts.zero_stage = zero_stage < -1000 || zero_stage > 1000 ? 1000 : (int)zero_stage;
    lm_arch_info arch;
    memset(&arch, 0, sizeof arch);
    if (model->plugin->vtable.architecture.info(model->self, &arch) != LM_OK) return lm_lua_raise(L);
    if (lm_distributed_join(lm_lua_registry(L), communicator, arch.device, &parts.communicator) != LM_OK)
        return lm_lua_raise(L);
    if (lm_trainer_create(&t->trainer, settings, kwargs, host_schedule, &parts) != LM_OK) return lm_lua_raise(L);
    /* A resumed run loaded the model's weights from its checkpoint; any
     * other would train from zeros. */
    if (lm_trainer_resumed_from(t->trainer)[0]) model->weights_set = 1;
    lm_lua_check_weights_set(L, model, "lm.trainer");
    return 1;
}

/* ---- Batch ------------------------------------------------------------------------ */

static void push_int_list(lua_State *L, const int32_t *values, size_t n) {
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushinteger(L, values[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static int batch_index(lua_State *L) {
    lua_batch *b = luaL_checkudata(L, 1, LM_BATCH_MT);
    const char *key = luaL_checkstring(L, 2);
    lua_getiuservalue(L, 1, 1);
    lua_trainer *owner = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!owner || owner->trainer != b->trainer || !b->trainer)
        return lm_lua_error(L, "this batch's trainer was closed");
    if (b->serial != lm_trainer_batch_serial(b->trainer))
        return lm_lua_error(L, "this batch is stale: the trainer has made a newer one (the objective reuses its memory)");
    const lm_batch *batch = b->batch;
    const size_t n = (size_t)batch->B * (size_t)batch->T;
    if (strcmp(key, "size") == 0 || strcmp(key, "B") == 0) lua_pushinteger(L, batch->B);
    else if (strcmp(key, "T") == 0) lua_pushinteger(L, batch->T);
    else if (strcmp(key, "n_targets") == 0) lua_pushinteger(L, (lua_Integer)batch->n_targets);
    else if (strcmp(key, "input_ids") == 0) push_int_list(L, batch->input_ids, n);
    else if (strcmp(key, "labels") == 0) push_int_list(L, batch->labels, n);
    else lua_pushnil(L);
    return 1;
}

/* trainer:next_batch() -> Batch */
static int trainer_next_batch(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    const lm_batch *batch = NULL;
    uint64_t serial = 0;
    if (lm_trainer_next_batch(t, &batch, &serial) != LM_OK) return lm_lua_raise(L);
    lua_batch *b = lua_newuserdatauv(L, sizeof *b, 1);
    b->batch = batch;
    b->serial = serial;
    b->trainer = t;
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    luaL_setmetatable(L, LM_BATCH_MT);
    return 1;
}

/* trainer:forward_backward(batch) */
static int trainer_forward_backward(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    lua_batch *b = luaL_checkudata(L, 2, LM_BATCH_MT);
    if (b->trainer != t)
        return lm_lua_error(L, "trainer:forward_backward: the batch comes from another trainer (use this trainer's "
                               "next_batch())");
    if (lm_trainer_forward_backward(t, b->batch, b->serial) != LM_OK) return lm_lua_raise(L);
    return 0;
}

static int trainer_clip_grad_norm(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    if (lm_trainer_clip_grad_norm(t) != LM_OK) return lm_lua_raise(L);
    return 0;
}

/* The learning rate of the Lua schedule function at the current step,
 * (step, total_steps) -> lr, into *lr; returns 0 (and leaves *lr) when the
 * trainer has no Lua schedule.  Raises when the function returns anything
 * but a number. */
static int lua_schedule_lr(lua_State *L, lm_trainer *t, double *lr) {
    if (lua_getiuservalue(L, 1, TRAINER_SCHEDULE) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return 0;
    }
    lua_pushinteger(L, (lua_Integer)lm_trainer_step(t));
    lua_pushinteger(L, (lua_Integer)lm_trainer_plan_of(t)->total_steps);
    lua_call(L, 2, 1);
    int is_number = 0;
    *lr = (double)lua_tonumberx(L, -1, &is_number);
    if (!is_number)
        return lm_lua_error(L, "lr_scheduler_type: the schedule function returned a %s at step %d: it must return "
                             "the learning rate, a number >= 0",
                          luaL_typename(L, -1), (int)lm_trainer_step(t));
    lua_pop(L, 1);
    return 1;
}

/* trainer:optimizer_step(): the Lua schedule function, if any, gives the
 * learning rate (the trainer checks it is finite and >= 0). */
static int trainer_optimizer_step(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    double lr = 0.0;
    const double *host_lr = lua_schedule_lr(L, t, &lr) ? &lr : NULL;
    if (lm_trainer_optimizer_step(t, host_lr) != LM_OK) return lm_lua_raise(L);
    return 0;
}

static void set_number(lua_State *L, const char *name, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, name);
}

static void set_integer(lua_State *L, const char *name, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, name);
}

/* trainer:log() -> {loss=, learning_rate=, grad_norm=, epoch=, step=, tokens_per_second=} */
static int trainer_log(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    lm_train_logs logs;
    if (lm_trainer_log(t, &logs) != LM_OK) return lm_lua_raise(L);
    lua_createtable(L, 0, 6);
    set_number(L, "loss", logs.loss);
    set_number(L, "learning_rate", logs.learning_rate);
    set_number(L, "grad_norm", logs.grad_norm);
    set_number(L, "epoch", logs.epoch);
    set_integer(L, "step", logs.step);
    set_number(L, "tokens_per_second", logs.tokens_per_second);
    return 1;
}

static int trainer_check(lua_State *L) {
    if (lm_trainer_check(check_trainer(L, 1)) != LM_OK) return lm_lua_raise(L);
    return 0;
}

/* trainer:evaluate([blocks]) -> loss, perplexity, metrics.  Without blocks
 * it evaluates the eval blocks and reports the evaluation to the loggers. */
static int trainer_evaluate(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    lm_blocks *blocks = lua_isnoneornil(L, 2) ? NULL : lm_lua_check_blocks(L, 2);
    lm_eval_result r;
    if (lm_trainer_evaluate(t, blocks, blocks == NULL, &r) != LM_OK) return lm_lua_raise(L);
    lua_pushnumber(L, r.loss);
    lua_pushnumber(L, r.perplexity);
    lua_createtable(L, 0, 7);
    set_number(L, "eval_loss", r.loss);
    set_number(L, "perplexity", r.perplexity);
    set_number(L, "train_loss", r.train_loss);
    set_number(L, "epoch", r.epoch);
    set_integer(L, "step", r.step);
    set_number(L, "eval_runtime", r.runtime);
    set_number(L, "eval_samples_per_second", r.samples_per_second);
    return 3;
}

/* trainer:save([fit_state_json [, protect]]) -> the checkpoint's folder */
static int trainer_save(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    const char *extra = luaL_optstring(L, 2, NULL);
    const char *protect = luaL_optstring(L, 3, NULL);
    char dir[4200];
    if (lm_trainer_save(t, extra, protect, dir, sizeof dir) != LM_OK) return lm_lua_raise(L);
    lua_pushstring(L, dir);
    return 1;
}

/* trainer:resumed_state() -> the JSON text fit() saved with the checkpoint resumed from, or nil */
static int trainer_resumed_state(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    const char *text = lm_trainer_resumed_extra(t);
    if (*text) lua_pushstring(L, text);
    else lua_pushnil(L);
    return 1;
}

/* trainer:finish() -> {steps=, epochs=, train_loss=, eval_loss=, perplexity=, runtime=, ...} */
static int trainer_finish(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    lm_train_result r;
    if (lm_trainer_finish(t, &r) != LM_OK) return lm_lua_raise(L);
    lua_createtable(L, 0, 9);
    set_integer(L, "steps", r.steps);
    set_number(L, "epochs", r.epochs);
    set_number(L, "train_loss", r.train_loss);
    set_number(L, "eval_loss", r.eval_loss);
    set_number(L, "perplexity", r.perplexity);
    set_number(L, "runtime", r.runtime);
    set_number(L, "samples_per_second", r.samples_per_second);
    set_number(L, "steps_per_second", r.steps_per_second);
    set_number(L, "tokens_per_second", r.tokens_per_second);
    return 1;
}

static int trainer_learning_rate(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    double lr = 0.0;
    lua_pushnumber(L, lua_schedule_lr(L, t, &lr) ? lr : lm_trainer_learning_rate(t));
    return 1;
}

static int trainer_set_learning_rate(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    if (lm_trainer_set_learning_rate(t, luaL_checknumber(L, 2)) != LM_OK) return lm_lua_raise(L);
    return 0;
}

static int trainer_device_counters(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    lm_device_counters c;
    lm_trainer_device_counters(t, &c);
    lua_createtable(L, 0, 3);
    set_integer(L, "downloads", (lua_Integer)c.downloads);
    set_integer(L, "syncs", (lua_Integer)c.syncs);
    set_integer(L, "uploads", (lua_Integer)c.uploads);
    return 1;
}

/* trainer:graph_stats(): the step as CUDA graphs (cuda_graph=auto). */
static int trainer_graph_stats(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    lm_trainer_graph_counts c;
    lm_trainer_graph_stats(t, &c);
    lua_createtable(L, 0, 4);
    lua_pushboolean(L, c.enabled);
    lua_setfield(L, -2, "enabled");
    set_integer(L, "eager", (lua_Integer)c.eager);
    set_integer(L, "captured", (lua_Integer)c.captured);
    set_integer(L, "replayed", (lua_Integer)c.replayed);
    return 1;
}

static int trainer_args_json(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    lm_buffer json = {0};
    if (lm_trainer_args_json(t, &json) != LM_OK) {
        lm_buffer_free(&json);
        return lm_lua_raise(L);
    }
    lua_pushlstring(L, json.data, json.len);
    lm_buffer_free(&json);
    return 1;
}

/* trainer:message(text [, level]): a line to every logger */
static int trainer_message(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    const char *text = luaL_checkstring(L, 2);
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    int level = lm_lua_check_choice(L, 3, "trainer:message", "the level", "info", levels);
    if (lm_trainer_message(t, (lm_log_level)level, text) != LM_OK) return lm_lua_raise(L);
    return 0;
}

static const char *const strategy_names[] = {"no", "steps", "epoch"};

/* Fields: trainer.step, trainer.total_steps, ... and the trainer's parts. */
static int trainer_index(lua_State *L) {
    luaL_checkudata(L, 1, LM_TRAINER_MT);
    const char *key = luaL_checkstring(L, 2);
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "methods");
    lua_getfield(L, -1, key);
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 3);
    lm_trainer *t = check_trainer(L, 1);
    const lm_trainer_plan *p = lm_trainer_plan_of(t);
    static const char *const parts[] = {"model", "objective", "tokenizer", "optimizer", "train", "eval",
                                        "loggers", "callbacks", NULL};
    for (int i = 0; parts[i]; i++) {
        if (strcmp(key, parts[i]) != 0) continue;
        lua_getiuservalue(L, 1, TRAINER_PARTS);
        lua_getfield(L, -1, key);
        return 1;
    }
    if (strcmp(key, "step") == 0) lua_pushinteger(L, (lua_Integer)lm_trainer_step(t));
    else if (strcmp(key, "total_steps") == 0) lua_pushinteger(L, (lua_Integer)p->total_steps);
    else if (strcmp(key, "epoch") == 0) lua_pushnumber(L, lm_trainer_epoch(t));
    else if (strcmp(key, "epoch_done") == 0) lua_pushboolean(L, lm_trainer_epoch_done(t));
    else if (strcmp(key, "num_train_epochs") == 0) lua_pushinteger(L, (lua_Integer)p->total_epochs);
    else if (strcmp(key, "steps_per_epoch") == 0) lua_pushinteger(L, (lua_Integer)p->steps_per_epoch);
    else if (strcmp(key, "grad_accum") == 0) lua_pushinteger(L, (lua_Integer)p->grad_accum);
    else if (strcmp(key, "batch_size") == 0) lua_pushinteger(L, (lua_Integer)p->batch_size);
    else if (strcmp(key, "micro_batches_in_step") == 0)
        lua_pushinteger(L, (lua_Integer)lm_trainer_micro_batches_in_step(t));
    else if (strcmp(key, "logging_strategy") == 0) lua_pushstring(L, strategy_names[p->logging_strategy]);
    else if (strcmp(key, "logging_steps") == 0) lua_pushinteger(L, (lua_Integer)p->logging_steps);
    else if (strcmp(key, "eval_strategy") == 0) lua_pushstring(L, strategy_names[p->eval_strategy]);
    else if (strcmp(key, "eval_steps") == 0) lua_pushinteger(L, (lua_Integer)p->eval_steps);
    else if (strcmp(key, "save_strategy") == 0) lua_pushstring(L, strategy_names[p->save_strategy]);
    else if (strcmp(key, "save_steps") == 0) lua_pushinteger(L, (lua_Integer)p->save_steps);
    else if (strcmp(key, "load_best_model_at_end") == 0) lua_pushboolean(L, p->load_best_model_at_end);
    else if (strcmp(key, "eval_on_start") == 0) lua_pushboolean(L, p->eval_on_start);
    else if (strcmp(key, "logging_first_step") == 0) lua_pushboolean(L, p->logging_first_step);
    else if (strcmp(key, "save_only_model") == 0) lua_pushboolean(L, p->save_only_model);
    else if (strcmp(key, "metric_for_best_model") == 0) lua_pushstring(L, p->metric_for_best_model);
    else if (strcmp(key, "greater_is_better") == 0) lua_pushboolean(L, p->greater_is_better);
    else if (strcmp(key, "early_stopping_patience") == 0) lua_pushinteger(L, (lua_Integer)p->early_stopping_patience);
    else if (strcmp(key, "early_stopping_threshold") == 0) lua_pushnumber(L, p->early_stopping_threshold);
    else if (strcmp(key, "checkpoint_dir") == 0) {
        if (p->has_checkpoint_dir) lua_pushstring(L, lm_trainer_checkpoint_dir(t));
        else lua_pushnil(L);
    } else if (strcmp(key, "resumed_from") == 0) {
        const char *from = lm_trainer_resumed_from(t);
        if (*from) lua_pushstring(L, from);
        else lua_pushnil(L);
    } else lua_pushnil(L);
    return 1;
}

/* trainer:fit() -> result: the loop of core/lua/embedded/trainer.lua.  The
 * runtime's Ctrl-C hook (which stops pure Lua loops) is off meanwhile: the
 * loop checks lm.interrupted() after each step itself, to save a
 * checkpoint before it stops. */
static int trainer_fit(lua_State *L) {
    check_trainer(L, 1);
    lua_settop(L, 1);
    lua_Hook hook = lua_gethook(L);
    int mask = lua_gethookmask(L), count = lua_gethookcount(L);
    lua_sethook(L, NULL, 0, 0);
    push_lua_code(L, "fit");
    lua_insert(L, 1);
    int rc = lua_pcall(L, 1, 1, 0);
    lua_sethook(L, hook, mask, count);
    if (rc != LUA_OK) return lua_error(L);
    return 1;
}

void lm_lua_open_trainer(lua_State *L) {
    static const luaL_Reg methods[] = {{"next_batch", trainer_next_batch},
                                       {"forward_backward", trainer_forward_backward},
                                       {"clip_grad_norm", trainer_clip_grad_norm},
                                       {"optimizer_step", trainer_optimizer_step},
                                       {"log", trainer_log},
                                       {"check", trainer_check},
                                       {"evaluate", trainer_evaluate},
                                       {"save", trainer_save},
                                       {"resumed_state", trainer_resumed_state},
                                       {"finish", trainer_finish},
                                       {"fit", trainer_fit},
                                       {"learning_rate", trainer_learning_rate},
                                       {"set_learning_rate", trainer_set_learning_rate},
                                       {"device_counters", trainer_device_counters},
                                       {"graph_stats", trainer_graph_stats},
                                       {"args_json", trainer_args_json},
                                       {"message", trainer_message},
                                       {NULL, NULL}};
    lm_lua_define_plain_class(L, LM_TRAINER_MT, trainer_close, methods);
    /* The methods (close() included) move to "methods": trainer_index looks
     * there first, then at the trainer's parts and settings. */
    luaL_getmetatable(L, LM_TRAINER_MT);
    lua_getfield(L, -1, "__index");
    lua_setfield(L, -2, "methods");
    lua_pushcfunction(L, trainer_index);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    luaL_newmetatable(L, LM_BATCH_MT);
    lua_pushcfunction(L, batch_index);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    /* trainer.lua: fit(), the callbacks' checks and the shipped callbacks. */
    if (luaL_loadbuffer(L, lm_lua_trainer_lua, strlen(lm_lua_trainer_lua), "=core/lua/embedded/trainer.lua") !=
        LUA_OK)
        lua_error(L);
    lua_pushvalue(L, -2); /* the lm module table */
    lua_call(L, 1, 1);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lua_code_key);
    lua_getfield(L, -1, "callbacks");
    lua_setfield(L, -3, "callbacks"); /* lm.callbacks */
    lua_pop(L, 1);

    lua_pushcfunction(L, new_trainer);
    lua_setfield(L, -2, "trainer");
}
