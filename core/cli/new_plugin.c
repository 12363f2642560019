/* `lmcore new-plugin KIND NAME [DIR]`: writes a buildable plugin skeleton
 * (CMakeLists.txt, NAME.c with every vtable entry documented, test_NAME.c,
 * README.md) from the templates compiled into the executable.  The folder is
 * written under a temporary name and renamed into place, so a failure never
 * leaves half a skeleton, and an existing non-empty folder is never touched. */
#include "new_plugin.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmcore/lmcore.h"

/* plugin_templates.c, generated from cli/templates/ at build time. */
extern const char lm_template_CMakeLists_txt_in[], lm_template_README_md_in[], lm_template_test_plugin_c_in[];
extern const char lm_template_tokenizer_c_in[], lm_template_dataset_c_in[], lm_template_architecture_c_in[],
    lm_template_objective_c_in[], lm_template_logger_c_in[], lm_template_optimizer_c_in[];
extern const char lm_template_exercise_tokenizer_c_in[], lm_template_exercise_dataset_c_in[],
    lm_template_exercise_architecture_c_in[], lm_template_exercise_objective_c_in[],
    lm_template_exercise_logger_c_in[], lm_template_exercise_optimizer_c_in[];

typedef struct kind_templates {
    const char *kind, *kind_enum, *vtable_type, *source, *exercise;
} kind_templates;

static const kind_templates kinds[] = {
    {"tokenizer", "LM_KIND_TOKENIZER", "lm_tokenizer_vtable", lm_template_tokenizer_c_in,
     lm_template_exercise_tokenizer_c_in},
    {"dataset", "LM_KIND_DATASET", "lm_dataset_vtable", lm_template_dataset_c_in, lm_template_exercise_dataset_c_in},
    {"architecture", "LM_KIND_ARCHITECTURE", "lm_architecture_vtable", lm_template_architecture_c_in,
     lm_template_exercise_architecture_c_in},
    {"objective", "LM_KIND_OBJECTIVE", "lm_objective_vtable", lm_template_objective_c_in,
     lm_template_exercise_objective_c_in},
    {"logger", "LM_KIND_LOGGER", "lm_logger_vtable", lm_template_logger_c_in, lm_template_exercise_logger_c_in},
    {"optimizer", "LM_KIND_OPTIMIZER", "lm_optimizer_vtable", lm_template_optimizer_c_in,
     lm_template_exercise_optimizer_c_in},
};

typedef struct substitution {
    const char *key; /* "@NAME@" */
    const char *value;
} substitution;

/* Appends `text` to out with every @KEY@ of `subs` replaced. */
static lm_status expand(const char *text, const substitution *subs, size_t n_subs, lm_buffer *out) {
    const char *p = text;
    while (*p) {
        const char *at = strchr(p, '@');
        if (!at) return lm_buffer_append(out, p, strlen(p));
        LM_TRY(lm_buffer_append(out, p, (size_t)(at - p)));
        size_t i = 0;
        for (; i < n_subs; i++) {
            size_t len = strlen(subs[i].key);
            if (strncmp(at, subs[i].key, len) == 0) {
                LM_TRY(lm_buffer_append(out, subs[i].value, strlen(subs[i].value)));
                p = at + len;
                break;
            }
        }
        if (i == n_subs) { /* an @ of the C code, not a placeholder */
            LM_TRY(lm_buffer_append(out, "@", 1));
            p = at + 1;
        }
    }
    return LM_OK;
}

static int valid_name(const char *name) {
    size_t len = strlen(name);
    if (len == 0 || len > 40 || !(name[0] >= 'a' && name[0] <= 'z')) return 0;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')) return 0;
    return 1;
}

/* 1 if path does not exist or is an empty directory (rename() replaces an
 * empty directory, and nothing else). */
static int free_to_write(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return errno == ENOENT;
    if (!S_ISDIR(st.st_mode)) return 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    int empty = 1;
    struct dirent *e;
    while (empty && (e = readdir(d)) != NULL) empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

static lm_status write_expanded(const char *dir, const char *file, const char *template_text,
                                const substitution *subs, size_t n_subs) {
    lm_buffer text = {0};
    lm_status status = expand(template_text, subs, n_subs, &text);
    char path[PATH_MAX];
    if (status == LM_OK && snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
        status = lm_error_set(LM_ERR_INVALID, "new-plugin: the path '%s/%s' is too long", dir, file);
    if (status == LM_OK) {
        FILE *f = fopen(path, "w");
        if (!f) {
            status = lm_error_set(LM_ERR_IO, "new-plugin: cannot create %s: %s", path, strerror(errno));
        } else {
            size_t written = fwrite(text.data, 1, text.len, f);
            if (fclose(f) != 0 || written != text.len)
                status = lm_error_set(LM_ERR_IO, "new-plugin: cannot write %s (disk full?)", path);
        }
    }
    lm_buffer_free(&text);
    return status;
}

static void remove_tree_files(const char *dir, const char *const *files, size_t n) {
    char path[PATH_MAX];
    for (size_t i = 0; i < n; i++) {
        if (snprintf(path, sizeof path, "%s/%s", dir, files[i]) < (int)sizeof path) remove(path);
    }
    rmdir(dir);
}

/* The prefix of this executable (<prefix>/bin/lmcore) if it is an install
 * with the CMake package, for the printed build command. */
static void install_prefix(char *out, size_t size) {
    char exe[PATH_MAX];
    out[0] = '\0';
    if (!realpath("/proc/self/exe", exe)) return;
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash) return;
        *slash = '\0';
    }
    char probe[PATH_MAX + 64];
    const char *const candidates[] = {"lib/cmake/lmcore", "lib64/cmake/lmcore", "share/cmake/lmcore"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(probe, sizeof probe, "%s/%s/lmcoreConfig.cmake", exe, candidates[i]);
        if (access(probe, R_OK) == 0) {
            snprintf(out, size, "%s", exe);
            return;
        }
    }
}

