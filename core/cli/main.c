/* The lmcore command line: run, plugins, new-plugin, help, --version.
 * Exit codes: 0 success, 1 runtime error, 2 usage error. */
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "distributed.h"
#include "new_plugin.h"
#include "registry.h"
#include "runtime.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: lmcore [--plugin-path DIRS] [--log-level LEVEL] <command> [arguments]\n"
    "\n"
    "commands:\n"
    "  run SCRIPT [key=value ...]       run a pipeline script: a path, or the name of a\n"
    "                                   shipped one (gpt2_clm, bert_mlm, generate, ...)\n"
    "  new-plugin KIND NAME [DIR]       write a buildable plugin skeleton (default DIR: ./NAME)\n"
    "  plugins [--kind KIND]            list the plugins found\n"
    "  help [COMMAND | SCRIPT]          show help (a script's: its options, defaults, presets)\n"
    "  --version                        print the version\n"
    "\n"
    "options:\n"
    "  --plugin-path DIRS   colon-separated folders (or .so files) searched first for plugins\n"
    "  --log-level LEVEL    debug, info (default), warn, error or quiet\n"
    "\n"
    "Plugins are also searched in $LMCORE_PLUGIN_PATH, then next to the executable.\n"
    "Documentation: docs/ (architecture, writing plugins, plugin ABI, Lua API, file formats, recipes).\n";

static const char run_help[] =
    "usage: lmcore run SCRIPT [key=value ...]\n"
    "       lmcore run SCRIPT --help       (or lmcore help SCRIPT) a script's options\n"
    "\n"
    "Runs a Lua pipeline script.  SCRIPT is a path, or the bare name of a script\n"
    "shipped with lmcore (share/lmcore/scripts next to the executable):\n"
    "  lmcore run gpt2_clm preset=small   is   lmcore run <prefix>/share/lmcore/scripts/gpt2_clm.lua preset=small\n"
    "Each key=value pair reaches the script in the\n"
    "global table `args`: integers and decimals as numbers, true/false as booleans,\n"
    "anything else as a string.  Hugging Face's forms work too: --key value,\n"
    "--key=value, and --flag alone for flag=true.  Examples:\n"
    "  lmcore run scripts/gpt2_clm.lua n_layer=2 n_embd=128 epochs=1 device=cpu\n"
    "  lmcore run scripts/gpt2_clm.lua --learning_rate 2e-5 --num_train_epochs 3 --bf16\n"
    "Ctrl-C asks the trainer to stop after the current step (a second Ctrl-C kills).\n";

static const char plugins_help[] =
    "usage: lmcore plugins [--kind tokenizer|dataset|architecture|objective|logger|optimizer]\n"
    "\n"
    "Lists every plugin found (kind, name, version, file, description), then any\n"
    "file that was refused and why.\n";

static const char new_plugin_help[] =
    "usage: lmcore new-plugin KIND NAME [DIR]\n"
    "\n"
    "Writes a plugin skeleton into DIR (default ./NAME): CMakeLists.txt (builds\n"
    "against an installed lmcore through find_package(lmcore)), NAME.c with every\n"
    "entry of the KIND vtable documented, test_NAME.c (Check) and README.md.  It\n"
    "builds and loads as written; its test lists the entries that still need code.\n"
    "KIND: tokenizer, dataset, architecture, objective, logger or optimizer.\n"
    "Tutorial: docs/writing-plugins.md.\n";

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "lmcore: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run `lmcore help` for usage)\n");
    return EXIT_USAGE;
}

static int is_command_name(const char *name) {
    static const char *const commands[] = {"run", "plugins", "new-plugin", "help"};
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(name, commands[i]) == 0) return 1;
    return 0;
}

static int is_help_flag(const char *arg) { return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0; }

static int command_help(int argc, char **argv) {
    if (argc == 0) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[0], "run") == 0) fputs(run_help, stdout);
    else if (strcmp(argv[0], "plugins") == 0) fputs(plugins_help, stdout);
    else if (strcmp(argv[0], "new-plugin") == 0) fputs(new_plugin_help, stdout);
    else if (strcmp(argv[0], "help") == 0) fputs("usage: lmcore help [COMMAND]\n", stdout);
    else return usage_error("unknown command '%s' (commands: run, plugins, new-plugin, help)", argv[0]);
    return EXIT_OK;
}

