/* SPDX-License-Identifier: MIT
 *
 * tessera-hub — the download itself (see tessera-hub.h): list the repository, pick the
 * files (tessera-hub-select.c), check the disk space, then fetch each file that is not in
 * place into PATH.incomplete, resuming with `Range: bytes=N-`, hash it as it arrives, check
 * size and sha256, and rename it into place. model_index.json is written last, so a folder
 * that has one is complete. Redirects are followed by hand: the hub's answer carries
 * X-Repo-Commit and X-Linked-Etag/-Size, and the token must not follow a redirect to another
 * host (the CDN's signed URLs refuse an Authorization header).
 */
#include "tessera-hub.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#define STATE_FILE ".tessera-download.json"
#define BUFFER_SIZE (256 * 1024)

G_DEFINE_QUARK (tessera-hub-error-quark, tessera_hub_error)

typedef struct {
  SoupSession *session;
  GCancellable *cancellable;
  const TesseraHubOptions *opts;
  char *repo;
  char *endpoint;
  char *endpoint_host;
  char *token;
  char *revision;    /* what files are fetched at: the commit once it is known */
  char *commit;
  GFile *dir;
  JsonObject *state; /* the "files" object of STATE_FILE */
  char *state_commit;

  /* the last fetch's hub headers */
  char *linked_etag;
  guint64 linked_size;

  /* progress */
  TesseraHubProgress p;
  gint64 last_report_us, rate_t_us;
  guint64 rate_bytes;
  guint64 bytes_fetched;
  guint n_fetched;
} Hub;

static void
hub_clear (Hub *hub)
{
  g_clear_object (&hub->session);
  g_clear_pointer (&hub->repo, g_free);
  g_clear_pointer (&hub->endpoint, g_free);
  g_clear_pointer (&hub->endpoint_host, g_free);
  g_clear_pointer (&hub->token, g_free);
  g_clear_pointer (&hub->revision, g_free);
  g_clear_pointer (&hub->commit, g_free);
  g_clear_object (&hub->dir);
  g_clear_pointer (&hub->state, json_object_unref);
  g_clear_pointer (&hub->state_commit, g_free);
  g_clear_pointer (&hub->linked_etag, g_free);
}

void
tessera_hub_result_clear (TesseraHubResult *result)
{
  if (!result)
    return;
  g_clear_pointer (&result->commit, g_free);
  *result = (TesseraHubResult) { .commit = NULL };
}

char *
tessera_hub_default_dir (const char *repo_id)
{
  const char *name;

  g_return_val_if_fail (repo_id != NULL, NULL);
  name = strrchr (repo_id, '/');
  return g_build_filename (g_get_user_data_dir (), "tessera", "models", name ? name + 1 : repo_id,
                           NULL);
}

/* ---- progress ---------------------------------------------------------------------- */

static void
report (Hub *hub, TesseraHubEvent event, const char *message)
{
  gint64 now = g_get_monotonic_time ();

  if (!hub->opts->progress)
    return;
  if (event == TESSERA_HUB_EVENT_PROGRESS && now - hub->last_report_us < 100000)
    return;
  hub->last_report_us = now;
  /* The rate over a sliding window of about three seconds of transfer. */
  if (hub->rate_t_us == 0) {
    hub->rate_t_us = now;
    hub->rate_bytes = hub->bytes_fetched;
  } else if (now - hub->rate_t_us >= 500000) {
    double inst = (double) (hub->bytes_fetched - hub->rate_bytes) * 1e6
                  / (double) (now - hub->rate_t_us);
    double w = 1.0 - exp (-(double) (now - hub->rate_t_us) / 3e6);
    hub->p.rate = hub->p.rate > 0 ? hub->p.rate + (inst - hub->p.rate) * w : inst;
    hub->rate_t_us = now;
    hub->rate_bytes = hub->bytes_fetched;
  }
  hub->p.eta_s = hub->p.rate > 0 && hub->p.total_size >= hub->p.total_done
                   ? (double) (hub->p.total_size - hub->p.total_done) / hub->p.rate
                   : -1;
  hub->p.event = event;
  hub->p.message = message;
  hub->opts->progress (&hub->p, hub->opts->progress_data);
}

/* ---- HTTP -------------------------------------------------------------------------- */

static char *
quote_path (const char *s)
{
  return g_uri_escape_string (s, "/", FALSE);
}

static char *
resolve_url (Hub *hub, const char *path)
{
  g_autofree char *rev = g_uri_escape_string (hub->revision, NULL, FALSE);
  g_autofree char *p = quote_path (path);
  g_autofree char *repo = quote_path (hub->repo);

  return g_strdup_printf ("%s/%s/resolve/%s/%s", hub->endpoint, repo, rev, p);
}

static char *
host_of (const char *url)
{
  g_autoptr(GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  return uri && g_uri_get_host (uri) ? g_strdup_printf ("%s:%d", g_uri_get_host (uri),
                                                        g_uri_get_port (uri))
                                     : NULL;
}

/* The sha256 in an X-Linked-Etag ("sha", W/"sha"), or NULL. */
static char *
etag_sha256 (const char *etag)
{
  g_autofree char *s = NULL;
  gsize n;

  if (!etag)
    return NULL;
  if (g_str_has_prefix (etag, "W/"))
    etag += 2;
  s = g_strdup (etag);
  g_strstrip (s);
  n = strlen (s);
  if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
    s[n - 1] = '\0';
    memmove (s, s + 1, n - 1);
  }
  if (strlen (s) != 64)
    return NULL;
  for (const char *c = s; *c; c++)
    if (!g_ascii_isxdigit (*c))
      return NULL;
  return g_ascii_strdown (s, -1);
}

