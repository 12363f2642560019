/* lm.blocks (token blocks) and lm.trainer (the training loop). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lua_bindings.h"
#include "trainer.h"

typedef struct lua_blocks {
    lm_blocks *blocks;
} lua_blocks;

typedef struct lua_trainer {
    lm_trainer *trainer;
} lua_trainer;

static int blocks_close(lua_State *L) {
    lua_blocks *b = lua_touserdata(L, 1);
    if (b) {
        lm_blocks_free(b->blocks);
        b->blocks = NULL;
    }
    return 0;
}

static lm_blocks *check_blocks(lua_State *L, int index) {
    lua_blocks *b = luaL_checkudata(L, index, LM_BLOCKS_MT);
    if (!b->blocks) luaL_error(L, "attempt to use closed token blocks");
    return b->blocks;
}

static int get_int_option(lua_State *L, int table, const char *key, int def) {
    if (!lua_istable(L, table)) return def;
    lua_getfield(L, table, key);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    int is_nil = lua_isnil(L, -1);
    lua_pop(L, 1);
    if (is_nil) return def;
    if (!ok) luaL_error(L, "option '%s' must be an integer", key);
    return (int)v;
}

/* lm.blocks(tokenizer, dataset, split, {block_size=128, group_lines=0,
 *           add_special=<tokenizer default>, cache_dir=nil}) */
static int new_blocks(lua_State *L) {
    lm_object *tok = lm_lua_check_object(L, 1, LM_TOKENIZER_MT);
    lm_object *ds = lm_lua_check_object(L, 2, LM_DATASET_MT);
    const char *split = luaL_checkstring(L, 3);
    if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
    static const char *const known[] = {"block_size", "group_lines", "add_special", "cache_dir", NULL};
    if (lua_istable(L, 4)) {
        lua_pushnil(L);
        while (lua_next(L, 4)) {
            int found = 0;
            for (int i = 0; known[i]; i++)
                if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), known[i]) == 0) found = 1;
            if (!found)
                return luaL_error(L, "unknown option '%s' for lm.blocks (known: block_size, group_lines, "
                                     "add_special, cache_dir)",
                                  lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
            lua_pop(L, 1);
        }
    }
    lm_blocks_options options;
    memset(&options, 0, sizeof options);
    options.block_size = get_int_option(L, 4, "block_size", 128);
    options.group_lines = get_int_option(L, 4, "group_lines", 0);
    options.add_special = 1;
    if (lua_istable(L, 4)) {
        lua_getfield(L, 4, "add_special");
        if (!lua_isnil(L, -1)) options.add_special = lua_toboolean(L, -1);
        lua_getfield(L, 4, "cache_dir");
        if (!lua_isnil(L, -1)) options.cache_dir = luaL_checkstring(L, -1);
    }
    lua_blocks *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->blocks = NULL;
    luaL_setmetatable(L, LM_BLOCKS_MT);
    if (lm_blocks_build(&b->blocks, tok->plugin, tok->self, ds->plugin, ds->self, split, &options) != LM_OK)
        return lm_lua_raise(L);
    return 1;
}

static int blocks_count(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)lm_blocks_count(check_blocks(L, 1)));
    return 1;
}

static int blocks_block_size(lua_State *L) {
    lua_pushinteger(L, lm_blocks_block_size(check_blocks(L, 1)));
    return 1;
}

static int blocks_from_cache(lua_State *L) {
    lua_pushboolean(L, lm_blocks_from_cache(check_blocks(L, 1)));
    return 1;
}

static int blocks_tokens(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)lm_blocks_source_tokens(check_blocks(L, 1)));
    return 1;
}

/* blocks:get(index) -> list of ids; index counts from 0 */
static int blocks_get(lua_State *L) {
    lm_blocks *b = check_blocks(L, 1);
    lua_Integer index = luaL_checkinteger(L, 2);
    if (index < 0 || (size_t)index >= lm_blocks_count(b))
        return luaL_error(L, "block %d is out of range (0 to %d)", (int)index, (int)lm_blocks_count(b) - 1);
    int32_t T = lm_blocks_block_size(b);
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    if (!ids) return luaL_error(L, "out of memory");
    lm_blocks_get(b, (size_t)index, ids);
    lua_createtable(L, T, 0);
    for (int32_t i = 0; i < T; i++) {
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, i + 1);
    }
    free(ids);
    return 1;
}

