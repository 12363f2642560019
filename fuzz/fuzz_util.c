/* See fuzz_util.h. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "fuzz_util.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmcore/lmcore.h"

static char scratch[256];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *path) { nftw(path, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }

static void remove_scratch(void) {
    if (scratch[0]) remove_tree(scratch);
}

/* libFuzzer often leaves with _Exit (time limit, crash), which skips atexit:
 * folders are named after their process, and a new process removes those
 * whose process is gone. */
static void remove_stale(const char *base) {
    DIR *dir = opendir(base);
    if (!dir) return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        int pid;
        char rest;
        if (sscanf(e->d_name, "lmcore-fuzz-%d%c", &pid, &rest) != 1 || pid <= 0) continue;
        if (kill(pid, 0) == 0 || errno != ESRCH) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", base, e->d_name);
        remove_tree(path);
    }
    closedir(dir);
}

const char *fuzz_dir(void) {
    if (scratch[0]) return scratch;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    remove_stale(base);
    snprintf(scratch, sizeof scratch, "%s/lmcore-fuzz-%ld", base, (long)getpid());
    remove_tree(scratch); /* a reused pid */
    if (mkdir(scratch, 0700) != 0) fuzz_fail("cannot create %s: %s", scratch, strerror(errno));
    atexit(remove_scratch);
    return scratch;
}

const char *fuzz_path(int slot, const char *name) {
    static char paths[8][512];
    if (slot < 0 || slot >= 8) fuzz_fail("fuzz_path: slot %d out of range", slot);
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", fuzz_dir(), name);
    return paths[slot];
}

void fuzz_write_file(const char *path, const void *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) fuzz_fail("cannot create %s: %s", path, strerror(errno));
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fuzz_fail("cannot write %s: %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    close(fd);
}

const char *fuzz_file(int slot, const char *name, const void *data, size_t len) {
    const char *path = fuzz_path(slot, name);
    fuzz_write_file(path, data, len);
    return path;
}

void fuzz_remove(const char *path) {
    if (unlink(path) != 0) rmdir(path);
}

int fuzz_split(const uint8_t *data, size_t len, const char *sep, size_t *first_len, const uint8_t **rest,
               size_t *rest_len) {
    size_t n = strlen(sep);
    for (size_t i = 0; n && i + n <= len; i++) {
        if (memcmp(data + i, sep, n) == 0) {
            *first_len = i;
            *rest = data + i + n;
            *rest_len = len - i - n;
            return 1;
        }
    }
    *first_len = len;
    *rest = data + len;
    *rest_len = 0;
    return 0;
}

void fuzz_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\n==== lmcore fuzz invariant broken: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n==== last lmcore error: %s (%s)\n", lm_error_message(), lm_error_location());
    va_end(ap);
    abort();
}

void fuzz_note(const char *fmt, ...) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("LMCORE_FUZZ_VERBOSE") != NULL;
    if (!verbose) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

int fuzz_known_bug(const char *id) {
    (void)id;
    static int strict = -1;
    if (strict < 0) strict = getenv("LMCORE_FUZZ_STRICT") != NULL;
    return !strict;
}

/* Shared by every target: see fuzz_util.h for why it lives here. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    lm_log_set_level(LM_LOG_QUIET);
    return 0;
}

/* UBSan is built recoverable (-fsanitize-recover=undefined) only so that
 * fuzz/ubsan.supp can silence known, reported bugs; every other report
 * still stops the run (halt_on_error), as in the tests' sanitizer build.
 * UBSAN_OPTIONS given by the user are applied on top of these. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void) {
    return "halt_on_error=1:print_stacktrace=1:suppressions=" LMCORE_FUZZ_SOURCE_DIR "/ubsan.supp";
}