static void
note_headers (Hub *hub, SoupMessage *msg)
{
  SoupMessageHeaders *h = soup_message_get_response_headers (msg);
  const char *commit = soup_message_headers_get_one (h, "X-Repo-Commit");
  const char *etag = soup_message_headers_get_one (h, "X-Linked-Etag");
  const char *size = soup_message_headers_get_one (h, "X-Linked-Size");
  char *sha;

  if (commit && *commit && !hub->commit)
    hub->commit = g_strdup (commit);
  if ((sha = etag_sha256 (etag)) != NULL) {
    g_free (hub->linked_etag);
    hub->linked_etag = sha;
  }
  if (size)
    hub->linked_size = g_ascii_strtoull (size, NULL, 10);
}

/* Whether an error from the transport is worth another try. Name resolution and refused
 * connections are not: they mean no network or a wrong endpoint, and the user should hear
 * that at once rather than after half a minute of retries. */
static gboolean
transport_error_is_fatal (const GError *e)
{
  return e->domain == G_RESOLVER_ERROR || g_error_matches (e, G_IO_ERROR, G_IO_ERROR_CANCELLED)
         || g_error_matches (e, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)
         || g_error_matches (e, G_IO_ERROR, G_IO_ERROR_NETWORK_UNREACHABLE)
         || g_error_matches (e, G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE)
         || e->domain == G_TLS_ERROR;
}

/* Sends a GET, following redirects by hand; returns the body stream of the final answer
 * and that answer's message in *out_msg, whatever its status. offset > 0 asks for a range. */
static GInputStream *
http_open (Hub *hub, const char *url, guint64 offset, SoupMessage **out_msg, GError **error)
{
  g_autofree char *current = g_strdup (url);

  g_clear_pointer (&hub->linked_etag, g_free);
  hub->linked_size = 0;
  for (int hop = 0; hop < 10; hop++) {
    g_autoptr(SoupMessage) msg = soup_message_new (SOUP_METHOD_GET, current);
    g_autofree char *host = host_of (current);
    SoupMessageHeaders *req;
    GInputStream *in;
    const char *location;
    g_autoptr(GUri) next = NULL;
    guint status;

    if (!msg) {
      g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_PROTOCOL, "bad URL: %s", current);
      return NULL;
    }
    soup_message_add_flags (msg, SOUP_MESSAGE_NO_REDIRECT);
    req = soup_message_get_request_headers (msg);
    if (hub->token && g_strcmp0 (host, hub->endpoint_host) == 0) {
      g_autofree char *auth = g_strdup_printf ("Bearer %s", hub->token);
      soup_message_headers_replace (req, "Authorization", auth);
    }
    if (offset > 0)
      soup_message_headers_set_range (req, (goffset) offset, -1);
    in = soup_session_send (hub->session, msg, hub->cancellable, error);
    if (!in)
      return NULL;
    note_headers (hub, msg);
    status = soup_message_get_status (msg);
    if (!SOUP_STATUS_IS_REDIRECTION (status) || status == SOUP_STATUS_NOT_MODIFIED) {
      *out_msg = g_steal_pointer (&msg);
      return in;
    }
    location = soup_message_headers_get_one (soup_message_get_response_headers (msg), "Location");
    g_input_stream_close (in, NULL, NULL);
    g_object_unref (in);
    if (!location) {
      g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_PROTOCOL,
                   "%s: redirect without a Location", current);
      return NULL;
    }
    {
      g_autoptr(GUri) base = g_uri_parse (current, G_URI_FLAGS_ENCODED, error);
      if (!base)
        return NULL;
      next = g_uri_parse_relative (base, location, G_URI_FLAGS_ENCODED, error);
      if (!next)
        return NULL;
    }
    g_free (current);
    current = g_uri_to_string (next);
  }
  g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_PROTOCOL,
               "%s: too many redirects", url);
  return NULL;
}

/* The error for an HTTP status that is not retried; FALSE when status is retryable. */
static gboolean
http_status_error (Hub *hub, SoupMessage *msg, const char *what, GError **error)
{
  guint status = soup_message_get_status (msg);
  SoupMessageHeaders *h = soup_message_get_response_headers (msg);
  const char *code = soup_message_headers_get_one (h, "X-Error-Code");

  if (g_strcmp0 (code, "RepoNotFound") == 0
      || (status == 404 && !what && g_strcmp0 (code, "RevisionNotFound") != 0)) {
    g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NOT_FOUND,
                 "repository not found: %s%s", hub->repo,
                 hub->token ? "" : " (if it is private, set HF_TOKEN)");
    return TRUE;
  }
  if (g_strcmp0 (code, "RevisionNotFound") == 0) {
    g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NOT_FOUND,
                 "revision not found: %s in %s", hub->revision, hub->repo);
    return TRUE;
  }
  if (g_strcmp0 (code, "GatedRepo") == 0) {
    g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_AUTH,
                 "%s is gated: accept its terms at %s/%s, then set HF_TOKEN", hub->repo,
                 hub->endpoint, hub->repo);
    return TRUE;
  }
  if (status == 401 || status == 403) {
    if (hub->token)
      g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_AUTH,
                   "the token in HF_TOKEN was refused for %s (HTTP %u): check that it can read "
                   "this repository", hub->repo, status);
    else
      g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_AUTH,
                   "this repository needs a token: set HF_TOKEN (%s, HTTP %u)", hub->repo,
                   status);
    return TRUE;
  }
  if (status == 404) {
    g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NOT_FOUND,
                 "%s: not found in %s at %s", what, hub->repo, hub->revision);
    return TRUE;
  }
  if (status >= 500 || status == 429 || status == 408)
    return FALSE;
  g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_PROTOCOL,
               "%s: unexpected answer HTTP %u %s", what ? what : hub->repo, status,
               soup_message_get_reason_phrase (msg) ? soup_message_get_reason_phrase (msg) : "");
  return TRUE;
}