static int command_plugins(lm_registry *registry, int argc, char **argv) {
    int have_filter = 0;
    lm_plugin_kind filter = LM_KIND_TOKENIZER;
    for (int i = 0; i < argc; i++) {
        const char *value = NULL;
        if (strcmp(argv[i], "--kind") == 0) {
            if (i + 1 >= argc) return usage_error("%s needs a value", "--kind");
            value = argv[++i];
        } else if (strncmp(argv[i], "--kind=", 7) == 0) {
            value = argv[i] + 7;
        } else {
            return usage_error("unexpected argument '%s' for `lmcore plugins`", argv[i]);
        }
        if (!lm_plugin_kind_parse(value, &filter))
            return usage_error(
                "unknown plugin kind '%s' (tokenizer, dataset, architecture, objective, logger, optimizer, communicator)",
                value);
        have_filter = 1;
    }
    printf("%-13s %-12s %-8s %s\n", "KIND", "NAME", "VERSION", "DESCRIPTION (FILE)");
    for (size_t i = 0; i < lm_registry_count(registry); i++) {
        const lm_plugin *p = lm_registry_at(registry, i);
        if (have_filter && p->kind != filter) continue;
        printf("%-13s %-12s %-8s %s\n%36s(%s)\n", lm_plugin_kind_name(p->kind), p->name, p->descriptor->version,
               p->descriptor->description, "", p->path);
    }
    size_t rejected = lm_registry_rejected_count(registry);
    if (rejected && !have_filter) {
        printf("\nrefused:\n");
        for (size_t i = 0; i < rejected; i++) {
            const char *path, *reason;
            lm_registry_rejected_at(registry, i, &path, &reason);
            printf("  %s\n", reason);
        }
    }
    return EXIT_OK;
}

/* The shipped scripts' folder: <bin>/LMCORE_SCRIPT_DIR_FROM_BIN (install and
 * build tree alike).  Writes "" when the executable cannot be located. */
static void shipped_script_dir(char *out, size_t size) {
    char exe[PATH_MAX];
    out[0] = '\0';
    if (!realpath("/proc/self/exe", exe)) return;
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = '\0';
    if (snprintf(out, size, "%s/%s", exe, LMCORE_SCRIPT_DIR_FROM_BIN) >= (int)size) out[0] = '\0';
}

static int is_regular_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* SCRIPT is a path; a bare name that is not a file here ("gpt2_clm" or
 * "gpt2_clm.lua") is looked up among the shipped scripts, so an installed
 * lmcore runs them from anywhere. */
static int resolve_script(const char *script, char *out, size_t size) {
    if (is_regular_file(script) || strchr(script, '/')) {
        snprintf(out, size, "%s", script);
        return 1;
    }
    char dir[PATH_MAX];
    shipped_script_dir(dir, sizeof dir);
    if (!dir[0]) return 0;
    size_t len = strlen(script);
    int has_suffix = len > 4 && strcmp(script + len - 4, ".lua") == 0;
    char found[PATH_MAX + 64];
    if (snprintf(found, sizeof found, "%s/%s%s", dir, script, has_suffix ? "" : ".lua") >= (int)sizeof found ||
        !is_regular_file(found))
        return 0;
    /* canonical, so error messages show <prefix>/share/..., not bin/../share/... */
    char canonical[PATH_MAX];
    return snprintf(out, size, "%s", realpath(found, canonical) ? canonical : found) < (int)size;
}

static int only_lua_scripts(const struct dirent *e) {
    size_t len = strlen(e->d_name);
    return len > 4 && strcmp(e->d_name + len - 4, ".lua") == 0;
}

/* "bert_mlm, compare_runs, ..." : the shipped scripts, sorted, for error messages. */
static void list_shipped_scripts(char *out, size_t size) {
    char dir[PATH_MAX];
    shipped_script_dir(dir, sizeof dir);
    struct dirent **names = NULL;
    int n = dir[0] ? scandir(dir, &names, only_lua_scripts, alphasort) : -1;
    if (n <= 0) {
        snprintf(out, size, "none found next to the executable");
        free(names);
        return;
    }
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]->d_name);
        int written = snprintf(out + used, size - used, "%s%.*s", used ? ", " : "", (int)(len - 4), names[i]->d_name);
        if (written > 0 && (size_t)written < size - used) used += (size_t)written;
        free(names[i]);
    }
    free(names);
}

