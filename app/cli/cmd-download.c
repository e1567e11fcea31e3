/* SPDX-License-Identifier: MIT
 *
 * cmd-download — `tessera-cli download [--variant fp16|fp32|all] [--revision REV] REPO_ID
 * [DIR]`: fetches a model folder from the Hugging Face hub through app/hub (libsoup 3),
 * resumable and verified. Progress goes to stderr (one redrawn line on a terminal, a line
 * per file and every few seconds otherwise). The download runs on a thread while the main
 * thread waits in a main loop for SIGINT/SIGTERM, which cancel it and leave the
 * .incomplete files for the next run to resume.
 */
#include "tessera-cli-commands.h"

#include "cli-options.h"
#include "tessera-hub.h"

#include <glib-unix.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
  "Usage: tessera-cli download [--variant fp16|fp32|all] [--revision REV] REPO_ID [DIR]\n"
  "\n"
  "Downloads a diffusers model folder (like MeissonFlow/Meissonic) from the Hugging Face\n"
  "hub: model_index.json, each component's config and tokenizer files and the weights of\n"
  "the chosen variant, nothing else. DIR defaults to $XDG_DATA_HOME/tessera/models/NAME.\n"
  "Interrupted downloads resume where they stopped; a run with everything in place fetches\n"
  "nothing. Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN.\n";

typedef struct {
  const char *repo;
  const char *dir;
  TesseraHubOptions opts;
  GCancellable *cancellable;
  GMainLoop *loop;
  gboolean tty;
  gint64 last_line_us;
  gboolean ok;
  GError *error;
  TesseraHubResult result;
} Download;

