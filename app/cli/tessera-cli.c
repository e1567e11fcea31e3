/* SPDX-License-Identifier: MIT
 *
 * tessera-cli — the command-line front end over the same engine the app uses: scripting,
 * golden checks and benchmarks. It includes only tessera.h. Each subcommand lives in a
 * function `cmd_<name>` listed in the table below; `tessera-cli --help` prints the table.
 */
#include "tessera.h"
#include "tessera-devkit.h"
#include "tessera-cli-commands.h"
#include "cli-options.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
  const char *name;
  int (*fn) (int argc, char **argv);
  const char *synopsis;
  const char *summary;
} command;

static int cmd_help (int argc, char **argv);
static int cmd_tokenize (int argc, char **argv);
static int cmd_check_golden (int argc, char **argv);

static const command commands[] = {
  { "inspect", tessera_cli_inspect, "inspect [--fp16] MODEL_DIR",
    "show a model folder: components, configs, parameters, memory" },
  { "tokenize", cmd_tokenize, "tokenize MODEL_DIR TEXT...",
    "print the 77 CLIP token ids of each TEXT, one line each" },
  { "generate", tessera_cli_generate, "generate [--model DIR] --prompt TEXT [...]",
    "text to image (see generate --help)" },
  { "img2img", tessera_cli_img2img, "img2img [--model DIR] --image IN --prompt T",
    "a new picture from an image and a prompt (see img2img --help)" },
  { "inpaint", tessera_cli_inpaint, "inpaint [--model DIR] --image IN --mask M --prompt T",
    "repaint the masked part of an image (see inpaint --help)" },
  { "outpaint", tessera_cli_outpaint, "outpaint [--model DIR] --image IN --extend L,T,R,B",
    "extend an image's canvas and paint the border (see outpaint --help)" },
  { "branch", tessera_cli_branch, "branch --image X.png --from-step K [...]",
    "rerun an image from the state after step K (see branch --help)" },
  { "refine", tessera_cli_refine, "refine --image X.png --remask F [...]",
    "redraw the tokens the model was least sure of (see refine --help)" },
  { "info", tessera_cli_info, "info [--json] FILE.png...", "print the generation parameters of PNGs" },
  { "animate", tessera_cli_animate, "animate --image X.png --out Y.webp [--codebook]",
    "write an image's unmasking as an animated WebP" },
  { "make-mask", tessera_cli_make_mask, "make-mask WxH X,Y,W,H OUT.png",
    "write a rectangular inpainting mask" },
  { "check-golden", cmd_check_golden, "check-golden GOLDEN_DIR [--backend NAME] [--precision P]",
    "run every reference case against the engine" },
  { "make-random-model", tessera_cli_make_random_model,
    "make-random-model --configs DIR --out DIR",
    "write a full-size model folder with random weights" },
  { "bench", tessera_cli_bench, "bench --model DIR [--size WxH] [--steps N]",
    "time each stage of a generation, GFLOP/s and peak memory" },
#ifdef TESSERA_HAVE_HUB
  { "download", tessera_cli_download, "download [--variant V] [--revision R] REPO_ID [DIR]",
    "fetch a model from the Hugging Face hub, resumable (see download --help)" },
#endif
  { "devices", tessera_cli_devices, "devices",
    "list the Vulkan devices (--backend vulkan:N)" },
  { "help", cmd_help, "help", "show this help" },
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
  for (size_t i = 0; i < n_commands; i++) {
    if (strlen (commands[i].synopsis) > 44)
      fprintf (out, "  %s\n  %-44s %s\n", commands[i].synopsis, "", commands[i].summary);
    else
      fprintf (out, "  %-44s %s\n", commands[i].synopsis, commands[i].summary);
  }
  fprintf (out,
           "\n"
           "Options:\n"
           "  -h, --help      show this help\n"
           "  --version       print the version\n"
           "\n"
           "Backends (--backend NAME of generate, img2img, inpaint, outpaint, branch, refine,\n"
           "  check-golden, bench):\n"
           "  auto, cpu, cpu-ref (the scalar reference), vulkan, vulkan:N (see devices), and\n"
           "  check:cpu, check:vulkan, check:vulkan:N: that backend with every op checked\n"
           "  against cpu-ref, stopping at the first op out of tolerance (for bringing up a\n"
           "  GPU or driver; slow; docs/check-backend.md)\n"
           "\n"
           "Environment: TESSERA_LOG=error|warn|info|debug|trace sets the log level;\n"
           "HF_ENDPOINT and HF_TOKEN are read by download.\n");
}