/* Waits before try number `attempt` (1-based); FALSE when cancelled. */
static gboolean
backoff (Hub *hub, guint attempt, const char *path, const GError *why, GError **error)
{
  guint base = hub->opts->retry_delay_ms ? hub->opts->retry_delay_ms : 1000;
  guint64 ms = (guint64) base << MIN (attempt - 1, 16u);
  g_autofree char *msg = NULL;
  gint64 end;

  ms = MIN (ms, 30000u);
  msg = g_strdup_printf ("%s: %s; trying again in %.0f s", path ? path : "listing",
                         why->message, ceil ((double) ms / 1000.0));
  report (hub, TESSERA_HUB_EVENT_RETRY, msg);
  end = g_get_monotonic_time () + (gint64) ms * 1000;
  while (g_get_monotonic_time () < end) {
    if (g_cancellable_set_error_if_cancelled (hub->cancellable, error))
      return FALSE;
    g_usleep (50000);
  }
  return TRUE;
}

static guint
max_attempts (Hub *hub)
{
  return hub->opts->max_attempts ? hub->opts->max_attempts : 6;
}

/* Reads a whole small body (listing, model_index.json) with retries. */
static GBytes *
http_get_bytes (Hub *hub, const char *url, const char *what, SoupMessage **out_msg,
                GError **error)
{
  for (guint attempt = 1;; attempt++) {
    g_autoptr(GError) e = NULL;
    g_autoptr(SoupMessage) msg = NULL;
    g_autoptr(GInputStream) in = http_open (hub, url, 0, &msg, &e);
    g_autoptr(GOutputStream) out = NULL;

    if (in && SOUP_STATUS_IS_SUCCESSFUL (soup_message_get_status (msg))) {
      out = g_memory_output_stream_new_resizable ();
      if (g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE
                                           | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                                  hub->cancellable, &e) >= 0) {
        if (out_msg)
          *out_msg = g_steal_pointer (&msg);
        return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
      }
    } else if (in) {
      g_input_stream_close (in, NULL, NULL);
      if (http_status_error (hub, msg, what, error))
        return NULL;
      g_set_error (&e, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NETWORK, "HTTP %u",
                   soup_message_get_status (msg));
    } else if (e->domain != TESSERA_HUB_ERROR && transport_error_is_fatal (e)) {
      if (g_error_matches (e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_propagate_error (error, g_steal_pointer (&e));
      else
        g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NETWORK,
                     "cannot reach %s: %s (is the network up?)", hub->endpoint, e->message);
      return NULL;
    } else if (e->domain == TESSERA_HUB_ERROR) {
      g_propagate_error (error, g_steal_pointer (&e));
      return NULL;
    }
    if (g_error_matches (e, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      g_propagate_error (error, g_steal_pointer (&e));
      return NULL;
    }
    if (attempt >= max_attempts (hub)) {
      g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NETWORK,
                   "%s: %s (gave up after %u tries)", what ? what : "listing", e->message,
                   attempt);
      return NULL;
    }
    if (!backoff (hub, attempt, what, e, error))
      return NULL;
  }
}

/* ---- listing ----------------------------------------------------------------------- */

/* The URL of the next page from a Link header (<url>; rel="next"), or NULL. */
static char *
link_next (SoupMessage *msg)
{
  const char *link = soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                   "Link");
  g_auto(GStrv) parts = NULL;

  if (!link)
    return NULL;
  parts = g_strsplit (link, ",", -1);
  for (char **p = parts; *p; p++) {
    const char *lt = strchr (*p, '<'), *gt = lt ? strchr (lt, '>') : NULL;
    if (lt && gt && strstr (gt, "rel=\"next\""))
      return g_strndup (lt + 1, gt - lt - 1);
  }
  return NULL;
}

static gboolean
parse_listing (GBytes *body, GPtrArray *files, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  gsize len;
  const char *data = g_bytes_get_data (body, &len);
  JsonArray *arr;

  if (!json_parser_load_from_data (parser, data ? data : "", (gssize) len, NULL)
      || !JSON_NODE_HOLDS_ARRAY (json_parser_get_root (parser))) {
    g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_PROTOCOL,
                 "the file listing is not a JSON array");
    return FALSE;
  }
  arr = json_node_get_array (json_parser_get_root (parser));
  for (guint i = 0; i < json_array_get_length (arr); i++) {
    JsonNode *n = json_array_get_element (arr, i);
    JsonObject *o = JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
    JsonObject *lfs;
    const char *path;
    TesseraHubFile *f;

    if (!o || g_strcmp0 (json_object_get_string_member_with_default (o, "type", ""), "file"))
      continue;
    path = json_object_get_string_member_with_default (o, "path", NULL);
    /* A path that could leave the folder is refused outright. */
    if (!path || !*path || path[0] == '/' || strstr (path, "..") || strchr (path, '\\')
        || g_str_has_suffix (path, ".incomplete")) {
      g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_PROTOCOL,
                   "the file listing holds a bad path: '%s'", path ? path : "(none)");
      return FALSE;
    }
    f = g_new0 (TesseraHubFile, 1);
    f->path = g_strdup (path);
    f->size = (guint64) json_object_get_int_member_with_default (o, "size", 0);
    lfs = json_object_has_member (o, "lfs") && JSON_NODE_HOLDS_OBJECT (json_object_get_member (o, "lfs"))
            ? json_object_get_object_member (o, "lfs")
            : NULL;
    if (lfs) {
      const char *oid = json_object_get_string_member_with_default (lfs, "oid", NULL);
      g_autofree char *quoted = oid ? g_strdup_printf ("\"%s\"", oid) : NULL;
      f->sha256 = etag_sha256 (quoted);
      if (json_object_has_member (lfs, "size"))
        f->size = (guint64) json_object_get_int_member (lfs, "size");
    }
    g_ptr_array_add (files, f);
  }
  return TRUE;
}