/* ---- trainer ---------------------------------------------------------------- */

static int trainer_close(lua_State *L) {
    lua_trainer *t = lua_touserdata(L, 1);
    if (t) {
        lm_trainer_destroy(t->trainer);
        t->trainer = NULL;
    }
    return 0;
}

/* The trainer holds raw pointers to its model, objective, tokenizer,
 * loggers and blocks: refuse to run it once the script closed one of them
 * (closing does not wait for the garbage collector). */
static void check_parts_open(lua_State *L, int index) {
    static const char *const parts[] = {"model", "objective", "tokenizer", "train", "eval"};
    lua_getiuservalue(L, index, 1);
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        lua_getfield(L, -1, parts[i]);
        int closed = 0;
        if (luaL_testudata(L, -1, LM_BLOCKS_MT)) closed = ((lua_blocks *)lua_touserdata(L, -1))->blocks == NULL;
        else if (lua_isuserdata(L, -1)) closed = ((lm_object *)lua_touserdata(L, -1))->self == NULL;
        lua_pop(L, 1);
        if (closed)
            luaL_error(L, "the trainer's %s was closed: close the trainer first, or keep its parts open while it runs",
                       parts[i]);
    }
    lua_getfield(L, -1, "loggers");
    if (lua_istable(L, -1)) {
        for (lua_Integer i = 1; lua_geti(L, -1, i) != LUA_TNIL; i++) {
            int closed = ((lm_object *)lua_touserdata(L, -1))->self == NULL;
            lua_pop(L, 1);
            if (closed) luaL_error(L, "the trainer's logger %d was closed: close the trainer first", (int)i);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
}

static lm_trainer *check_trainer(lua_State *L, int index) {
    lua_trainer *t = luaL_checkudata(L, index, LM_TRAINER_MT);
    if (!t->trainer) luaL_error(L, "attempt to use a closed trainer");
    check_parts_open(L, index);
    return t->trainer;
}

/* lm.trainer{model=, objective=, tokenizer=, train=, eval=, loggers={...}, <settings>} */
static int new_trainer(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    static const char *const object_keys[] = {"model", "objective", "tokenizer", "train", "eval", "loggers", NULL};
    lua_getfield(L, 1, "model");
    lm_object *model = lm_lua_check_object(L, -1, LM_MODEL_MT);
    lua_getfield(L, 1, "objective");
    lm_object *objective = lm_lua_check_object(L, -1, LM_OBJECTIVE_MT);
    lua_getfield(L, 1, "tokenizer");
    lm_object *tokenizer = lm_lua_check_object(L, -1, LM_TOKENIZER_MT);
    lua_getfield(L, 1, "train");
    lm_blocks *train = check_blocks(L, lua_gettop(L));
    lua_getfield(L, 1, "eval");
    lm_blocks *eval = lua_isnil(L, -1) ? NULL : check_blocks(L, lua_gettop(L));
    lm_handle loggers[16];
    size_t n_loggers = 0;
    lua_getfield(L, 1, "loggers");
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_Integer n = luaL_len(L, -1);
        if (n > 16) return luaL_error(L, "at most 16 loggers");
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, -1, i);
            lm_object *logger = lm_lua_check_object(L, -1, LM_LOGGER_MT);
            loggers[n_loggers].plugin = logger->plugin;
            loggers[n_loggers].self = logger->self;
            n_loggers++;
            lua_pop(L, 1);
        }
    }
    /* The settings are the table minus the object keys. */
    lua_newtable(L);
    int settings = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        int is_object = 0;
        for (int i = 0; object_keys[i]; i++)
            if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), object_keys[i]) == 0) is_object = 1;
        if (is_object) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, settings);
    }
    lm_vocab_info vocab;
    memset(&vocab, 0, sizeof vocab);
    if (tokenizer->plugin->vtable.tokenizer.info(tokenizer->self, &vocab) != LM_OK) return lm_lua_raise(L);

    lua_trainer *t = lua_newuserdatauv(L, sizeof *t, 1);
    t->trainer = NULL;
    luaL_setmetatable(L, LM_TRAINER_MT);
    /* Keep the objects alive as long as the trainer, in a table of its own
     * (the script may change the one it passed): check_parts_open() reads it. */
    lua_createtable(L, 0, 6);
    for (int i = 0; object_keys[i]; i++) {
        lua_getfield(L, 1, object_keys[i]);
        lua_setfield(L, -2, object_keys[i]);
    }
    if (lua_istable(L, -1)) { /* the loggers' list, copied too */
        lua_getfield(L, -1, "loggers");
        if (lua_istable(L, -1)) {
            lua_createtable(L, (int)n_loggers, 0);
            for (lua_Integer i = 1; i <= (lua_Integer)n_loggers; i++) {
                lua_geti(L, -2, i);
                lua_seti(L, -2, i);
            }
            lua_setfield(L, -3, "loggers");
        }
        lua_pop(L, 1);
    }
    lua_setiuservalue(L, -2, 1);
    lm_config *cfg = lm_lua_to_config(L, settings, "the trainer");
    lm_handle model_handle = {model->plugin, model->self};
    lm_handle objective_handle = {objective->plugin, objective->self};
    lm_handle tokenizer_handle = {tokenizer->plugin, tokenizer->self};
    lm_status status = lm_trainer_create(&t->trainer, cfg, model_handle, objective_handle, tokenizer_handle, &vocab,
                                         train, eval, loggers, n_loggers);
    lm_config_destroy(cfg);
    if (status != LM_OK) return lm_lua_raise(L);
    return 1;
}