static const cli_option no_options[] = { { .name = NULL } };

static int
cmd_help (int argc, char **argv)
{
  if (cli_parse ("tessera-cli help", no_options, argc, argv, NULL) == CLI_BAD)
    return 2;
  usage (stdout);
  return 0;
}

static ts_log_level check_user_level;

/* The check backend reports its summary (ops checked, worst error per op) at INFO when it
 * is freed; with a check backend the CLI shows those lines whatever the log level. */
static void
check_log (ts_log_level level, const char *message, void *user_data)
{
  static const char *const tags[] = { "ERROR", "WARN", "INFO", "DEBUG", "TRACE" };

  (void) user_data;
  if (level <= check_user_level)
    fprintf (stderr, "tessera %s: %s\n", tags[level], message);
  else if (level == TS_LOG_INFO && strncmp (message, "check: ", 7) == 0)
    fprintf (stderr, "%s\n", message);
}

void
tessera_cli_show_check_log (const char *backend)
{
  if (!backend || strncmp (backend, "check:", 6) != 0)
    return;
  check_user_level = ts_log_get_level ();
  if (check_user_level >= TS_LOG_INFO)
    return;
  ts_log_set_handler (check_log, NULL);
  ts_log_set_level (TS_LOG_INFO);
}

/* The tokenizer lives in MODEL_DIR/tokenizer; a tokenizer folder itself is accepted too.
 * A TEXT that starts with '-' comes after "--". */
static int
cmd_tokenize (int argc, char **argv)
{
  static const char usage_text[] = "Usage: tessera-cli tokenize MODEL_DIR [--] TEXT...\n";
  char dir[4096];
  struct stat sb;
  ts_tokenizer *tok;
  ts_error err;
  int rc = 0;

  switch (cli_parse ("tessera-cli tokenize", no_options, argc, argv, &argc)) {
  case CLI_PARSED:
    break;
  case CLI_HELP:
    fputs (usage_text, stdout);
    return 0;
  case CLI_BAD:
    return 2;
  }
  argc++; /* the arguments are argv[1..argc-1] again */
  if (argc < 3) {
    fputs (usage_text, stderr);
    return 2;
  }
  /* A model folder (with a tokenizer/ folder) or a tokenizer folder itself. Decided by what
   * is there, not by a failed load, so that a model folder missing merges.txt is reported
   * as that rather than as a tokenizer folder missing vocab.json. */
  snprintf (dir, sizeof dir, "%s/tokenizer", argv[1]);
  if (stat (dir, &sb) != 0 || !S_ISDIR (sb.st_mode))
    snprintf (dir, sizeof dir, "%s", argv[1]);
  tok = ts_tokenizer_load (dir, &err);
  if (!tok) {
    fprintf (stderr, "tessera-cli: %s\n", err.message);
    return 1;
  }
  for (int i = 2; i < argc; i++) {
    int32_t ids[TS_TOKENIZER_MAX_LENGTH];
    bool truncated = false;
    if (ts_tokenizer_encode_padded (tok, argv[i], ids, &truncated, &err) != TS_OK) {
      fprintf (stderr, "tessera-cli: text %d: %s\n", i - 1, err.message);
      rc = 1;
      continue;
    }
    if (truncated)
      fprintf (stderr, "tessera-cli: warning: text %d is longer than %d tokens and was truncated\n",
               i - 1, TS_TOKENIZER_MAX_LENGTH);
    for (int j = 0; j < TS_TOKENIZER_MAX_LENGTH; j++)
      printf ("%s%d", j ? " " : "", (int) ids[j]);
    printf ("\n");
  }
  ts_tokenizer_free (tok);
  return rc;
}