static GPtrArray *
list_repo (Hub *hub, GError **error)
{
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func ((GDestroyNotify) tessera_hub_file_free);
  g_autofree char *repo = quote_path (hub->repo);
  g_autofree char *rev = g_uri_escape_string (hub->revision, NULL, FALSE);
  g_autofree char *url = g_strdup_printf ("%s/api/models/%s/tree/%s?recursive=true",
                                          hub->endpoint, repo, rev);

  for (int page = 0; url && page < 1000; page++) {
    g_autofree char *url_base = g_strdup (url);
    g_autoptr(SoupMessage) msg = NULL;
    g_autoptr(GBytes) body = http_get_bytes (hub, url, NULL, &msg, error);
    if (!body || !parse_listing (body, files, error))
      return NULL;
    g_autofree char *next = link_next (msg);
    g_free (url);
    url = next ? g_uri_resolve_relative (url_base, next, G_URI_FLAGS_ENCODED, error) : NULL;
    if (next && !url)
      return NULL;
  }
  return g_steal_pointer (&files);
}

/* ---- state: what was verified ------------------------------------------------------ */

static void
state_load (Hub *hub)
{
  g_autoptr(GFile) f = g_file_get_child (hub->dir, STATE_FILE);
  g_autofree char *text = NULL;
  gsize len;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *root;

  hub->state = json_object_new ();
  if (!g_file_load_contents (f, NULL, &text, &len, NULL, NULL)
      || !json_parser_load_from_data (parser, text, (gssize) len, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return;
  root = json_node_get_object (json_parser_get_root (parser));
  if (json_object_has_member (root, "files")
      && JSON_NODE_HOLDS_OBJECT (json_object_get_member (root, "files"))) {
    json_object_unref (hub->state);
    hub->state = json_object_ref (json_object_get_object_member (root, "files"));
  }
  hub->state_commit = g_strdup (json_object_get_string_member_with_default (root, "commit", NULL));
  /* The repository a folder holds is kept in the state, checked by the caller. */
  g_object_set_data_full (G_OBJECT (hub->dir), "tessera-hub-repo",
                          g_strdup (json_object_get_string_member_with_default (root, "repo", NULL)),
                          g_free);
}

static gboolean
state_save (Hub *hub, GError **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonNode) files = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(GFile) f = g_file_get_child (hub->dir, STATE_FILE);
  g_autofree char *text = NULL;
  const char *commit = hub->commit ? hub->commit : hub->state_commit;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "repo");
  json_builder_add_string_value (b, hub->repo);
  json_builder_set_member_name (b, "endpoint");
  json_builder_add_string_value (b, hub->endpoint);
  json_builder_set_member_name (b, "variant");
  json_builder_add_string_value (b, tessera_hub_variant_to_string (hub->opts->variant));
  if (commit) {
    json_builder_set_member_name (b, "commit");
    json_builder_add_string_value (b, commit);
  }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_node_set_object (files, hub->state);
  json_object_set_member (json_node_get_object (root), "files", json_node_copy (files));
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, NULL);
  return g_file_replace_contents (f, text, strlen (text), NULL, FALSE, G_FILE_CREATE_NONE,
                                  NULL, NULL, error);
}

/* size and mtime (microseconds) of a file; FALSE when it is not a regular file. */
static gboolean
stat_file (GFile *f, guint64 *size, gint64 *mtime_us)
{
  g_autoptr(GFileInfo) info = g_file_query_info (f,
                                                 G_FILE_ATTRIBUTE_STANDARD_TYPE ","
                                                 G_FILE_ATTRIBUTE_STANDARD_SIZE ","
                                                 G_FILE_ATTRIBUTE_TIME_MODIFIED ","
                                                 G_FILE_ATTRIBUTE_TIME_MODIFIED_USEC,
                                                 G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);
  if (!info || g_file_info_get_file_type (info) != G_FILE_TYPE_REGULAR)
    return FALSE;
  *size = (guint64) g_file_info_get_size (info);
  if (mtime_us)
    *mtime_us = (gint64) g_file_info_get_attribute_uint64 (info, G_FILE_ATTRIBUTE_TIME_MODIFIED)
                  * G_USEC_PER_SEC
                + g_file_info_get_attribute_uint32 (info, G_FILE_ATTRIBUTE_TIME_MODIFIED_USEC);
  return TRUE;
}

static void
state_record (Hub *hub, const TesseraHubFile *file, GFile *f)
{
  JsonObject *o = json_object_new ();
  guint64 size;
  gint64 mtime;

  if (!stat_file (f, &size, &mtime)) {
    json_object_unref (o);
    return;
  }
  json_object_set_int_member (o, "size", (gint64) size);
  json_object_set_int_member (o, "mtime_us", mtime);
  if (file->sha256)
    json_object_set_string_member (o, "sha256", file->sha256);
  json_object_set_object_member (hub->state, file->path, o);
}

/* Whether the state says f was verified as `file` at its present size and mtime. */
static gboolean
state_verified (Hub *hub, const TesseraHubFile *file, guint64 size, gint64 mtime)
{
  JsonObject *o;

  if (!json_object_has_member (hub->state, file->path)
      || !JSON_NODE_HOLDS_OBJECT (json_object_get_member (hub->state, file->path)))
    return FALSE;
  o = json_object_get_object_member (hub->state, file->path);
  return (guint64) json_object_get_int_member_with_default (o, "size", -1) == size
         && json_object_get_int_member_with_default (o, "mtime_us", -1) == mtime
         && g_strcmp0 (json_object_get_string_member_with_default (o, "sha256", NULL),
                       file->sha256) == 0;
}