static char *
format_eta (double s)
{
  long t;

  if (s < 0 || s > 1e7)
    return g_strdup ("--:--");
  t = (long) (s + 0.5);
  if (t >= 3600)
    return g_strdup_printf ("%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  return g_strdup_printf ("%ld:%02ld", t / 60, t % 60);
}

static void
on_progress (const TesseraHubProgress *p, gpointer user_data)
{
  Download *d = user_data;
  g_autofree char *fsize = g_format_size (p->file_size);
  g_autofree char *fdone = g_format_size (p->file_done);
  g_autofree char *tsize = g_format_size (p->total_size);
  g_autofree char *tdone = g_format_size (p->total_done);
  g_autofree char *rate = g_format_size ((guint64) p->rate);
  g_autofree char *eta = format_eta (p->eta_s);
  gint64 now = g_get_monotonic_time ();

  switch (p->event) {
  case TESSERA_HUB_EVENT_LISTED:
    fprintf (stderr, "%u files, %s\n", p->n_files, tsize);
    return;
  case TESSERA_HUB_EVENT_RETRY:
    fprintf (stderr, "%s%s\n", d->tty ? "\r\033[K" : "", p->message);
    return;
  case TESSERA_HUB_EVENT_PROGRESS:
    if (d->tty) {
      fprintf (stderr, "\r\033[K[%u/%u] %s  %s / %s  total %s / %s  %s/s  ETA %s", p->file_index,
               p->n_files, p->path, fdone, fsize, tdone, tsize, rate, eta);
      fflush (stderr);
    } else if (now - d->last_line_us >= 5 * G_USEC_PER_SEC) {
      d->last_line_us = now;
      fprintf (stderr, "  %s: %s / %s, total %s / %s, %s/s, ETA %s\n", p->path, fdone, fsize,
               tdone, tsize, rate, eta);
    }
    return;
  case TESSERA_HUB_EVENT_FILE_START:
    d->last_line_us = now;
    if (p->file_done > 0)
      fprintf (stderr, "%s[%u/%u] %s: %s, resuming at %s\n", d->tty ? "\r\033[K" : "",
               p->file_index, p->n_files, p->path, fsize, fdone);
    return;
  case TESSERA_HUB_EVENT_VERIFYING:
    fprintf (stderr, "%s[%u/%u] %s: checking the file in place\n", d->tty ? "\r\033[K" : "",
             p->file_index, p->n_files, p->path);
    return;
  case TESSERA_HUB_EVENT_FILE_DONE:
    fprintf (stderr, "%s[%u/%u] %s: %s, done\n", d->tty ? "\r\033[K" : "", p->file_index,
             p->n_files, p->path, fsize);
    return;
  case TESSERA_HUB_EVENT_FILE_PRESENT:
    fprintf (stderr, "%s[%u/%u] %s: already here\n", d->tty ? "\r\033[K" : "", p->file_index,
             p->n_files, p->path);
    return;
  }
}

static gboolean
quit_loop (gpointer data)
{
  Download *d = data;

  g_main_loop_quit (d->loop);
  return G_SOURCE_REMOVE;
}

static gpointer
download_thread (gpointer data)
{
  Download *d = data;

  d->ok = tessera_hub_download (d->repo, d->dir, &d->opts, &d->result, d->cancellable,
                                &d->error);
  /* Through the main context: a quit before g_main_loop_run() starts would be lost. */
  g_idle_add (quit_loop, d);
  return NULL;
}

static gboolean
on_signal (gpointer data)
{
  Download *d = data;

  g_cancellable_cancel (d->cancellable);
  return G_SOURCE_CONTINUE;
}

int
tessera_cli_download (int argc, char **argv)
{
  static const char *const variants[] = { "fp16", "fp32", "all", NULL };
  int variant = 0, n_args;
  const char *revision = NULL;
  const cli_option opts[] = {
    { "--variant", CLI_CHOICE, &variant, "fp16|fp32|all", .choices = variants,
      .help = "fp16 (default): *.fp16.safetensors where a component has\n"
              "them, else full precision; fp32: full precision; all: both" },
    { "--revision", CLI_STRING, &revision, "REV", .help = "branch, tag or commit (default main)" },
    { .name = NULL },
  };
  Download d = { .tty = isatty (2) };
  g_autofree char *dir = NULL;
  g_autoptr(GThread) thread = NULL;
  g_autofree char *total = NULL, *fetched = NULL;
  guint sigint, sigterm;
  int rc;

  switch (cli_parse ("tessera-cli download", opts, argc, argv, &n_args)) {
  case CLI_PARSED:
    break;
  case CLI_HELP:
    fprintf (stdout, "%s\n", usage_text);
    cli_print_options (stdout, opts);
    return 0;
  case CLI_BAD:
    return 2;
  }
  if (n_args < 1 || n_args > 2) {
    fputs (usage_text, stderr);
    return 2;
  }
  d.repo = argv[1];
  dir = n_args == 2 ? g_strdup (argv[2]) : tessera_hub_default_dir (d.repo);
  d.dir = dir;
  d.opts = (TesseraHubOptions) {
    .revision = revision,
    .variant = (TesseraHubVariant) variant,
    .progress = on_progress,
    .progress_data = &d,
  };
  printf ("downloading %s (%s) into %s\n", d.repo, variants[variant], dir);
  fflush (stdout);

  d.cancellable = g_cancellable_new ();
  d.loop = g_main_loop_new (NULL, FALSE);
  sigint = g_unix_signal_add (SIGINT, on_signal, &d);
  sigterm = g_unix_signal_add (SIGTERM, on_signal, &d);
  thread = g_thread_new ("download", download_thread, &d);
  g_main_loop_run (d.loop);
  g_thread_join (g_steal_pointer (&thread));
  g_source_remove (sigint);
  g_source_remove (sigterm);
  if (d.tty)
    fprintf (stderr, "\r\033[K");

  if (d.ok) {
    total = g_format_size (d.result.total_size);
    fetched = g_format_size (d.result.bytes_fetched);
    printf ("%s at commit %s: %u files, %s (fetched %u, %s) in %s\n", d.repo,
            d.result.commit ? d.result.commit : "(unknown)", d.result.n_files, total,
            d.result.n_fetched, fetched, dir);
    printf ("use it with: tessera-cli generate --model %s --prompt TEXT\n", dir);
    rc = 0;
  } else if (g_error_matches (d.error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    fprintf (stderr, "tessera-cli: download interrupted; run the same command again to "
                     "resume\n");
    rc = 130;
  } else {
    fprintf (stderr, "tessera-cli: %s\n", d.error->message);
    rc = 1;
  }
  g_clear_error (&d.error);
  tessera_hub_result_clear (&d.result);
  g_clear_object (&d.cancellable);
  g_main_loop_unref (d.loop);
  return rc;
}
