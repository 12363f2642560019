/* The lmcore command line: run, plugins, help, --version.
 * Exit codes: 0 success, 1 runtime error, 2 usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "runtime.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: lmcore [--plugin-path DIRS] [--log-level LEVEL] <command> [arguments]\n"
    "\n"
    "commands:\n"
    "  run SCRIPT.lua [key=value ...]   run a training pipeline script\n"
    "  plugins [--kind KIND]            list the plugins found\n"
    "  help [COMMAND]                   show help\n"
    "  --version                        print the version\n"
    "\n"
    "options:\n"
    "  --plugin-path DIRS   colon-separated folders (or .so files) searched first for plugins\n"
    "  --log-level LEVEL    debug, info (default), warn, error or quiet\n"
    "\n"
    "Plugins are also searched in $LMCORE_PLUGIN_PATH, then next to the executable.\n"
    "Documentation: docs/ (architecture, plugin ABI, Lua API, file formats).\n";

static const char run_help[] =
    "usage: lmcore run SCRIPT.lua [key=value ...]\n"
    "\n"
    "Runs a Lua pipeline script.  Each key=value pair reaches the script in the\n"
    "global table `args`: integers and decimals as numbers, true/false as booleans,\n"
    "anything else as a string.  Example:\n"
    "  lmcore run scripts/gpt2_clm.lua n_layer=2 n_embd=128 epochs=1 device=cpu\n"
    "Ctrl-C asks the trainer to stop after the current step (a second Ctrl-C kills).\n";

static const char plugins_help[] =
    "usage: lmcore plugins [--kind tokenizer|dataset|architecture|objective|logger]\n"
    "\n"
    "Lists every plugin found (kind, name, version, file, description), then any\n"
    "file that was refused and why.\n";

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "lmcore: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run `lmcore help` for usage)\n");
    return EXIT_USAGE;
}

static int command_help(int argc, char **argv) {
    if (argc == 0) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[0], "run") == 0) fputs(run_help, stdout);
    else if (strcmp(argv[0], "plugins") == 0) fputs(plugins_help, stdout);
    else if (strcmp(argv[0], "help") == 0) fputs("usage: lmcore help [COMMAND]\n", stdout);
    else return usage_error("unknown command '%s' (commands: run, plugins, help)", argv[0]);
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
            return usage_error("unknown plugin kind '%s' (tokenizer, dataset, architecture, objective, logger)",
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

static int command_run(lm_registry *registry, int argc, char **argv) {
    if (argc < 1) return usage_error("%s", "`lmcore run` needs a script: lmcore run SCRIPT.lua [key=value ...]");
    lm_config *check;
    if (lm_config_create(&check, "script arguments") != LM_OK) {
        fprintf(stderr, "lmcore: error: %s\n", lm_error_message());
        return EXIT_RUNTIME;
    }
    lm_status parsed = lm_runtime_parse_args((const char *const *)argv + 1, argc - 1, check);
    lm_config_destroy(check);
    if (parsed != LM_OK) return usage_error("%s", lm_error_message());

    lm_runtime_options options = {argv[0], (const char *const *)argv + 1, argc - 1, registry};
    char *traceback = NULL;
    lm_status status = lm_runtime_run(&options, &traceback);
    if (status != LM_OK) {
        fprintf(stderr, "lmcore: error: %s\n", lm_error_message());
        if (traceback && getenv("LMCORE_TRACEBACK")) fprintf(stderr, "%s\n", traceback);
        else if (traceback) fprintf(stderr, "(set LMCORE_TRACEBACK=1 for the Lua traceback)\n");
    }
    free(traceback);
    if (status == LM_ERR_INTERRUPTED) return 130;
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
    if (strcmp(command, "help") == 0) return command_help(argc - i, argv + i);
    if (strcmp(command, "run") != 0 && strcmp(command, "plugins") != 0)
        return usage_error("unknown command '%s' (commands: run, plugins, help)", command);

    lm_registry *registry;
    if (lm_registry_create(&registry) != LM_OK) {
        fprintf(stderr, "lmcore: error: %s\n", lm_error_message());
        return EXIT_RUNTIME;
    }
    lm_registry_scan_default(registry, plugin_path, "/proc/self/exe");
    int rc = strcmp(command, "run") == 0 ? command_run(registry, argc - i, argv + i)
                                         : command_plugins(registry, argc - i, argv + i);
    lm_registry_destroy(registry);
    return rc;
}