/* ---- files ------------------------------------------------------------------------- */

/* The sha256 of a whole file, feeding sum (which the caller owns) as it reads. */
static gboolean
hash_file (Hub *hub, GFile *f, GChecksum *sum, guint64 limit, GError **error)
{
  g_autoptr(GFileInputStream) in = g_file_read (f, hub->cancellable, error);
  g_autofree guchar *buf = g_malloc (BUFFER_SIZE);
  guint64 done = 0;

  if (!in)
    return FALSE;
  while (done < limit) {
    gssize n = g_input_stream_read (G_INPUT_STREAM (in), buf, MIN ((guint64) BUFFER_SIZE,
                                                                   limit - done),
                                    hub->cancellable, error);
    if (n < 0)
      return FALSE;
    if (n == 0)
      break;
    g_checksum_update (sum, buf, n);
    done += (guint64) n;
  }
  return TRUE;
}

/* Whether file is already in place: the right size, and for LFS files the right sha256
 * (remembered, or hashed now and then remembered). */
static gboolean
file_in_place (Hub *hub, const TesseraHubFile *file, GFile *final, GError **error)
{
  guint64 size;
  gint64 mtime;
  g_autoptr(GChecksum) sum = NULL;

  if (!stat_file (final, &size, &mtime) || size != file->size)
    return FALSE;
  if (!file->sha256 || state_verified (hub, file, size, mtime)) {
    if (!file->sha256)
      state_record (hub, file, final);
    return TRUE;
  }
  hub->p.file_done = 0;
  report (hub, TESSERA_HUB_EVENT_VERIFYING, NULL);
  sum = g_checksum_new (G_CHECKSUM_SHA256);
  if (!hash_file (hub, final, sum, G_MAXUINT64, error))
    return FALSE;
  if (strcmp (g_checksum_get_string (sum), file->sha256) != 0)
    return FALSE;
  state_record (hub, file, final);
  return TRUE;
}

static gboolean
truncate_file (Hub *hub, GFile *f, GError **error)
{
  g_autoptr(GFileOutputStream) out = g_file_replace (f, NULL, FALSE, G_FILE_CREATE_NONE,
                                                     hub->cancellable, error);
  return out && g_output_stream_close (G_OUTPUT_STREAM (out), hub->cancellable, error);
}

/* Where one transfer attempt ended. */
typedef enum {
  XFER_DONE,      /* the .incomplete file holds every byte */
  XFER_RETRY,     /* a transport failure worth another try (error set) */
  XFER_RESTART,   /* the server ignored or refused the range: start the file over */
  XFER_FAIL,      /* error set, not retried */
} XferResult;

/* One GET of file from *have onwards, appended to part and hashed into sum. */
static XferResult
transfer (Hub *hub, const TesseraHubFile *file, GFile *part, GChecksum *sum, guint64 *have,
          GError **error)
{
  g_autofree char *url = resolve_url (hub, file->path);
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GFileOutputStream) out = NULL;
  g_autofree guchar *buf = NULL;
  g_autoptr(GError) e = NULL;
  guint status;

  in = http_open (hub, url, *have, &msg, &e);
  if (!in) {
    if (e->domain == TESSERA_HUB_ERROR || g_error_matches (e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      goto fail;
    if (transport_error_is_fatal (e)) {
      g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NETWORK,
                   "cannot reach %s: %s (is the network up?)", hub->endpoint, e->message);
      return XFER_FAIL;
    }
    g_propagate_error (error, g_steal_pointer (&e));
    return XFER_RETRY;
  }
  status = soup_message_get_status (msg);
  if (status == SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE) {
    g_input_stream_close (in, NULL, NULL);
    /* Already whole (a run killed between the last byte and the rename): check it. */
    return *have == file->size ? XFER_DONE : XFER_RESTART;
  }
  if (!SOUP_STATUS_IS_SUCCESSFUL (status)) {
    g_input_stream_close (in, NULL, NULL);
    if (http_status_error (hub, msg, file->path, error))
      return XFER_FAIL;
    g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NETWORK, "HTTP %u %s", status,
                 soup_message_get_reason_phrase (msg));
    return XFER_RETRY;
  }
  if (*have > 0) {
    goffset start = -1, end, total;
    if (status != SOUP_STATUS_PARTIAL_CONTENT
        || !soup_message_headers_get_content_range (soup_message_get_response_headers (msg),
                                                    &start, &end, &total)
        || (guint64) start != *have) {
      g_input_stream_close (in, NULL, NULL);
      return XFER_RESTART;
    }
  }
  /* The hub's word on LFS files, where the listing had none. */
  if (!file->sha256 && hub->linked_etag)
    ((TesseraHubFile *) file)->sha256 = g_strdup (hub->linked_etag);
  if (hub->linked_size && hub->linked_size != file->size) {
    g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_PROTOCOL,
                 "%s: the listing says %" G_GUINT64_FORMAT " bytes, the hub serves %"
                 G_GUINT64_FORMAT " (the repository changed? run again)", file->path, file->size,
                 hub->linked_size);
    return XFER_FAIL;
  }

  out = g_file_append_to (part, G_FILE_CREATE_NONE, hub->cancellable, error);
  if (!out)
    return XFER_FAIL;
  buf = g_malloc (BUFFER_SIZE);
  for (;;) {
    gssize n = g_input_stream_read (in, buf, BUFFER_SIZE, hub->cancellable, &e);
    if (n < 0)
      break;
    if (n == 0)
      break;
    if (*have + (guint64) n > file->size) {
      g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_CHECKSUM,
                   "%s: the hub sent more than the %" G_GUINT64_FORMAT " bytes listed",
                   file->path, file->size);
      g_output_stream_close (G_OUTPUT_STREAM (out), NULL, NULL);
      return XFER_RESTART;
    }
    if (!g_output_stream_write_all (G_OUTPUT_STREAM (out), buf, (gsize) n, NULL,
                                    hub->cancellable, error)) {
      g_output_stream_close (G_OUTPUT_STREAM (out), NULL, NULL);
      return XFER_FAIL;
    }
    g_checksum_update (sum, buf, n);
    *have += (guint64) n;
    hub->bytes_fetched += (guint64) n;
    hub->p.file_done = *have;
    hub->p.total_done += (guint64) n;
    report (hub, TESSERA_HUB_EVENT_PROGRESS, NULL);
  }
  g_input_stream_close (in, NULL, NULL);
  if (!g_output_stream_close (G_OUTPUT_STREAM (out), NULL, e ? NULL : error))
    return XFER_FAIL;
  if (e) {
    if (g_error_matches (e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      goto fail;
    g_propagate_error (error, g_steal_pointer (&e));
    return XFER_RETRY;
  }
  if (*have < file->size) {
    g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NETWORK,
                 "the connection closed after %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                 " bytes", *have, file->size);
    return XFER_RETRY;
  }
  return XFER_DONE;

fail:
  g_propagate_error (error, g_steal_pointer (&e));
  return XFER_FAIL;
}

static gboolean
sync_file (GFile *f, GError **error)
{
  g_autofree char *path = g_file_get_path (f);
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd < 0 || fsync (fd) != 0) {
    int saved = errno;
    if (fd >= 0)
      close (fd);
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s: %s", path,
                 g_strerror (saved));
    return FALSE;
  }
  close (fd);
  return TRUE;
}

