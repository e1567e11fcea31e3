/* SPDX-License-Identifier: MIT
 *
 * tessera-hub — downloads a diffusers model folder from the Hugging Face hub (or any
 * server that speaks its HTTP API) into a local folder the engine loads: only the files the
 * engine reads, each written to PATH.incomplete, checked (size, and sha256 for LFS files)
 * and renamed into place. A dropped connection resumes with a Range request, a killed run
 * resumes from the .incomplete file, and a re-run with everything in place fetches nothing
 * (verification is remembered in DIR/.tessera-download.json, keyed by size and mtime).
 * HTTP through libsoup 3, checksums through GChecksum, files through GIO. It sits outside
 * the engine (which stays GLib-free) and serves tessera-cli's `download` and the app.
 *
 * Protocol (the hub's public API):
 *   GET {endpoint}/api/models/{repo}/tree/{revision}?recursive=true   the file listing
 *   GET {endpoint}/{repo}/resolve/{revision}/{path}                   a file (redirects to
 *       a CDN for LFS files; X-Repo-Commit names the commit, X-Linked-Etag/-Size carry the
 *       sha256 and size of LFS files)
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define TESSERA_HUB_ERROR (tessera_hub_error_quark ())
GQuark tessera_hub_error_quark (void);

typedef enum {
  TESSERA_HUB_ERROR_NETWORK,     /* the endpoint cannot be reached, or kept failing */
  TESSERA_HUB_ERROR_AUTH,        /* 401/403: a token is needed, or it was refused */
  TESSERA_HUB_ERROR_NOT_FOUND,   /* 404: repository, revision or file */
  TESSERA_HUB_ERROR_CHECKSUM,    /* a file's size or sha256 disagrees, after a refetch */
  TESSERA_HUB_ERROR_NO_SPACE,    /* not enough free space for what is left to fetch */
  TESSERA_HUB_ERROR_PROTOCOL,    /* an answer the hub's API does not give */
  TESSERA_HUB_ERROR_NOT_A_MODEL, /* no model_index.json: not a diffusers pipeline */
  TESSERA_HUB_ERROR_FOLDER,      /* the folder holds another repository */
} TesseraHubError;

typedef enum {
  TESSERA_HUB_VARIANT_FP16, /* *.fp16.safetensors where a component has it, else full */
  TESSERA_HUB_VARIANT_FP32, /* the full-precision files */
  TESSERA_HUB_VARIANT_ALL,  /* both */
} TesseraHubVariant;

/* "fp16", "fp32", "all". */
gboolean tessera_hub_variant_from_string (const char *s, TesseraHubVariant *out);
const char *tessera_hub_variant_to_string (TesseraHubVariant variant);

/* One file of a listing. */
typedef struct {
  char *path;    /* relative to the repository root, '/'-separated */
  guint64 size;  /* bytes (the LFS object's size for LFS files) */
  char *sha256;  /* LFS files: the object's sha256, lowercase hex; NULL for plain files */
} TesseraHubFile;

void tessera_hub_file_free (TesseraHubFile *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TesseraHubFile, tessera_hub_file_free)

/* The files of `listing` (TesseraHubFile) that the engine reads for `variant`, in listing
 * order, model_index.json last: each listed component's config and tokenizer files and
 * its chosen safetensors weights (single files or shards with their index). components is
 * the NULL-terminated list of component folders named in model_index.json. The result
 * borrows the listing's elements. Never .py, .bin, .onnx, .ckpt, images or cards. */
GPtrArray *tessera_hub_select_files (GPtrArray *listing, const char *const *components,
                                     TesseraHubVariant variant);

/* The component folders of a model_index.json text (keys not starting with '_' whose value
 * names a library and a class), NULL-terminated; NULL with `error` set when the text is no
 * JSON object. */
char **tessera_hub_components_from_model_index (const char *text, gsize len, GError **error);

typedef enum {
  TESSERA_HUB_EVENT_LISTED,       /* the listing is in: n_files and total_size are known */
  TESSERA_HUB_EVENT_FILE_START,   /* a fetch starts (file_done > 0: it resumes) */
  TESSERA_HUB_EVENT_PROGRESS,     /* bytes arrived (at most ten calls a second) */
  TESSERA_HUB_EVENT_VERIFYING,    /* hashing a file already on disk */
  TESSERA_HUB_EVENT_FILE_DONE,    /* fetched, checked and renamed into place */
  TESSERA_HUB_EVENT_FILE_PRESENT, /* already in place and checked: not fetched */
  TESSERA_HUB_EVENT_RETRY,        /* the transfer failed; message says why and the wait */
} TesseraHubEvent;

typedef struct {
  TesseraHubEvent event;
  const char *path;              /* the current file; NULL for LISTED */
  guint file_index, n_files;     /* 1-based index of the current file */
  guint64 file_done, file_size;
  guint64 total_done, total_size; /* over every chosen file, fetched or already present */
  double rate;                   /* bytes/s over the last seconds; 0 while unknown */
  double eta_s;                  /* seconds left at that rate; < 0 while unknown */
  const char *message;           /* RETRY only */
} TesseraHubProgress;

/* Called on the thread that runs tessera_hub_download(). */
typedef void (*TesseraHubProgressFunc) (const TesseraHubProgress *progress, gpointer user_data);

typedef struct {
  const char *endpoint;   /* NULL: $HF_ENDPOINT, else https://huggingface.co */
  const char *token;      /* NULL: $HF_TOKEN, else huggingface_hub's token file; "": none */
  const char *revision;   /* NULL: "main" */
  TesseraHubVariant variant;
  TesseraHubProgressFunc progress;
  gpointer progress_data;
  guint max_attempts;     /* per file, without progress in between; 0: 6 */
  guint retry_delay_ms;   /* the first wait, doubled each time up to 30 s; 0: 1000 */
} TesseraHubOptions;

typedef struct {
  char *commit;           /* X-Repo-Commit, or the recorded one when nothing was fetched */
  guint n_files;          /* files chosen */
  guint n_fetched;        /* of them fetched (the rest were in place) */
  guint64 total_size;     /* bytes of the chosen files */
  guint64 bytes_fetched;  /* bytes transferred in this run */
} TesseraHubResult;

void tessera_hub_result_clear (TesseraHubResult *result);

/* $XDG_DATA_HOME/tessera/models/NAME for repo_id "ORG/NAME". Free with g_free. */
char *tessera_hub_default_dir (const char *repo_id);

/* Fetches what `repo_id` ("ORG/NAME") needs for options->variant into dir (created), as
 * described at the top. Synchronous: run it on a worker thread in a GUI. Cancelling
 * leaves the .incomplete files for the next run to resume. result (optional) is filled on
 * success and must be cleared with tessera_hub_result_clear. Fails with TESSERA_HUB_ERROR
 * (messages name the repository or file and say what to do), G_IO_ERROR_CANCELLED, or a
 * G_IO_ERROR from the file system. */
gboolean tessera_hub_download (const char *repo_id, const char *dir,
                               const TesseraHubOptions *options, TesseraHubResult *result,
                               GCancellable *cancellable, GError **error);

G_END_DECLS
