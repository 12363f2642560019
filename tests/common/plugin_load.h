/* Loading a built plugin in tests: the descriptor of lm_<file>.so (e.g.
 * "arch_gpt2", "optimizer_adamw", "dataset_wikitext") from the build's
 * plugin folder, checked to be of this ABI (major equal, minor not newer)
 * and of the expected kind.  The library is kept open, since the vtable
 * lives in it.  Header-only, like the rest of tests/common; needs
 * LM_TEST_PLUGIN_DIR. */
#ifndef LMCORE_TESTS_PLUGIN_LOAD_H
#define LMCORE_TESTS_PLUGIN_LOAD_H

#include <check.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>

#include "lmcore/lmcore.h"

static inline const lm_plugin_descriptor *lm_test_plugin(const char *file, lm_plugin_kind kind) {
    char path[1024];
    snprintf(path, sizeof path, "%s/lm_%s.so", LM_TEST_PLUGIN_DIR, file);
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(handle != NULL, "dlopen %s: %s", path, dlerror());
    /* Through uintptr_t: ISO C has no object-to-function pointer cast. */
    lm_plugin_describe_fn describe = (lm_plugin_describe_fn)(uintptr_t)dlsym(handle, LM_PLUGIN_DESCRIBE_SYMBOL);
    ck_assert_msg(describe != NULL, "%s exports no %s", path, LM_PLUGIN_DESCRIBE_SYMBOL);
    const lm_plugin_descriptor *d = describe();
    ck_assert_int_eq(d->abi_major, LM_ABI_MAJOR);
    ck_assert_int_le(d->abi_minor, LM_ABI_MINOR);
    ck_assert_int_eq(d->kind, kind);
    return d;
}

#endif
