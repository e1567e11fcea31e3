/* SPDX-License-Identifier: MIT
 *
 * cli-options — the option parser of the CLI commands and the tools (see cli-options.h):
 * looks each `--name` up in the program's table before anything else, so an unknown
 * option is called unknown whatever follows it, then parses the value by its kind. The
 * number parsers use strtoull/strtol/strtod with errno and an end pointer, and first
 * refuse what those functions silently accept: leading whitespace, and a sign on an
 * unsigned value (strtoull(" -1") is 2^64-1).
 */
#include "cli-options.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Decimal, or hexadecimal after "0x": the number ends at *end. */
static bool
parse_u64_prefix (const char *s, uint64_t *out, const char **end)
{
  int base = 10;
  char *e;

  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && isxdigit ((unsigned char) s[2]))
    base = 16;
  else if (!isdigit ((unsigned char) s[0]))
    return false;
  errno = 0;
  *out = strtoull (s, &e, base);
  *end = e;
  return errno == 0 && e != s;
}

bool
cli_parse_uint64 (const char *s, uint64_t *out)
{
  const char *end;
  uint64_t v;

  if (!parse_u64_prefix (s, &v, &end) || *end != '\0')
    return false;
  *out = v;
  return true;
}

bool
cli_parse_int (const char *s, long min, long max, int *out)
{
  char *end;
  long v;

  if (!*s || isspace ((unsigned char) s[0]))
    return false;
  errno = 0;
  v = strtol (s, &end, 10);
  if (errno || end == s || *end || v < min || v > max)
    return false;
  *out = (int) v;
  return true;
}

bool
cli_parse_uint32_list (const char *s, char sep, uint32_t *out, int n)
{
  for (int i = 0; i < n; i++) {
    const char *end;
    uint64_t v;

    if (!parse_u64_prefix (s, &v, &end) || v > UINT32_MAX)
      return false;
    if (i + 1 < n ? *end != sep : *end != '\0')
      return false;
    out[i] = (uint32_t) v;
    s = end + 1;
  }
  return true;
}

bool
cli_parse_size (const char *s, uint32_t *width, uint32_t *height)
{
  char buf[64];
  uint32_t wh[2];
  char *x;

  if (strlen (s) >= sizeof buf)
    return false;
  strcpy (buf, s);
  x = strchr (buf, 'X');
  if (x)
    *x = 'x';
  if (!cli_parse_uint32_list (buf, 'x', wh, 2) || wh[0] == 0 || wh[1] == 0)
    return false;
  *width = wh[0];
  *height = wh[1];
  return true;
}

const char *
cli_size_problem (const char *s)
{
  const char *x = strpbrk (s, "xX");
  const char *sides[2] = { s, x ? x + 1 : NULL };

  if (!x)
    return "";
  for (int i = 0; i < 2; i++)
    if (sides[i][0] == '-' && isdigit ((unsigned char) sides[i][1]))
      return " (a side is negative)";
  for (int i = 0; i < 2; i++) {
    const char *end;
    uint64_t v;
    if (isdigit ((unsigned char) sides[i][0]) && !parse_u64_prefix (sides[i], &v, &end))
      return " (a side is over 4294967295)";
    if (parse_u64_prefix (sides[i], &v, &end) && *end == (i == 0 ? *x : '\0')) {
      if (v > UINT32_MAX)
        return " (a side is over 4294967295)";
      if (v == 0)
        return " (a side is 0)";
    }
  }
  return "";
}

/* Both bounds 0: any finite number. */
static bool
in_range (const cli_option *o, double v)
{
  if (o->min == 0 && o->max == 0)
    return true;
  return (o->min_open ? v > o->min : v >= o->min) && v <= o->max;
}

/* One number of a CLI_DOUBLE or CLI_LIST value; it ends at *end. */
static bool
parse_double_prefix (const cli_option *o, const char *s, double *out, char **end)
{
  if (!*s || isspace ((unsigned char) s[0]))
    return false;
  errno = 0;
  *out = strtod (s, end);
  return errno == 0 && *end != s && isfinite (*out) && in_range (o, *out);
}

/* " from 0 to 1", " above 0 up to 1", " from 0 up", "" for any number. */
static void
describe_range (const cli_option *o, char *buf, size_t size)
{
  bool has_min = !(o->min == 0 && o->max == 0) && isfinite (o->min);
  bool has_max = !(o->min == 0 && o->max == 0) && isfinite (o->max);

  if (has_min && has_max)
    snprintf (buf, size, " %s %g %s %g", o->min_open ? "above" : "from", o->min,
              o->min_open ? "up to" : "to", o->max);
  else if (has_min)
    snprintf (buf, size, " %s %g%s", o->min_open ? "above" : "from", o->min,
              o->min_open ? "" : " up");
  else if (has_max)
    snprintf (buf, size, " up to %g", o->max);
  else
    buf[0] = '\0';
}

