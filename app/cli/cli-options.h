/* SPDX-License-Identifier: MIT
 *
 * cli-options — the one option parser of tessera-cli's commands and of the tools
 * (demo-eval, bench-cpu-kernels), so every program reads `--name value` and
 * `--name=value` alike, checks numbers over their full range with no trailing garbage,
 * says "unknown option" for an option it does not know, and reports every mistake in one
 * format: "PROGRAM: --seed: '12x' is not a number from 0 to 18446744073709551615". Each
 * program describes its options in a table of cli_option, which also prints the option
 * list of its --help. Plain C (no GLib): the CLI links only the engine and the devkit.
 */
#ifndef CLI_OPTIONS_H
#define CLI_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
  CLI_FLAG,     /* bool: set to true; takes no value */
  CLI_STRING,   /* const char *: the value itself, borrowed from argv */
  CLI_INT,      /* int, from min to max (both 0: any int) */
  CLI_UINT64,   /* uint64_t, 0 to 2^64-1, decimal or 0x-prefixed hexadecimal */
  CLI_DOUBLE,   /* double, finite, from min to max (both 0: any); min_open excludes min */
  CLI_SIZE,     /* uint32_t[2]: "WxH", both at least 1 */
  CLI_LIST,     /* double[n]: n comma-separated numbers ("2,0"), each as CLI_DOUBLE */
  CLI_CHOICE,   /* int: the index of the value in choices */
  CLI_CALLBACK, /* parse (value, dest) decides; wants says what it wants, for the error */
} cli_kind;

typedef struct {
  const char *name;    /* with its dashes: "--seed" */
  cli_kind kind;
  void *dest;          /* of the type the kind names */
  const char *metavar; /* the value in the help and in errors ("N", "WxH"); NULL for flags */
  const char *help;    /* one line, or several separated by '\n' */
  double min, max;     /* CLI_INT, CLI_DOUBLE, CLI_LIST */
  bool min_open;       /* CLI_DOUBLE, CLI_LIST: min itself is out of range */
  int n;               /* CLI_LIST: how many numbers */
  const char *const *choices;                    /* CLI_CHOICE: NULL-terminated */
  bool (*parse) (const char *value, void *dest); /* CLI_CALLBACK */
  const char *wants;   /* CLI_CALLBACK: "MxKxN with sizes from 1" */
  bool *seen;          /* optional: set to true when the option is given */
} cli_option;

typedef enum {
  CLI_PARSED, /* options stored, positional arguments collected */
  CLI_HELP,   /* -h or --help was given: print the usage to stdout and exit 0 */
  CLI_BAD,    /* a usage error, already reported on stderr: exit 2 */
} cli_result;

/* Parses argv[1..argc-1] against opts (ended by an entry whose name is NULL). An option
 * is `--name value` or `--name=value`; the value of `--name value` is the next argument
 * even when it starts with '-'. `--` ends the options, and a lone `-` is an argument. The
 * arguments that are not options move, in order, to argv[1..*n_args]; with n_args NULL
 * any such argument is an error. prog names the program in messages ("tessera-cli
 * generate"). Later options win over earlier ones. */
cli_result cli_parse (const char *prog, const cli_option *opts, int argc, char **argv,
                      int *n_args);

/* The option list of a --help: "  --name METAVAR  help", aligned, and -h/--help last. */
void cli_print_options (FILE *out, const cli_option *opts);

/* The value parsers behind the kinds, for positional arguments. All reject leading
 * whitespace, signs on unsigned values, out-of-range values and trailing characters. */
bool cli_parse_uint64 (const char *s, uint64_t *out);
bool cli_parse_int (const char *s, long min, long max, int *out);
/* n unsigned 32-bit numbers separated by sep ("0,0,128,256" with ','; "MxKxN" with 'x'). */
bool cli_parse_uint32_list (const char *s, char sep, uint32_t *out, int n);
/* "WxH" (or "WXH"), both from 1. */
bool cli_parse_size (const char *s, uint32_t *width, uint32_t *height);
/* Why cli_parse_size refused s, to follow "'s' is not WIDTHxHEIGHT" in a message:
 * " (a side is negative)", " (a side is 0)", " (a side is over 4294967295)", or "" when s
 * is no pair of numbers at all. */
const char *cli_size_problem (const char *s);

#endif /* CLI_OPTIONS_H */
