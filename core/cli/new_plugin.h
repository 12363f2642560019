/* `lmcore new-plugin`: writes a plugin skeleton (see new_plugin.c). */
#ifndef LMCORE_CLI_NEW_PLUGIN_H
#define LMCORE_CLI_NEW_PLUGIN_H

/* argv: KIND NAME [DIR].  Returns the process exit code (0, 1 error, 2 usage). */
int lm_cli_new_plugin(int argc, char **argv);

#endif