static void
golden_report (void *user_data, const char *case_name, const char *tensor, double max_abs_err,
               double tolerance, bool pass)
{
  bool bf16 = user_data && *(const bool *) user_data;

  if (isnan (tolerance))
    printf ("  %-4s %-28s %-32s %s: %g mismatching\n", pass ? "ok" : "FAIL", case_name, tensor,
            bf16 && pass && max_abs_err > 0 ? "reported (bf16 rule)" : "exact", max_abs_err);
  else if (bf16 && isinf (tolerance))
    printf ("  %-4s %-28s %-32s normalised RMS err %.3e (reported: decoded from other tokens)\n",
            pass ? "ok" : "FAIL", case_name, tensor, max_abs_err);
  else if (bf16 && tolerance >= 1e-2 && tolerance < 1.0)
    printf ("  %-4s %-28s %-32s normalised RMS err %.3e (rule %.2g)\n", pass ? "ok" : "FAIL",
            case_name, tensor, max_abs_err, tolerance);
  else
    printf ("  %-4s %-28s %-32s max abs err %.3e (tol %.1e)\n", pass ? "ok" : "FAIL", case_name,
            tensor, max_abs_err, tolerance);
}

static void
golden_case_done (void *user_data, const char *index_file, const char *case_name,
                  const char *kind, ts_status status, const char *message)
{
  (void) user_data;
  if (status == TS_OK)
    printf ("PASS %s (%s, %s)\n", case_name, kind, index_file);
  else if (status == TS_ERR_UNSUPPORTED)
    printf ("NOT IMPLEMENTED %s (%s, %s): %s\n", case_name, kind, index_file, message);
  else
    printf ("FAIL %s (%s, %s): %s\n", case_name, kind, index_file, message);
  fflush (stdout);
}

static int
cmd_check_golden (int argc, char **argv)
{
  static const char usage_text[] =
    "Usage: tessera-cli check-golden GOLDEN_DIR [--backend NAME] [--precision fp32|bf16|auto]\n";
  static const char *const precisions[] = { "auto", "fp32", "bf16", NULL };
  const char *dir, *backend = "cpu";
  int precision = TS_PRECISION_FP32;
  bool bf16;
  const cli_option opts[] = {
    { "--backend", CLI_STRING, &backend, "NAME",
      .help = "cpu (default), cpu-ref, vulkan, vulkan:N, check:cpu,\n"
              "check:vulkan or check:vulkan:N" },
    { "--precision", CLI_CHOICE, &precision, "fp32|bf16|auto", .choices = precisions,
      .help = "fp32 (default: the official arithmetic, every tolerance of the\n"
              "golden README) or bf16 (the bf16 rule: each float tensor within\n"
              "a normalised RMS error of 1e-2, token counts reported only;\n"
              "docs/precision.md); auto: bf16 where the CPU has it natively" },
    { .name = NULL },
  };
  ts_golden_summary sum;
  ts_error err;
  ts_status st;
  int n_args;

  switch (cli_parse ("tessera-cli check-golden", opts, argc, argv, &n_args)) {
  case CLI_PARSED:
    break;
  case CLI_HELP:
    fprintf (stdout, "%s\n", usage_text);
    cli_print_options (stdout, opts);
    return 0;
  case CLI_BAD:
    return 2;
  }
  if (n_args != 1) {
    fputs (usage_text, stderr);
    return 2;
  }
  dir = argv[1];
  tessera_cli_show_check_log (backend);
  printf ("golden set %s, backend %s, precision %s\n", dir, backend, precisions[precision]);
  /* auto is bf16 only on the fast CPU backend of a CPU with native bf16 */
  bf16 = precision == TS_PRECISION_BF16
         || (precision == TS_PRECISION_AUTO && strcmp (backend, "cpu") == 0
             && ts_cpu_bf16_support () == TS_BF16_NATIVE);
  st = ts_golden_check_precision (dir, backend, (ts_precision) precision, golden_report,
                                  golden_case_done, &bf16, &sum, &err);
  if (st != TS_OK && st != TS_ERR_MISMATCH) {
    fprintf (stderr, "tessera-cli: %s\n", err.message);
    return 1;
  }
  printf ("%d cases: %d passed, %d failed, %d not implemented\n", sum.n_cases, sum.n_passed,
          sum.n_failed, sum.n_not_implemented);
  return st == TS_OK ? 0 : 1;
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