/* Fetches file into place: PATH.incomplete (resumed where it exists), checked, renamed. */
static gboolean
fetch_file (Hub *hub, const TesseraHubFile *file, GFile *final, GError **error)
{
  g_autofree char *part_name = g_strconcat (g_file_peek_path (final), ".incomplete", NULL);
  g_autoptr(GFile) part = g_file_new_for_path (part_name);
  g_autoptr(GFile) parent = g_file_get_parent (final);
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  guint64 have = 0, start_total = hub->p.total_done;
  guint failures = 0, restarts = 0;
  g_autoptr(GError) e = NULL;

  if (!g_file_make_directory_with_parents (parent, hub->cancellable, &e)
      && !g_error_matches (e, G_IO_ERROR, G_IO_ERROR_EXISTS)) {
    g_propagate_error (error, g_steal_pointer (&e));
    return FALSE;
  }
  g_clear_error (&e);
  /* Resume: the bytes already there are hashed first. */
  if (stat_file (part, &have, NULL)) {
    if (have > file->size) {
      if (!truncate_file (hub, part, error))
        return FALSE;
      have = 0;
    } else if (have > 0 && !hash_file (hub, part, sum, have, error)) {
      return FALSE;
    }
  }
  hub->p.file_done = have;
  hub->p.total_done = start_total + have;
  report (hub, TESSERA_HUB_EVENT_FILE_START, NULL);

  for (;;) {
    guint64 before = have;
    XferResult r = transfer (hub, file, part, sum, &have, &e);

    if (r == XFER_DONE) {
      const char *got = g_checksum_get_string (sum);
      if (have == file->size && (!file->sha256 || strcmp (got, file->sha256) == 0))
        break;
      /* A wrong file: discarded, and fetched once more from the start before giving up
       * (the bytes may have been damaged on the way). */
      if (restarts++ >= 1) {
        g_file_delete (part, NULL, NULL);
        if (have != file->size)
          g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_CHECKSUM,
                       "%s: got %" G_GUINT64_FORMAT " bytes, the listing says %" G_GUINT64_FORMAT
                       " (the download was discarded)", file->path, have, file->size);
        else
          g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_CHECKSUM,
                       "%s: sha256 mismatch: expected %s, got %s (the download was discarded)",
                       file->path, file->sha256, got);
        return FALSE;
      }
      r = XFER_RESTART;
    }
    if (r == XFER_FAIL) {
      g_propagate_error (error, g_steal_pointer (&e));
      return FALSE;
    }
    if (r == XFER_RESTART) {
      g_clear_error (&e);
      if (!truncate_file (hub, part, error))
        return FALSE;
      hub->p.total_done -= have;
      have = 0;
      g_checksum_reset (sum);
      hub->p.file_done = 0;
      if (restarts > 2) {
        g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_PROTOCOL,
                     "%s: the server keeps refusing to resume", file->path);
        return FALSE;
      }
      restarts++;
      continue;
    }
    /* XFER_RETRY: a try that moved the file forward starts the count over. */
    failures = have > before ? 1 : failures + 1;
    if (failures >= max_attempts (hub)) {
      g_prefix_error (&e, "%s: ", file->path);
      g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NETWORK,
                   "%s (gave up after %u tries; run again to resume from %" G_GUINT64_FORMAT
                   " bytes)", e->message, failures, have);
      return FALSE;
    }
    if (have == before && !backoff (hub, failures, file->path, e, error))
      return FALSE;
    if (have > before) {
      g_autofree char *msg = g_strdup_printf ("%s: %s; resuming at %" G_GUINT64_FORMAT " bytes",
                                              file->path, e->message, have);
      report (hub, TESSERA_HUB_EVENT_RETRY, msg);
    }
    g_clear_error (&e);
  }

  if (!sync_file (part, error)
      || !g_file_move (part, final, G_FILE_COPY_OVERWRITE | G_FILE_COPY_NOFOLLOW_SYMLINKS,
                       hub->cancellable, NULL, NULL, error))
    return FALSE;
  state_record (hub, file, final);
  hub->n_fetched++;
  report (hub, TESSERA_HUB_EVENT_FILE_DONE, NULL);
  return TRUE;
}

