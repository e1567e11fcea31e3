/* SPDX-License-Identifier: MIT
 *
 * tessera-cli — the command-line front end over the same engine the app uses: scripting,
 * golden checks and benchmarks. It includes only tessera.h. Each subcommand lives in a
 * function `cmd_<name>` listed in the table below; `tessera-cli --help` prints the table.
 */
#include "tessera.h"
#include "tessera-cli-commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *name;
  int (*fn) (int argc, char **argv);
  const char *synopsis;
  const char *summary;
} command;

static int cmd_help (int argc, char **argv);

static const command commands[] = {
  { "help", cmd_help, "help [COMMAND]", "show help" },
  { "inspect", tessera_cli_inspect, "inspect MODEL_DIR",
    "show a model folder: components, configs, parameters, memory" },
};

static const size_t n_commands = sizeof commands / sizeof commands[0];

static void
usage (FILE *out)
{
  fprintf (out,
           "Usage: tessera-cli COMMAND [ARGS...]\n"
           "\n"
           "Tessera turns a text prompt into an image with Meissonic.\n"
           "\n"
           "Commands:\n");
  for (size_t i = 0; i < n_commands; i++)
    fprintf (out, "  %-44s %s\n", commands[i].synopsis, commands[i].summary);
  fprintf (out,
           "\n"
           "Options:\n"
           "  -h, --help      show this help\n"
           "  --version       print the version\n"
           "\n"
           "Environment: TESSERA_LOG=error|warn|info|debug|trace sets the log level.\n");
}

static int
cmd_help (int argc, char **argv)
{
  (void) argc;
  (void) argv;
  usage (stdout);
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc < 2) {
    usage (stderr);
    return 2;
  }
  if (strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "--help") == 0) {
    usage (stdout);
    return 0;
  }
  if (strcmp (argv[1], "--version") == 0) {
    printf ("tessera-cli %s\n", TS_VERSION_STRING);
    return 0;
  }
  for (size_t i = 0; i < n_commands; i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return commands[i].fn (argc - 1, argv + 1);
  fprintf (stderr, "tessera-cli: unknown command '%s' (see tessera-cli --help)\n", argv[1]);
  return 2;
}
