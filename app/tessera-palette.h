/* SPDX-License-Identifier: MIT
 *
 * tessera-palette.h — the live preview's colour table: one RGB colour per VQ code of the
 * loaded model, worked out by VQ-decoding the codes in chunks, and its on-disk cache
 * under $XDG_CACHE_HOME/tessera/palettes. TesseraWorker runs these on its engine thread
 * (the PALETTE job, which yields between chunks); tessera-preview.c paints revealed tokens
 * with the result. Plain functions without shared state: the model-touching one follows
 * the model's rule (one thread at a time), the rest may run on any thread.
 */
#pragma once

#include <gio/gio.h>

#include "tessera-engine-types.h"

G_BEGIN_DECLS

/* Codes per decode: TESSERA_PALETTE_CHUNK x TESSERA_PALETTE_CHUNK of them side by side in
 * one grid. Between chunks the worker yields to other jobs. */
#define TESSERA_PALETTE_CHUNK 8

/* Where the table of the model in model_dir is cached: keyed by the folder's canonical
 * path and the names, mtimes and sizes of its vqvae/ files. */
char *tessera_palette_cache_path (const char *model_dir, int n_codes);
/* The cached table (n_codes * 3 bytes), or NULL when missing or stale. */
GBytes *tessera_palette_read_cache (const char *path, int n_codes);
/* Writes the table; failures are only logged (the table is recomputed next time). */
void tessera_palette_write_cache (const char *path, GBytes *palette);
/* Fills rgb (n_codes * 3 bytes) with a grey per code, for codes not decoded yet. */
void tessera_palette_fill_fallback (guint8 *rgb, int n_codes);
/* VQ-decodes the codes [first, first + count) together and stores their colours in rgb. */
gboolean tessera_palette_decode_chunk (ts_model *model, guint8 *rgb, int first, int count,
                                       GError **error);

G_END_DECLS