/* Writes bytes fetched earlier (model_index.json) through PATH.incomplete. */
static gboolean
write_small_file (Hub *hub, const TesseraHubFile *file, GFile *final, GBytes *bytes,
                  GError **error)
{
  g_autofree char *part_name = g_strconcat (g_file_peek_path (final), ".incomplete", NULL);
  g_autoptr(GFile) part = g_file_new_for_path (part_name);
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);

  if (!g_file_replace_contents (part, data ? data : "", len, NULL, FALSE, G_FILE_CREATE_NONE,
                                NULL, hub->cancellable, error)
      || !g_file_move (part, final, G_FILE_COPY_OVERWRITE | G_FILE_COPY_NOFOLLOW_SYMLINKS,
                       hub->cancellable, NULL, NULL, error))
    return FALSE;
  state_record (hub, file, final);
  hub->n_fetched++;
  hub->bytes_fetched += len;
  return TRUE;
}

/* ---- disk space -------------------------------------------------------------------- */

static gboolean
check_space (Hub *hub, GPtrArray *chosen, GError **error)
{
  guint64 need = 0, free_bytes;
  g_autoptr(GFileInfo) info = NULL;
  g_autofree char *need_s = NULL, *free_s = NULL;

  for (guint i = 0; i < chosen->len; i++) {
    const TesseraHubFile *file = g_ptr_array_index (chosen, i);
    g_autoptr(GFile) final = g_file_resolve_relative_path (hub->dir, file->path);
    g_autofree char *part_name = g_strconcat (g_file_peek_path (final), ".incomplete", NULL);
    g_autoptr(GFile) part = g_file_new_for_path (part_name);
    guint64 size;

    if (stat_file (final, &size, NULL) && size == file->size)
      continue;
    if (stat_file (part, &size, NULL) && size <= file->size)
      need += file->size - size;
    else
      need += file->size;
  }
  info = g_file_query_filesystem_info (hub->dir, G_FILE_ATTRIBUTE_FILESYSTEM_FREE,
                                       hub->cancellable, NULL);
  if (!info || !g_file_info_has_attribute (info, G_FILE_ATTRIBUTE_FILESYSTEM_FREE))
    return TRUE; /* unknown: the writes will say */
  free_bytes = g_file_info_get_attribute_uint64 (info, G_FILE_ATTRIBUTE_FILESYSTEM_FREE);
  if (need <= free_bytes)
    return TRUE;
  need_s = g_format_size (need);
  free_s = g_format_size (free_bytes);
  g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NO_SPACE,
               "not enough disk space in %s: the download needs %s more, %s is free (free some "
               "space or choose another folder)", g_file_peek_path (hub->dir), need_s, free_s);
  return FALSE;
}

/* ---- the download ------------------------------------------------------------------ */

/* huggingface_hub's token: $HF_TOKEN, else the file it saves at login. */
static char *
find_token (void)
{
  const char *env = g_getenv ("HF_TOKEN");
  g_autofree char *path = NULL, *text = NULL;

  if (env && *env)
    return g_strstrip (g_strdup (env));
  if (g_getenv ("HF_TOKEN_PATH"))
    path = g_strdup (g_getenv ("HF_TOKEN_PATH"));
  else if (g_getenv ("HF_HOME"))
    path = g_build_filename (g_getenv ("HF_HOME"), "token", NULL);
  else
    path = g_build_filename (g_get_home_dir (), ".cache", "huggingface", "token", NULL);
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  g_strstrip (text);
  return *text ? g_steal_pointer (&text) : NULL;
}

static gboolean
valid_repo_id (const char *id)
{
  const char *slash = strchr (id, '/');

  if (!slash || slash == id || !slash[1] || strchr (slash + 1, '/') || strstr (id, ".."))
    return FALSE;
  for (const char *c = id; *c; c++)
    if (!g_ascii_isalnum (*c) && !strchr ("-_./", *c))
      return FALSE;
  return TRUE;
}