static void push_number_field(lua_State *L, const char *name, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, name);
}

/* trainer:fit() -> {steps=, epochs=, train_loss=, eval_loss=, perplexity=, runtime=, ...} */
static int trainer_fit(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    lm_train_result r;
    if (lm_trainer_fit(t, &r) != LM_OK) return lm_lua_raise(L);
    lua_createtable(L, 0, 9);
    lua_pushinteger(L, r.steps);
    lua_setfield(L, -2, "steps");
    push_number_field(L, "epochs", r.epochs);
    push_number_field(L, "train_loss", r.train_loss);
    push_number_field(L, "eval_loss", r.eval_loss);
    push_number_field(L, "perplexity", r.perplexity);
    push_number_field(L, "runtime", r.runtime);
    push_number_field(L, "samples_per_second", r.samples_per_second);
    push_number_field(L, "steps_per_second", r.steps_per_second);
    push_number_field(L, "tokens_per_second", r.tokens_per_second);
    return 1;
}

/* trainer:evaluate(blocks) -> loss, perplexity */
static int trainer_evaluate(lua_State *L) {
    lm_trainer *t = check_trainer(L, 1);
    lm_blocks *b = check_blocks(L, 2);
    double loss;
    if (lm_trainer_evaluate(t, b, &loss) != LM_OK) return lm_lua_raise(L);
    lua_pushnumber(L, loss);
    lua_pushnumber(L, exp(loss));
    return 2;
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

static void define(lua_State *L, const char *name, lua_CFunction close, const luaL_Reg *methods) {
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

static void push_int_list(lua_State *L, const int32_t *values, int32_t n) {
    lua_createtable(L, n, 0);
    for (int32_t i = 0; i < n; i++) {
        lua_pushinteger(L, values[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* objective:batch(model, tokenizer, blocks, index [, batch_index]) ->
 *   {input_ids =, labels =, attention_mask = (or nil), token_type_ids = (or nil), n_targets =}
 * What the objective makes of block `index` (from 0) as the one row of
 * micro-batch `batch_index` (default 0): the MLM masking of a block, say,
 * to show it (bert_mlm.lua debug_masking=true).  Binds the objective to the
 * model and the tokenizer first, as the trainer does. */
static int objective_batch(lua_State *L) {
    lm_object *objective = lm_lua_check_object(L, 1, LM_OBJECTIVE_MT);
    lm_object *model = lm_lua_check_object(L, 2, LM_MODEL_MT);
    lm_object *tokenizer = lm_lua_check_object(L, 3, LM_TOKENIZER_MT);
    lm_blocks *blocks = check_blocks(L, 4);
    lua_Integer index = luaL_checkinteger(L, 5);
    lua_Integer batch_index = luaL_optinteger(L, 6, 0);
    size_t count = lm_blocks_count(blocks);
    if (index < 0 || (size_t)index >= count)
        return luaL_error(L, "block %d is out of range: these blocks are 0 to %d", (int)index, (int)count - 1);
    if (batch_index < 0) return luaL_argerror(L, 6, "the batch index must be >= 0");
    lm_arch_info arch;
    lm_vocab_info vocab;
    memset(&arch, 0, sizeof arch);
    memset(&vocab, 0, sizeof vocab);
    if (model->plugin->vtable.architecture.info(model->self, &arch) != LM_OK ||
        tokenizer->plugin->vtable.tokenizer.info(tokenizer->self, &vocab) != LM_OK ||
        objective->plugin->vtable.objective.bind(objective->self, &arch, &vocab) != LM_OK)
        return lm_lua_raise(L);
    const int32_t T = lm_blocks_block_size(blocks);
    /* Owned by Lua (freed by the collector), so that an error raised while
     * the result table is built cannot leak it. */
    const size_t bytes = 5 * (size_t)T * sizeof(int32_t);
    int32_t *buffers = lua_newuserdatauv(L, bytes, 0);
    memset(buffers, 0, bytes);
    int32_t *tokens = buffers, *input_ids = buffers + T, *labels = buffers + 2 * T, *mask = buffers + 3 * T,
            *types = buffers + 4 * T;
    lm_blocks_get(blocks, (size_t)index, tokens);
    lm_batch batch;
    memset(&batch, 0, sizeof batch);
    batch.B = 1;
    batch.T = T;
    batch.input_ids = input_ids;
    batch.labels = labels;
    batch.attention_mask = mask;
    batch.token_type_ids = types;
    if (objective->plugin->vtable.objective.make_batch(objective->self, tokens, 1, T, (uint64_t)batch_index, &batch) !=
        LM_OK)
        return lm_lua_raise(L);
    lua_createtable(L, 0, 5);
    push_int_list(L, batch.input_ids, T);
    lua_setfield(L, -2, "input_ids");
    push_int_list(L, batch.labels, T);
    lua_setfield(L, -2, "labels");
    if (batch.attention_mask) {
        push_int_list(L, batch.attention_mask, T);
        lua_setfield(L, -2, "attention_mask");
    }
    if (batch.token_type_ids) {
        push_int_list(L, batch.token_type_ids, T);
        lua_setfield(L, -2, "token_type_ids");
    }
    lua_pushinteger(L, (lua_Integer)batch.n_targets);
    lua_setfield(L, -2, "n_targets");
    return 1; /* the table; the buffers below it go with the stack */
}

void lm_lua_open_training(lua_State *L) {
    static const luaL_Reg blocks_methods[] = {{"count", blocks_count},         {"block_size", blocks_block_size},
                                              {"get", blocks_get},             {"from_cache", blocks_from_cache},
                                              {"tokens", blocks_tokens},       {NULL, NULL}};
    static const luaL_Reg trainer_methods[] = {
        {"fit", trainer_fit}, {"evaluate", trainer_evaluate}, {"args_json", trainer_args_json}, {NULL, NULL}};
    define(L, LM_BLOCKS_MT, blocks_close, blocks_methods);
    define(L, LM_TRAINER_MT, trainer_close, trainer_methods);
    lua_pushcfunction(L, new_blocks);
    lua_setfield(L, -2, "blocks");
    lua_pushcfunction(L, new_trainer);
    lua_setfield(L, -2, "trainer");
    /* lmcore.Objective (lua_objects.c) gets batch() here, beside the blocks. */
    luaL_getmetatable(L, LM_OBJECTIVE_MT);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, objective_batch);
    lua_setfield(L, -2, "batch");
    lua_pop(L, 2);
}