static int command_run(lm_registry *registry, int argc, char **argv) {
    if (argc < 1) return usage_error("%s", "`lmcore run` needs a script: lmcore run SCRIPT.lua [key=value ...]");
    if (is_help_flag(argv[0])) {
        fputs(run_help, stdout);
        return EXIT_OK;
    }
    char script[PATH_MAX];
    if (!resolve_script(argv[0], script, sizeof script)) {
        char shipped[1024];
        list_shipped_scripts(shipped, sizeof shipped);
        fprintf(stderr,
                "lmcore: error: cannot open script '%s': no such file here, and no shipped script of that name "
                "(shipped: %s)\n",
                argv[0], shipped);
        return EXIT_RUNTIME;
    }
    /* key=value, and Hugging Face's --key value / --key=value / --flag. */
    char **script_args = NULL;
    int n_args = 0;
    if (lm_runtime_normalize_args((const char *const *)argv + 1, argc - 1, &script_args, &n_args) != LM_OK) {
        fprintf(stderr, "lmcore: error: %s\n", lm_error_message());
        return EXIT_RUNTIME;
    }
    lm_config *check;
    if (lm_config_create(&check, "script arguments") != LM_OK) {
        lm_runtime_free_args(script_args, n_args);
        fprintf(stderr, "lmcore: error: %s\n", lm_error_message());
        return EXIT_RUNTIME;
    }
    lm_status parsed = lm_runtime_parse_args((const char *const *)script_args, n_args, check);
    lm_config_destroy(check);
    if (parsed != LM_OK) {
        lm_runtime_free_args(script_args, n_args);
        return usage_error("%s", lm_error_message());
    }

    lm_runtime_options options = {script, (const char **)script_args, n_args, registry};
    char *traceback = NULL;
    lm_status status = lm_runtime_run(&options, &traceback);
    lm_runtime_free_args(script_args, n_args);
    if (status != LM_OK) {
        lm_distributed_print_error(stderr, lm_error_message()); /* names the rank when there are several */
        if (traceback && getenv("LMCORE_TRACEBACK")) fprintf(stderr, "%s\n", traceback);
        else if (traceback) fprintf(stderr, "(set LMCORE_TRACEBACK=1 for the Lua traceback)\n");
        /* The other ranks may wait for this one in a collective: stop them all. */
        lm_distributed_abort(status == LM_ERR_INTERRUPTED ? 130 : EXIT_RUNTIME);
    }
    free(traceback);
    /* 130 after Ctrl-C, 143 after SIGTERM: what a shell or a scheduler
     * expects of a process the signal stopped. */
    if (status == LM_ERR_INTERRUPTED) {
        int signo = lm_runtime_interrupt_signal();
        return 128 + (signo ? signo : SIGINT);
    }
    return status == LM_OK ? EXIT_OK : EXIT_RUNTIME;
}

int main(int argc, char **argv) {
    const char *plugin_path = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("lmcore %s (plugin ABI %d.%d)\n", LMCORE_VERSION_STRING, LM_ABI_MAJOR, LM_ABI_MINOR);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return command_help(0, NULL);
        } else if (strcmp(argv[i], "--plugin-path") == 0) {
            if (i + 1 >= argc) return usage_error("%s needs a value", "--plugin-path");
            plugin_path = argv[++i];
        } else if (strncmp(argv[i], "--plugin-path=", 14) == 0) {
            plugin_path = argv[i] + 14;
        } else if (strcmp(argv[i], "--log-level") == 0 || strncmp(argv[i], "--log-level=", 12) == 0) {
            const char *value = argv[i][11] == '=' ? argv[i] + 12 : (i + 1 < argc ? argv[++i] : NULL);
            lm_log_level level;
            if (!value) return usage_error("%s needs a value", "--log-level");
            if (lm_log_level_parse(value, &level) != LM_OK) return usage_error("%s", lm_error_message());
            lm_log_set_level(level);
        } else if (argv[i][0] == '-') {
            return usage_error("unknown option '%s'", argv[i]);
        } else {
            break;
        }
    }
    if (i >= argc) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *command = argv[i++];
    /* `lmcore help SCRIPT` is `lmcore run SCRIPT --help`. */
    char *help_run[2] = {NULL, "--help"};
    int help_script = strcmp(command, "help") == 0 && i < argc && !is_command_name(argv[i]);
    if (help_script) {
        if (argc - i > 1) return usage_error("`lmcore help` takes one command or script, got '%s' too", argv[i + 1]);
        char found[PATH_MAX];
        if (!resolve_script(argv[i], found, sizeof found))
            return usage_error("unknown command or script '%s' (commands: run, plugins, new-plugin, help; or a "
                               "script's path or a shipped script's name)",
                               argv[i]);
        help_run[0] = argv[i];
        command = "run";
    } else if (strcmp(command, "help") == 0) {
        return command_help(argc - i, argv + i);
    }
    if (strcmp(command, "new-plugin") == 0) return lm_cli_new_plugin(argc - i, argv + i);
    if (strcmp(command, "run") != 0 && strcmp(command, "plugins") != 0)
        return usage_error("unknown command '%s' (commands: run, plugins, new-plugin, help)", command);

    lm_registry *registry;
    if (lm_registry_create(&registry) != LM_OK) {
        fprintf(stderr, "lmcore: error: %s\n", lm_error_message());
        return EXIT_RUNTIME;
    }
    lm_registry_scan_default(registry, plugin_path, "/proc/self/exe");
    int rc = help_script                  ? command_run(registry, 2, help_run)
             : strcmp(command, "run") == 0 ? command_run(registry, argc - i, argv + i)
                                           : command_plugins(registry, argc - i, argv + i);
    lm_registry_destroy(registry);
    return rc;
}
