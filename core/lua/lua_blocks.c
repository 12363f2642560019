/* lm.blocks (token blocks of a dataset split) and objective:batch (what an
 * objective makes of a block). */
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "lua_bindings.h"

typedef struct lua_blocks {
    lm_blocks *blocks;
} lua_blocks;

static int blocks_close(lua_State *L) {
    lua_blocks *b = lua_touserdata(L, 1);
    if (b) {
        lm_blocks_free(b->blocks);
        b->blocks = NULL;
    }
    return 0;
}

lm_blocks *lm_lua_check_blocks(lua_State *L, int index) {
    lua_blocks *b = luaL_checkudata(L, index, LM_BLOCKS_MT);
    if (!b->blocks) lm_lua_error(L, "attempt to use closed token blocks");
    return b->blocks;
}

/* lm.blocks(tokenizer, dataset, split, {block_size=128, group_lines=0,
 *           add_special=<tokenizer default>, cache_dir=nil}) */
static int new_blocks(lua_State *L) {
    lm_object *tok = lm_lua_check_object(L, 1, LM_TOKENIZER_MT);
    lm_object *ds = lm_lua_check_object(L, 2, LM_DATASET_MT);
    const char *split = luaL_checkstring(L, 3);
    static const char *const known[] = {"block_size", "group_lines", "add_special", "cache_dir", NULL};
    lm_lua_check_options(L, 4, "lm.blocks", known);
    lm_blocks_options options;
    memset(&options, 0, sizeof options);
    /* The ranges lm_blocks_build checks, here in 64 bits: 2^32 + 16 must not become 16. */
    options.block_size = (int)lm_lua_int_option(L, 4, "lm.blocks", "block_size", 128, 2, 1 << 20);
    options.group_lines = (int)lm_lua_int_option(L, 4, "lm.blocks", "group_lines", 0, 0, INT32_MAX);
    options.add_special = lm_lua_bool_option(L, 4, "lm.blocks", "add_special", 1);
    options.cache_dir = lm_lua_string_option(L, 4, "lm.blocks", "cache_dir", NULL);
    lua_blocks *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->blocks = NULL;
    luaL_setmetatable(L, LM_BLOCKS_MT);
    const lm_text_source *source = NULL;
    if (ds->plugin->vtable.dataset.open_split(ds->self, split, &source) != LM_OK ||
        lm_blocks_build(&b->blocks, tok->plugin, tok->self, source, &options) != LM_OK)
        return lm_lua_raise(L);
    return 1;
}

static int blocks_count(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)lm_blocks_count(lm_lua_check_blocks(L, 1)));
    return 1;
}

static int blocks_block_size(lua_State *L) {
    lua_pushinteger(L, lm_blocks_block_size(lm_lua_check_blocks(L, 1)));
    return 1;
}

static int blocks_from_cache(lua_State *L) {
    lua_pushboolean(L, lm_blocks_from_cache(lm_lua_check_blocks(L, 1)));
    return 1;
}

static int blocks_tokens(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)lm_blocks_source_tokens(lm_lua_check_blocks(L, 1)));
    return 1;
}

/* blocks:get(index) -> list of ids; index counts from 0 */
static void push_int_list(lua_State *L, const int32_t *values, int32_t n) {
    lua_createtable(L, n, 0);
    for (int32_t i = 0; i < n; i++) {
        lua_pushinteger(L, values[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static int blocks_get(lua_State *L) {
    lm_blocks *b = lm_lua_check_blocks(L, 1);
    const lua_Integer count = (lua_Integer)lm_blocks_count(b);
    if (count == 0) return lm_lua_error(L, "blocks:get: these blocks are empty");
    lua_Integer index = lm_lua_int_arg(L, 2, "blocks:get", "the block index", 0, count - 1);
    int32_t T = lm_blocks_block_size(b);
    /* Lua-owned scratch: an allocation error while the table is built
     * cannot leak it. */
    int32_t *ids = lua_newuserdatauv(L, (size_t)T * sizeof *ids, 0);
    lm_blocks_get(b, (size_t)index, ids);
    push_int_list(L, ids, T);
    return 1;
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
    lm_blocks *blocks = lm_lua_check_blocks(L, 4);
    const lua_Integer count = (lua_Integer)lm_blocks_count(blocks);
    if (count == 0) return lm_lua_error(L, "objective:batch: these blocks are empty");
    lua_Integer index = lm_lua_int_arg(L, 5, "objective:batch", "the block index", 0, count - 1);
    lua_Integer batch_index = lm_lua_opt_int_arg(L, 6, "objective:batch", "the batch index", 0, 0, LUA_MAXINTEGER);
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
    int32_t *tokens = lua_newuserdatauv(L, (size_t)T * sizeof(int32_t), 0);
    lm_blocks_get(blocks, (size_t)index, tokens);
    const lm_batch *made = NULL;
    if (objective->plugin->vtable.objective.make_batch(objective->self, tokens, 1, T, (uint64_t)batch_index, &made) !=
        LM_OK)
        return lm_lua_raise(L);
    const lm_batch batch = *made;
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
    return 1; /* the table; the tokens below it go with the stack */
}

void lm_lua_open_blocks(lua_State *L) {
    static const luaL_Reg blocks_methods[] = {{"count", blocks_count},         {"block_size", blocks_block_size},
                                              {"get", blocks_get},             {"from_cache", blocks_from_cache},
                                              {"tokens", blocks_tokens},       {NULL, NULL}};
    lm_lua_define_plain_class(L, LM_BLOCKS_MT, blocks_close, blocks_methods);
    lua_pushcfunction(L, new_blocks);
    lua_setfield(L, -2, "blocks");
    /* lmcore.Objective (lua_objects.c) gets batch() here, beside the blocks. */
    luaL_getmetatable(L, LM_OBJECTIVE_MT);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, objective_batch);
    lua_setfield(L, -2, "batch");
    lua_pop(L, 2);
}

int lm_lua_blocks_closed(lua_State *L, int index) {
    lua_blocks *b = luaL_testudata(L, index, LM_BLOCKS_MT);
    return b && !b->blocks;
}