/* Stores value into o->dest; on failure reports what the option wants. */
static bool
set_value (const char *prog, const cli_option *o, const char *value)
{
  char range[96];
  bool ok = false;

  switch (o->kind) {
  case CLI_FLAG:
    ok = true;
    *(bool *) o->dest = true;
    break;
  case CLI_STRING:
    ok = true;
    *(const char **) o->dest = value;
    break;
  case CLI_INT: {
    bool any = o->min == 0 && o->max == 0;
    ok = cli_parse_int (value, any ? INT_MIN : (long) o->min, any ? INT_MAX : (long) o->max,
                        o->dest);
    if (!ok && any)
      fprintf (stderr, "%s: %s: '%s' is not a whole number\n", prog, o->name, value);
    else if (!ok)
      fprintf (stderr, "%s: %s: '%s' is not a whole number from %ld to %ld\n", prog, o->name,
               value, (long) o->min, (long) o->max);
    break;
  }
  case CLI_UINT64:
    ok = cli_parse_uint64 (value, o->dest);
    if (!ok)
      fprintf (stderr, "%s: %s: '%s' is not a number from 0 to 18446744073709551615\n", prog,
               o->name, value);
    break;
  case CLI_DOUBLE: {
    char *end;
    double v;
    ok = parse_double_prefix (o, value, &v, &end) && *end == '\0';
    if (ok) {
      *(double *) o->dest = v;
    } else {
      describe_range (o, range, sizeof range);
      fprintf (stderr, "%s: %s: '%s' is not a number%s\n", prog, o->name, value, range);
    }
    break;
  }
  case CLI_SIZE: {
    uint32_t *wh = o->dest;
    ok = cli_parse_size (value, &wh[0], &wh[1]);
    if (!ok)
      fprintf (stderr, "%s: %s: '%s' is not WIDTHxHEIGHT%s, e.g. 1024x1024\n", prog, o->name,
               value, cli_size_problem (value));
    break;
  }
  case CLI_LIST: {
    double v[16];
    const char *s = value;
    ok = o->n > 0 && o->n <= 16;
    for (int i = 0; ok && i < o->n; i++) {
      char *end;
      ok = parse_double_prefix (o, s, &v[i], &end) && *end == (i + 1 < o->n ? ',' : '\0');
      s = end + 1;
    }
    if (ok) {
      memcpy (o->dest, v, (size_t) o->n * sizeof v[0]);
    } else {
      describe_range (o, range, sizeof range);
      fprintf (stderr, "%s: %s: '%s' is not %s (%d numbers%s)\n", prog, o->name, value,
               o->metavar ? o->metavar : "a list", o->n, range);
    }
    break;
  }
  case CLI_CHOICE:
    for (int i = 0; o->choices[i]; i++)
      if (strcmp (value, o->choices[i]) == 0) {
        *(int *) o->dest = i;
        ok = true;
      }
    if (!ok) {
      fprintf (stderr, "%s: %s: '%s' is not one of ", prog, o->name, value);
      for (int i = 0; o->choices[i]; i++)
        fprintf (stderr, "%s%s", i ? ", " : "", o->choices[i]);
      fprintf (stderr, "\n");
    }
    break;
  case CLI_CALLBACK:
    ok = o->parse (value, o->dest);
    if (!ok)
      fprintf (stderr, "%s: %s: '%s' is not %s\n", prog, o->name, value,
               o->wants ? o->wants : o->metavar);
    break;
  }
  if (ok && o->seen)
    *o->seen = true;
  return ok;
}

cli_result
cli_parse (const char *prog, const cli_option *opts, int argc, char **argv, int *n_args)
{
  int n = 0;
  bool options_done = false;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *value = NULL, *eq;
    const cli_option *o = NULL;
    size_t len;

    /* No option starts with a digit: "-64x64" is a (negative, and so refused) value of a
     * command that takes arguments, not an unknown option. */
    if (options_done || a[0] != '-' || a[1] == '\0'
        || (n_args && isdigit ((unsigned char) a[1]))) {
      if (!n_args) {
        fprintf (stderr, "%s: unexpected argument '%s' (see --help)\n", prog, a);
        return CLI_BAD;
      }
      argv[1 + n++] = argv[i];
      continue;
    }
    if (strcmp (a, "--") == 0) {
      options_done = true;
      continue;
    }
    if (strcmp (a, "-h") == 0 || strcmp (a, "--help") == 0)
      return CLI_HELP;

    eq = a[1] == '-' ? strchr (a, '=') : NULL;
    len = eq ? (size_t) (eq - a) : strlen (a);
    for (const cli_option *c = opts; c->name; c++)
      if (strlen (c->name) == len && strncmp (c->name, a, len) == 0)
        o = c;
    if (!o) {
      fprintf (stderr, "%s: unknown option '%.*s' (see --help)\n", prog, (int) len, a);
      return CLI_BAD;
    }
    if (o->kind == CLI_FLAG) {
      if (eq) {
        fprintf (stderr, "%s: %s takes no value\n", prog, o->name);
        return CLI_BAD;
      }
    } else if (eq) {
      value = eq + 1;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      fprintf (stderr, "%s: %s needs a value (see --help)\n", prog, o->name);
      return CLI_BAD;
    }
    if (!set_value (prog, o, value))
      return CLI_BAD;
  }
  if (n_args)
    *n_args = n;
  return CLI_PARSED;
}

void
cli_print_options (FILE *out, const cli_option *opts)
{
  int width = (int) strlen ("-h, --help");

  for (const cli_option *o = opts; o->name; o++) {
    int w = (int) strlen (o->name) + (o->metavar ? 1 + (int) strlen (o->metavar) : 0);
    if (w > width)
      width = w;
  }
  for (const cli_option *o = opts; o->name; o++) {
    const char *h = o->help ? o->help : "";
    int w = fprintf (out, "  %s%s%s", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
    /* Each line of the help starts in the same column. */
    for (;;) {
      size_t line = strcspn (h, "\n");
      fprintf (out, "%*s%.*s\n", 2 + width + 2 - w, "", (int) line, h);
      if (!h[line])
        break;
      h += line + 1;
      w = 0;
    }
  }
  fprintf (out, "  %-*s  show this help\n", width, "-h, --help");
}
