/* SPDX-License-Identifier: MIT
 *
 * tessera-engine-types.h — the app's bridge to the engine's plain C types: g_autoptr
 * cleanup for ts_model and ts_image (the engine stays GLib-free), the TESSERA_ENGINE_ERROR
 * domain, the one function that turns engine status codes into GErrors, and the engine log
 * forwarding. Everything in app/ that touches tessera.h goes through here or the worker.
 */
#pragma once

#include <gio/gio.h>

#include "tessera.h"

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ts_model, ts_model_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ts_image, ts_image_free)

typedef enum {
  TESSERA_ENGINE_ERROR_FAILED,
  TESSERA_ENGINE_ERROR_INVALID_ARG,
  TESSERA_ENGINE_ERROR_IO,
  TESSERA_ENGINE_ERROR_FORMAT,
  TESSERA_ENGINE_ERROR_NOMEM,
  TESSERA_ENGINE_ERROR_UNSUPPORTED,
  TESSERA_ENGINE_ERROR_NOT_FOUND,
  TESSERA_ENGINE_ERROR_DEVICE,
} TesseraEngineError;

#define TESSERA_ENGINE_ERROR (tessera_engine_error_quark ())
GQuark tessera_engine_error_quark (void);

/* Sets *error from an engine error: TS_ERR_CANCELLED becomes G_IO_ERROR_CANCELLED, every
 * other code a TESSERA_ENGINE_ERROR with the engine's message. Always returns FALSE so that
 * callers can `return tessera_engine_error_from_ts (&err, error);`. */
gboolean tessera_engine_error_from_ts (const ts_error *e, GError **error);

/* Forwards engine log messages to GLib's log with the domain "Tessera-engine". Call once,
 * before the engine runs. */
void tessera_engine_init_logging (void);

/* Deep copies of an engine metadata struct: the strings and the trajectory arrays are
 * g_strdup'd / g_memdup2'd into a struct the caller clears with
 * tessera_image_meta_free_strings. */
void tessera_image_meta_copy (ts_image_meta *dst, const ts_image_meta *src);
void tessera_image_meta_free_strings (ts_image_meta *meta);

/* Steering records (ts_image_steer): copies n of them into dst with their strings
 * g_strdup'd; frees the strings of one (a GArray clear function) or of n. */
void tessera_steer_records_copy (ts_image_steer *dst, const ts_image_steer *src, guint n);
void tessera_steer_record_clear (gpointer record);
void tessera_steer_records_clear (ts_image_steer *records, guint n);

/* A heap copy (g_malloc'd strings) as a boxed type, for GObject properties and GTasks. */
typedef ts_image_meta TesseraImageMeta;
#define TESSERA_TYPE_IMAGE_META (tessera_image_meta_get_type ())
GType tessera_image_meta_get_type (void) G_GNUC_CONST;
TesseraImageMeta *tessera_image_meta_dup (const ts_image_meta *meta);

/* "sha256:<hex>" of a file's bytes (what the CLI records as a source hash), or NULL when
 * it cannot be read. Reads the whole file: for images, a few milliseconds. */
char *tessera_file_sha256 (GFile *file);
void tessera_image_meta_free (TesseraImageMeta *meta);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TesseraImageMeta, tessera_image_meta_free)

G_END_DECLS