/* Prints the entries the generated source still marks NOT_WRITTEN("x"). */
static void print_unwritten(const char *source_template) {
    const char *p = source_template;
    int n = 0;
    printf("entries still to write:");
    while ((p = strstr(p, "NOT_WRITTEN(\"")) != NULL) {
        p += strlen("NOT_WRITTEN(\"");
        const char *end = strchr(p, '"');
        if (!end) break;
        printf("%s %.*s", n++ ? "," : "", (int)(end - p), p);
        p = end;
    }
    printf("%s\n", n ? "" : " none");
}

int lm_cli_new_plugin(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "lmcore: usage: lmcore new-plugin KIND NAME [DIR]\n"
                        "  KIND: tokenizer, dataset, architecture, objective, logger or optimizer\n"
                        "  NAME: the plugin's name, [a-z][a-z0-9_]* (scripts use lm.KIND(\"NAME\", {...}))\n"
                        "  DIR:  where to write it (default ./NAME; must not exist or be empty)\n");
        return 2;
    }
    const kind_templates *kind = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (strcmp(argv[0], kinds[i].kind) == 0) kind = &kinds[i];
    if (!kind) {
        fprintf(stderr,
                "lmcore: unknown plugin kind '%s' (tokenizer, dataset, architecture, objective, logger, optimizer)\n",
                argv[0]);
        return 2;
    }
    const char *name = argv[1];
    if (!valid_name(name)) {
        fprintf(stderr,
                "lmcore: invalid plugin name '%s': use 1 to 40 of a-z, 0-9 and _, starting with a letter "
                "(e.g. my_%s)\n",
                name, kind->kind);
        return 2;
    }
    const char *dir = argc == 3 ? argv[2] : name;
    if (!free_to_write(dir)) {
        fprintf(stderr, "lmcore: error: new-plugin: '%s' already exists and is not an empty folder; choose another "
                        "DIR (nothing was written)\n",
                dir);
        return 1;
    }
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.new-plugin-%ld", dir, (long)getpid()) >= (int)sizeof tmp) {
        fprintf(stderr, "lmcore: error: new-plugin: the path '%s' is too long\n", dir);
        return 1;
    }
    if (mkdir(tmp, 0777) != 0) {
        fprintf(stderr, "lmcore: error: new-plugin: cannot create %s: %s\n", tmp, strerror(errno));
        return 1;
    }

    char prefix[PATH_MAX];
    install_prefix(prefix, sizeof prefix);
    char version_mm[32];
    snprintf(version_mm, sizeof version_mm, "%d.%d", LMCORE_VERSION_MAJOR, LMCORE_VERSION_MINOR);
    substitution subs[] = {{"@NAME@", name},
                           {"@KIND@", kind->kind},
                           {"@KIND_ENUM@", kind->kind_enum},
                           {"@VTABLE_TYPE@", kind->vtable_type},
                           {"@LMCORE_VERSION_MM@", version_mm},
                           {"@PREFIX@", prefix[0] ? prefix : "<lmcore prefix>"},
                           {"@EXERCISE@", ""}};
    size_t n_subs = sizeof subs / sizeof *subs;
    /* The test embeds the kind's exercise(), itself a template. */
    lm_buffer exercise = {0};
    lm_status status = expand(kind->exercise, subs, n_subs - 1, &exercise);
    if (status == LM_OK) subs[n_subs - 1].value = exercise.data;

    char source_file[64], test_file[64];
    snprintf(source_file, sizeof source_file, "%s.c", name);
    snprintf(test_file, sizeof test_file, "test_%s.c", name);
    const char *const files[] = {"CMakeLists.txt", source_file, test_file, "README.md"};
    const char *const templates[] = {lm_template_CMakeLists_txt_in, kind->source, lm_template_test_plugin_c_in,
                                     lm_template_README_md_in};
    for (size_t i = 0; i < 4 && status == LM_OK; i++)
        status = write_expanded(tmp, files[i], templates[i], subs, n_subs);
    lm_buffer_free(&exercise);
    if (status == LM_OK && rename(tmp, dir) != 0)
        status = lm_error_set(LM_ERR_IO, "new-plugin: cannot move %s to %s: %s", tmp, dir, strerror(errno));
    if (status != LM_OK) {
        remove_tree_files(tmp, files, 4);
        fprintf(stderr, "lmcore: error: %s (nothing was written)\n", lm_error_message());
        return 1;
    }

    printf("wrote %s/: CMakeLists.txt, %s, %s, README.md\n", dir, source_file, test_file);
    print_unwritten(kind->source);
    printf("build and test it:\n"
           "  cmake -S %s -B %s/build -DCMAKE_PREFIX_PATH=%s\n"
           "  cmake --build %s/build && ctest --test-dir %s/build --output-on-failure\n",
           dir, dir, prefix[0] ? prefix : "<lmcore install prefix>", dir, dir);
    if (!prefix[0])
        printf("(this lmcore is not installed: `cmake --install <build> --prefix <prefix>` gives the CMake "
               "package the skeleton uses)\n");
    printf("use it: lmcore --plugin-path %s/build run your_script.lua  (lm.%s(\"%s\", {...}))\n", dir, kind->kind,
           name);
    return 0;
}