static gboolean
download (Hub *hub, TesseraHubResult *result, GError **error)
{
  g_autoptr(GPtrArray) listing = NULL;
  g_autoptr(GPtrArray) chosen = NULL;
  g_autoptr(GBytes) index_bytes = NULL;
  g_autoptr(GFile) index_file = g_file_get_child (hub->dir, "model_index.json");
  g_autoptr(GError) e = NULL;
  g_auto(GStrv) components = NULL;
  const TesseraHubFile *index_entry = NULL;
  const char *held;
  guint64 size;
  gsize len;
  const char *data;

  if (!g_file_make_directory_with_parents (hub->dir, hub->cancellable, &e)
      && !g_error_matches (e, G_IO_ERROR, G_IO_ERROR_EXISTS)) {
    g_propagate_error (error, g_steal_pointer (&e));
    return FALSE;
  }
  g_clear_error (&e);
  state_load (hub);
  held = g_object_get_data (G_OBJECT (hub->dir), "tessera-hub-repo");
  if (held && strcmp (held, hub->repo) != 0) {
    g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_FOLDER,
                 "%s holds %s, not %s: choose another folder", g_file_peek_path (hub->dir), held,
                 hub->repo);
    return FALSE;
  }

  listing = list_repo (hub, error);
  if (!listing)
    return FALSE;
  for (guint i = 0; i < listing->len; i++)
    if (strcmp (((TesseraHubFile *) g_ptr_array_index (listing, i))->path, "model_index.json")
        == 0)
      index_entry = g_ptr_array_index (listing, i);
  if (!index_entry) {
    g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NOT_A_MODEL,
                 "%s has no model_index.json: Tessera reads diffusers pipeline folders",
                 hub->repo);
    return FALSE;
  }
  /* model_index.json names the components. It is read from the folder when it is there at
   * the listed size, else fetched into memory now and written last. */
  if (stat_file (index_file, &size, NULL) && size == index_entry->size) {
    g_autofree char *text = NULL;
    if (!g_file_load_contents (index_file, hub->cancellable, &text, &len, NULL, error))
      return FALSE;
    index_bytes = g_bytes_new_take (g_steal_pointer (&text), len);
  } else {
    g_autofree char *url = resolve_url (hub, "model_index.json");
    index_bytes = http_get_bytes (hub, url, "model_index.json", NULL, error);
    if (!index_bytes)
      return FALSE;
    if (hub->commit) {
      g_free (hub->revision);
      hub->revision = g_strdup (hub->commit);
    }
  }
  data = g_bytes_get_data (index_bytes, &len);
  components = tessera_hub_components_from_model_index (data ? data : "", len, &e);
  if (!components) {
    g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NOT_A_MODEL,
                 "%s: model_index.json: %s", hub->repo, e->message);
    return FALSE;
  }

  chosen = tessera_hub_select_files (listing, (const char *const *) components,
                                     hub->opts->variant);
  hub->p.n_files = chosen->len;
  for (guint i = 0; i < chosen->len; i++)
    hub->p.total_size += ((TesseraHubFile *) g_ptr_array_index (chosen, i))->size;
  report (hub, TESSERA_HUB_EVENT_LISTED, NULL);
  if (!check_space (hub, chosen, error))
    return FALSE;

  for (guint i = 0; i < chosen->len; i++) {
    const TesseraHubFile *file = g_ptr_array_index (chosen, i);
    g_autoptr(GFile) final = g_file_resolve_relative_path (hub->dir, file->path);
    gboolean ok;

    hub->p.path = file->path;
    hub->p.file_index = i + 1;
    hub->p.file_size = file->size;
    hub->p.file_done = 0;
    if (file == index_entry) {
      if (stat_file (index_file, &size, NULL) && size == file->size) {
        state_record (hub, file, index_file);
        hub->p.total_done += file->size;
        hub->p.file_done = file->size;
        report (hub, TESSERA_HUB_EVENT_FILE_PRESENT, NULL);
        continue;
      }
      ok = write_small_file (hub, file, index_file, index_bytes, error);
      hub->p.total_done += file->size;
      hub->p.file_done = file->size;
      if (ok)
        report (hub, TESSERA_HUB_EVENT_FILE_DONE, NULL);
    } else if (file_in_place (hub, file, final, &e)) {
      hub->p.total_done += file->size;
      hub->p.file_done = file->size;
      report (hub, TESSERA_HUB_EVENT_FILE_PRESENT, NULL);
      ok = TRUE;
    } else if (e) {
      g_propagate_error (error, g_steal_pointer (&e));
      ok = FALSE;
    } else {
      ok = fetch_file (hub, file, final, error);
    }
    /* Each finished file is remembered at once, so a kill keeps the verifications. */
    if (!ok) {
      state_save (hub, NULL);
      return FALSE;
    }
    if (!state_save (hub, error))
      return FALSE;
  }

  if (result) {
    result->commit = g_strdup (hub->commit ? hub->commit : hub->state_commit);
    result->n_files = chosen->len;
    result->n_fetched = hub->n_fetched;
    result->total_size = hub->p.total_size;
    result->bytes_fetched = hub->bytes_fetched;
  }
  return TRUE;
}

gboolean
tessera_hub_download (const char *repo_id, const char *dir, const TesseraHubOptions *options,
                      TesseraHubResult *result, GCancellable *cancellable, GError **error)
{
  static const TesseraHubOptions defaults = { .endpoint = NULL };
  Hub hub = { .opts = options ? options : &defaults, .cancellable = cancellable };
  const char *endpoint;
  gboolean ok;

  g_return_val_if_fail (repo_id != NULL, FALSE);
  g_return_val_if_fail (dir != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!valid_repo_id (repo_id)) {
    g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NOT_FOUND,
                 "'%s' is not a repository id (ORG/NAME, like MeissonFlow/Meissonic)", repo_id);
    return FALSE;
  }
  if (result)
    *result = (TesseraHubResult) { .commit = NULL };
  endpoint = hub.opts->endpoint ? hub.opts->endpoint : g_getenv ("HF_ENDPOINT");
  if (!endpoint || !*endpoint)
    endpoint = "https://huggingface.co";
  hub.endpoint = g_strdup (endpoint);
  while (g_str_has_suffix (hub.endpoint, "/"))
    hub.endpoint[strlen (hub.endpoint) - 1] = '\0';
  hub.endpoint_host = host_of (hub.endpoint);
  if (!hub.endpoint_host) {
    g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NETWORK,
                 "bad endpoint '%s' (HF_ENDPOINT must be a URL like https://huggingface.co)",
                 endpoint);
    hub_clear (&hub);
    return FALSE;
  }
  hub.token = hub.opts->token ? g_strdup (hub.opts->token) : find_token ();
  if (hub.token && !*hub.token)
    g_clear_pointer (&hub.token, g_free);
  hub.repo = g_strdup (repo_id);
  hub.revision = g_strdup (hub.opts->revision ? hub.opts->revision : "main");
  hub.dir = g_file_new_for_path (dir);
  hub.p.eta_s = -1;
  /* A read that stalls for a minute counts as a dropped connection. No content decoding:
   * byte ranges must mean bytes of the file. */
  hub.session = soup_session_new_with_options ("timeout", 60, "idle-timeout", 60,
                                               "user-agent", "tessera/" PACKAGE_VERSION " ",
                                               NULL);
  soup_session_remove_feature_by_type (hub.session, SOUP_TYPE_CONTENT_DECODER);

  ok = download (&hub, result, error);
  hub_clear (&hub);
  return ok;
}
