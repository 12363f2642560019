/* Helpers shared by the libFuzzer targets: their common
 * LLVMFuzzerInitialize, a private scratch directory for the files a parser
 * under test insists on opening by path, input splitting, and a loud
 * failure for broken invariants.
 *
 * Harness code only: it may abort() (that is how a fuzzer reports a bug);
 * the library and plugins under test never do. */
#ifndef LMCORE_FUZZ_UTIL_H
#define LMCORE_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* The process's scratch directory (created on first use, on tmpfs when
 * /dev/shm is writable, removed at exit). */
const char *fuzz_dir(void);
/* "<fuzz_dir>/<name>", in a static buffer per slot (slot 0..7). */
const char *fuzz_path(int slot, const char *name);
/* Writes data to path (truncating); aborts if the scratch file system fails,
 * since the harness would otherwise test nothing. */
void fuzz_write_file(const char *path, const void *data, size_t len);
/* Writes data to fuzz_path(slot, name) and returns the path. */
const char *fuzz_file(int slot, const char *name, const void *data, size_t len);
/* Removes a file or an empty directory, ignoring errors. */
void fuzz_remove(const char *path);

/* Cuts data at the first occurrence of `sep`: *first_len bytes before it,
 * then *rest/ *rest_len after it; without a separator everything is first
 * (returns whether the separator was found). */
int fuzz_split(const uint8_t *data, size_t len, const char *sep, size_t *first_len, const uint8_t **rest,
                size_t *rest_len);

/* Prints the broken invariant and aborts: libFuzzer saves the input. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) fuzz_fail(__VA_ARGS__);                                                       \
    } while (0)

/* Prints to stderr when LMCORE_FUZZ_VERBOSE is set (to check that seeds
 * are accepted: LMCORE_FUZZ_VERBOSE=1 fuzz_x -runs=0 corpus/fuzz_x). */
void fuzz_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Known, reported bugs (docs/fuzzing.md, "Findings") that the harnesses
 * step around so that fuzzing reaches deeper code: returns 1 (step around)
 * unless LMCORE_FUZZ_STRICT is set, which turns every such check back on
 * (to verify a fix: LMCORE_FUZZ_STRICT=1 fuzz_x fuzz/findings/<input>). */
int fuzz_known_bug(const char *id);

/* The libFuzzer entry points.  Each harness defines only
 * LLVMFuzzerTestOneInput.  LLVMFuzzerInitialize is defined once, in
 * fuzz_util.c, because every target needs the same one-time setup (quiet
 * lm_log and progress output, so that the fuzzer's own output stays
 * readable) and nothing else; one definition keeps the targets' setup
 * from drifting apart.  A target that one day needs more setup should add
 * it there behind a hook, not define its own: a second definition is a
 * duplicate-symbol link error. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
