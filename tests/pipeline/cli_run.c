#include "cli_run.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

char cli_output[1 << 20];

int cli_run(const char *cmdline) {
    char full[8192];
    snprintf(full, sizeof full, "cd %s && export LMCORE_PLUGIN_PATH= OMP_NUM_THREADS=1 && { %s; } 2>&1",
             LM_TEST_SOURCE_DIR, cmdline);
    FILE *p = popen(full, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(cli_output, 1, sizeof cli_output - 1, p);
    cli_output[n] = '\0';
    /* Read to the end, so that a chatty command is not killed by SIGPIPE. */
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

void cli_temp_dir(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "/tmp/lm_%s_XXXXXX", name);
    ck_assert_ptr_nonnull(mkdtemp(out));
}

int cli_nonempty_file(const char *dir, const char *file) {
    char path[2048];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return stat(path, &st) == 0 && st.st_size > 0;
}

char *cli_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) text = malloc((size_t)n + 1);
    if (text) text[fread(text, 1, (size_t)n, f)] = '\0';
    fclose(f);
    return text;
}
