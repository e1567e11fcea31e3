/* SPDX-License-Identifier: MIT
 *
 * ts-model-files — model folder → configs + opened, checked checkpoints; and the public
 * inspection API of tessera.h (ts_model_info_*) built on it. See ts-model-files.h.
 */
#include "pipeline/ts-model-files.h"

#include "core/ts-common.h"
#include "core/ts-file.h"
#include "stages/ts-transformer.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LISTED_PROBLEMS 20
#define MAX_LISTED_EXTRAS 10

/* The three networks and their checkpoint base names. */
static const struct {
  ts_component component;
  const char *config;
  const char *base;
} networks[] = {
  { TS_COMPONENT_TRANSFORMER, "config.json", "diffusion_pytorch_model" },
  { TS_COMPONENT_VQVAE, "config.json", "diffusion_pytorch_model" },
  { TS_COMPONENT_TEXT_ENCODER, "config.json", "model" },
};
#define N_NETWORKS (sizeof networks / sizeof networks[0])

struct ts_model_files {
  char *dir;
  ts_load_flags flags;
  ts_model_index index;
  ts_transformer_config transformer;
  ts_vq_config vq;
  ts_clip_text_config clip;
  ts_scheduler_config scheduler;
  char *component_dirs[TS_COMPONENT_COUNT];
  char *vocab_path;
  char *merges_path;
  ts_tensor_list expected[TS_COMPONENT_COUNT];
  ts_st_set *sets[TS_COMPONENT_COUNT];
  ts_tokenizer *tokenizer; /* loaded and checked with the weights; the pipeline steals it */
};

/* ---- small file helpers ---- */

static char *
path_join (const char *a, const char *b, ts_error *err)
{
  size_t n = strlen (a) + 1 + strlen (b) + 1;
  char *p = malloc (n);

  if (!p) {
    ts_error_set (err, TS_ERR_NOMEM, "out of memory");
    return NULL;
  }
  snprintf (p, n, "%s/%s", a, b);
  return p;
}

static bool
is_file (const char *path)
{
  struct stat sb;
  return stat (path, &sb) == 0 && S_ISREG (sb.st_mode);
}

/* A file the model needs: "missing" only when nothing is at path; a directory, a FIFO, a
 * dangling link, a link loop or an unreadable file in its place is named as what it is. */
static ts_status
require_file (const char *path, const char *what, ts_error *err)
{
  if (ts_file_absent (path))
    return ts_error_set (err, TS_ERR_NOT_FOUND, "%s: missing %s", what, path);
  return ts_file_check_regular (path, what, err);
}

static bool
is_dir (const char *path)
{
  struct stat sb;
  return stat (path, &sb) == 0 && S_ISDIR (sb.st_mode);
}

/* Whether anything is at dir/name. Not only regular files: a FIFO or a directory under a
 * weight file's name is then opened and refused by name (ts-file), rather than the
 * weights being called missing. */
static bool
file_in_dir (const char *dir, const char *name)
{
  char path[4096];
  int n = snprintf (path, sizeof path, "%s/%s", dir, name);
  return n > 0 && (size_t) n < sizeof path && !ts_file_absent (path);
}

/* Whether `dir` holds the checkpoint `base` (single file or sharded index), for the plain
 * files (variant NULL) or a variant. Mirrors the names ts_st_set_open looks for. */
static bool
has_checkpoint (const char *dir, const char *base, const char *variant)
{
  char a[512], b[512], c[512];

  if (!variant) {
    snprintf (a, sizeof a, "%s.safetensors", base);
    snprintf (b, sizeof b, "%s.safetensors.index.json", base);
    return file_in_dir (dir, a) || file_in_dir (dir, b);
  }
  snprintf (a, sizeof a, "%s.%s.safetensors", base, variant);
  snprintf (b, sizeof b, "%s.safetensors.index.%s.json", base, variant);
  snprintf (c, sizeof c, "%s.%s.safetensors.index.json", base, variant);
  return file_in_dir (dir, a) || file_in_dir (dir, b) || file_in_dir (dir, c);
}

/* ---- tensor checks ---- */

static bool
is_float_dtype (ts_dtype dtype)
{
  return dtype == TS_DTYPE_F32 || dtype == TS_DTYPE_F16 || dtype == TS_DTYPE_BF16;
}

static bool
same_shape (const ts_tensor_spec *spec, const ts_st_tensor *t)
{
  if (spec->n_dims != t->n_dims)
    return false;
  for (int d = 0; d < spec->n_dims; d++)
    if (spec->shape[d] != t->shape[d])
      return false;
  return true;
}

/* Tensors some exporters keep that no module uses: logged quietly. */
static bool
is_known_unused (const char *name)
{
  /* A non-persistent buffer in transformers >= 4.31; older exports still carry it. */
  return strcmp (name, "text_model.embeddings.position_ids") == 0;
}

/* Collects problem lines into one message that fits TS_ERROR_MESSAGE_MAX. */
typedef struct {
  char items[TS_ERROR_MESSAGE_MAX];
  size_t used;
  size_t budget; /* bytes available for items */
  int n_listed;
  int n_more;
} problem_list;

static void
problem_add (problem_list *p, const char *fmt, ...) TS_PRINTF (2, 3);

static void
problem_add (problem_list *p, const char *fmt, ...)
{
  char item[640];
  size_t len;
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (item, sizeof item, fmt, ap);
  va_end (ap);
  len = strlen (item) + (p->n_listed ? 2 : 0);
  if (p->n_listed >= MAX_LISTED_PROBLEMS || p->used + len >= p->budget) {
    p->n_more++;
    return;
  }
  p->used += (size_t) snprintf (p->items + p->used, sizeof p->items - p->used, "%s%s",
                                p->n_listed ? "; " : "", item);
  p->n_listed++;
}

ts_status
ts_model_files_check_tensors (const char *component, const ts_tensor_list *expected,
                              const ts_st_set *set, ts_error *err)
{
  problem_list p = { .used = 0 };
  char where[1024], want[96], got[96], tail[48] = "";
  int n_missing = 0, n_wrong = 0, n_extra = 0, n_problems;
  size_t n_files = ts_st_set_n_files (set);

  if (n_files == 1)
    snprintf (where, sizeof where, "%s", ts_st_set_file (set, 0));
  else
    snprintf (where, sizeof where, "%s and %zu more shard%s",
              n_files ? ts_st_set_file (set, 0) : "?", n_files ? n_files - 1 : 0,
              n_files == 2 ? "" : "s");
  /* Room for "COMPONENT: N problems in WHERE: " and "; ... and N more". */
  p.budget = sizeof p.items - strlen (component) - strlen (where) - 64;
  if (p.budget > sizeof p.items || p.budget < 256)
    p.budget = 256;

  for (size_t i = 0; i < expected->n; i++) {
    const ts_tensor_spec *spec = &expected->items[i];
    const ts_st_tensor *t = ts_st_set_find (set, spec->name);

    ts_tensor_shape_format (spec->shape, spec->n_dims, want, sizeof want);
    if (!t) {
      n_missing++;
      problem_add (&p, "missing tensor '%s' %s", spec->name, want);
    } else if (!same_shape (spec, t)) {
      n_wrong++;
      problem_add (&p, "tensor '%s': expected %s, got %s", spec->name, want,
                   ts_tensor_shape_format (t->shape, t->n_dims, got, sizeof got));
    } else if (!is_float_dtype (t->dtype)) {
      n_wrong++;
      problem_add (&p, "tensor '%s': dtype %s, expected F32, F16 or BF16", spec->name,
                   ts_dtype_name (t->dtype) ? ts_dtype_name (t->dtype) : "?");
    }
  }

  for (size_t i = 0; i < ts_st_set_n_tensors (set); i++) {
    const ts_st_tensor *t = ts_st_set_tensor (set, i);

    if (ts_tensor_list_find (expected, t->name))
      continue;
    if (is_known_unused (t->name)) {
      TS_LOG_I ("model: %s: ignoring unused tensor '%s' in %s", component, t->name, t->file);
      continue;
    }
    if (n_extra < MAX_LISTED_EXTRAS)
      TS_LOG_W ("model: %s: tensor '%s' in %s is not part of the model; ignored", component,
                t->name, t->file);
    n_extra++;
  }
  if (n_extra > MAX_LISTED_EXTRAS)
    TS_LOG_W ("model: %s: %d more tensors in %s are not part of the model; ignored",
              component, n_extra - MAX_LISTED_EXTRAS, where);

  n_problems = n_missing + n_wrong;
  if (n_problems == 0)
    return TS_OK;
  if (p.n_more)
    snprintf (tail, sizeof tail, "; \xe2\x80\xa6 and %d more", p.n_more);
  return ts_error_set (err, n_wrong ? TS_ERR_FORMAT : TS_ERR_NOT_FOUND,
                       "%s: %d problem%s in %s: %s%s", component, n_problems,
                       n_problems == 1 ? "" : "s", where, p.items, tail);
}

/* ---- opening a folder ---- */

static ts_status
open_component_dir (ts_model_files *mf, ts_component c, ts_error *err)
{
  const char *name = ts_component_name (c);
  const ts_model_index_entry *entry = &mf->index.components[c];

  mf->component_dirs[c] = path_join (mf->dir, name, err);
  if (!mf->component_dirs[c])
    return TS_ERR_NOMEM;
  if (!is_dir (mf->component_dirs[c]) && !ts_file_absent (mf->component_dirs[c])) {
    struct stat sb;
    return ts_error_set (err, TS_ERR_IO, "%s: %s is %s, not a folder", name,
                         mf->component_dirs[c],
                         stat (mf->component_dirs[c], &sb) == 0 ? ts_file_kind_name (sb.st_mode)
                                                                : "a broken symbolic link");
  }
  if (!is_dir (mf->component_dirs[c]))
    return ts_error_set (err, TS_ERR_NOT_FOUND,
                         "%s: folder %s not found (model_index.json lists it as "
                         "[\"%s\", \"%s\"])",
                         name, mf->component_dirs[c], entry->library, entry->class_name);
  return TS_OK;
}

/* Parses `<component dir>/<config>` with `parse`; a missing file names the path. */
static ts_status
read_component_config (ts_model_files *mf, ts_component c, const char *config,
                       ts_status (*parse) (const char *, void *, ts_error *), void *out,
                       ts_error *err)
{
  char *path = path_join (mf->component_dirs[c], config, err);
  ts_status st;

  if (!path)
    return TS_ERR_NOMEM;
  st = require_file (path, ts_component_name (c), err);
  if (st == TS_OK)
    st = parse (path, out, err);
  free (path);
  return st;
}

/* Adapters from the typed parsers to read_component_config's callback. */
static ts_status
parse_transformer (const char *path, void *out, ts_error *err)
{
  return ts_transformer_config_from_file (path, out, err);
}

static ts_status
parse_vq (const char *path, void *out, ts_error *err)
{
  return ts_vq_config_from_file (path, out, err);
}

static ts_status
parse_clip (const char *path, void *out, ts_error *err)
{
  return ts_clip_text_config_from_file (path, out, err);
}

static ts_status
parse_scheduler (const char *path, void *out, ts_error *err)
{
  return ts_scheduler_config_from_file (path, out, err);
}

/* The components must agree where one's output is another's input (README "Models"). */
static ts_status
check_consistency (const ts_model_files *mf, ts_error *err)
{
  const ts_transformer_config *t = &mf->transformer;

  if (t->codebook_size != mf->vq.num_vq_embeddings)
    return ts_error_set (err, TS_ERR_FORMAT,
                         "configs disagree: transformer codebook_size is %d but vqvae "
                         "num_vq_embeddings is %d",
                         t->codebook_size, mf->vq.num_vq_embeddings);
  if (t->joint_attention_dim != mf->clip.hidden_size)
    return ts_error_set (err, TS_ERR_FORMAT,
                         "configs disagree: transformer joint_attention_dim is %d but "
                         "text_encoder hidden_size is %d",
                         t->joint_attention_dim, mf->clip.hidden_size);
  if (t->pooled_projection_dim != mf->clip.projection_dim)
    return ts_error_set (err, TS_ERR_FORMAT,
                         "configs disagree: transformer pooled_projection_dim is %d but "
                         "text_encoder projection_dim is %d",
                         t->pooled_projection_dim, mf->clip.projection_dim);
  if (mf->scheduler.mask_token_id < t->codebook_size ||
      mf->scheduler.mask_token_id >= t->vocab_size)
    return ts_error_set (err, TS_ERR_FORMAT,
                         "configs disagree: scheduler mask_token_id %" PRId64
                         " must lie in the transformer's non-codebook ids [%d, %d)",
                         mf->scheduler.mask_token_id, t->codebook_size, t->vocab_size);
  return TS_OK;
}

static ts_status
read_configs (ts_model_files *mf, ts_error *err)
{
  char *index_path = NULL;
  ts_status st;

  if (!is_dir (mf->dir)) {
    struct stat sb;
    if (stat (mf->dir, &sb) == 0)
      st = ts_error_set (err, TS_ERR_IO, "model folder %s is %s, not a folder", mf->dir,
                         ts_file_kind_name (sb.st_mode));
    else if (errno == ENOENT || errno == ENOTDIR)
      st = ts_error_set (err, TS_ERR_NOT_FOUND, "model folder %s not found", mf->dir);
    else
      st = ts_error_set (err, TS_ERR_IO, "model folder %s: %s", mf->dir, strerror (errno));
    goto out;
  }
  index_path = path_join (mf->dir, "model_index.json", err);
  if (!index_path) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  if (ts_file_absent (index_path)) {
    st = ts_error_set (err, TS_ERR_NOT_FOUND,
                       "%s is not a diffusers model folder: %s not found", mf->dir,
                       index_path);
    goto out;
  }
  if ((st = ts_file_check_regular (index_path, "model", err)) != TS_OK)
    goto out;
  st = ts_model_index_from_file (index_path, &mf->index, err);
  if (st != TS_OK)
    goto out;

  for (int c = 0; c < TS_COMPONENT_COUNT; c++) {
    st = open_component_dir (mf, (ts_component) c, err);
    if (st != TS_OK)
      goto out;
  }
  st = read_component_config (mf, TS_COMPONENT_TRANSFORMER, "config.json", parse_transformer,
                              &mf->transformer, err);
  if (st == TS_OK)
    st = read_component_config (mf, TS_COMPONENT_VQVAE, "config.json", parse_vq, &mf->vq, err);
  if (st == TS_OK)
    st = read_component_config (mf, TS_COMPONENT_TEXT_ENCODER, "config.json", parse_clip,
                                &mf->clip, err);
  if (st == TS_OK)
    st = read_component_config (mf, TS_COMPONENT_SCHEDULER, "scheduler_config.json",
                                parse_scheduler, &mf->scheduler, err);
  if (st == TS_OK)
    st = check_consistency (mf, err);
  if (st != TS_OK)
    goto out;

  mf->vocab_path = path_join (mf->component_dirs[TS_COMPONENT_TOKENIZER], "vocab.json", err);
  mf->merges_path = path_join (mf->component_dirs[TS_COMPONENT_TOKENIZER], "merges.txt", err);
  if (!mf->vocab_path || !mf->merges_path) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  st = ts_transformer_config_tensors (&mf->transformer, &mf->expected[TS_COMPONENT_TRANSFORMER],
                                      err);
  if (st == TS_OK)
    st = ts_vq_config_tensors (&mf->vq, &mf->expected[TS_COMPONENT_VQVAE], err);
  if (st == TS_OK)
    st = ts_clip_text_config_tensors (&mf->clip, &mf->expected[TS_COMPONENT_TEXT_ENCODER], err);

out:
  free (index_path);
  return st;
}

/* Loads the tokenizer as generate will, so that inspect refuses what generate refuses, and
 * checks its ids against the text encoder's embedding table: an id past vocab_size would
 * otherwise load and fail at the first prompt without naming vocab.json. */
static ts_status
load_tokenizer (ts_model_files *mf, ts_error *err)
{
  size_t n_ids;

  mf->tokenizer = ts_tokenizer_load (mf->component_dirs[TS_COMPONENT_TOKENIZER], err);
  if (!mf->tokenizer)
    return err ? err->code : TS_ERR_FORMAT;
  n_ids = ts_tokenizer_n_vocab (mf->tokenizer);
  if (n_ids > (size_t) mf->clip.vocab_size)
    return ts_error_set (err, TS_ERR_FORMAT,
                         "tokenizer: %s has token id %zu ('%.64s'), beyond the text encoder's "
                         "vocabulary of %d (vocab_size in %s/config.json)",
                         mf->vocab_path, n_ids - 1,
                         ts_tokenizer_id_to_token (mf->tokenizer, (int32_t) (n_ids - 1))
                             ? ts_tokenizer_id_to_token (mf->tokenizer, (int32_t) (n_ids - 1))
                             : "?",
                         mf->clip.vocab_size, mf->component_dirs[TS_COMPONENT_TEXT_ENCODER]);
  return TS_OK;
}

static ts_status
open_weights (ts_model_files *mf, ts_error *err)
{
  const bool prefer_fp16 = (mf->flags & TS_LOAD_PREFER_FP16) != 0;
  const char *variants[N_NETWORKS];
  int n_without = 0, first_without = -1;
  char others[128] = "";
  ts_status st;

  /* First find which networks have no weights at all, to name them all in one error. */
  for (size_t i = 0; i < N_NETWORKS; i++) {
    const char *dir = mf->component_dirs[networks[i].component];
    bool plain = has_checkpoint (dir, networks[i].base, NULL);
    bool fp16 = has_checkpoint (dir, networks[i].base, "fp16");

    variants[i] = prefer_fp16 || !plain ? "fp16" : NULL;
    if (!plain && !fp16) {
      if (first_without < 0) {
        first_without = (int) i;
      } else {
        size_t used = strlen (others);
        snprintf (others + used, sizeof others - used, "%s%s", n_without > 1 ? ", " : "",
                  ts_component_name (networks[i].component));
      }
      n_without++;
    }
  }
  if (first_without >= 0) {
    const char *base = networks[first_without].base;
    const char *dir = mf->component_dirs[networks[first_without].component];
    char pickle[512];

    snprintf (pickle, sizeof pickle, "%s.bin", base);
    return ts_error_set (err, TS_ERR_NOT_FOUND,
                         "%s: no weights: neither %s.safetensors nor %s.fp16.safetensors "
                         "(nor a sharded %s.safetensors.index.json) found in %s%s%s%s%s",
                         ts_component_name (networks[first_without].component), base, base,
                         base, dir,
                         file_in_dir (dir, pickle) ? " (only PyTorch .bin weights, which "
                                                     "need converting to safetensors)"
                                                   : "",
                         n_without > 1 ? "; " : "", others,
                         n_without > 2   ? " have no weights either"
                         : n_without > 1 ? " has no weights either"
                                         : "");
  }

  for (size_t i = 0; i < N_NETWORKS; i++) {
    const ts_component c = networks[i].component;
    const char *name = ts_component_name (c);

    mf->sets[c] = ts_st_set_open (mf->component_dirs[c], networks[i].base, variants[i], err);
    if (!mf->sets[c]) {
      ts_error_prefix (err, "%s", name);
      return err ? err->code : TS_ERR_IO;
    }
    st = ts_model_files_check_tensors (name, &mf->expected[c], mf->sets[c], err);
    if (st != TS_OK)
      return st;
    TS_LOG_D ("model: %s: %zu tensors in %zu file(s), %zu bytes", name,
              ts_st_set_n_tensors (mf->sets[c]), ts_st_set_n_files (mf->sets[c]),
              ts_st_set_size_bytes (mf->sets[c]));
  }

  st = require_file (mf->vocab_path, "tokenizer", err);
  if (st == TS_OK)
    st = require_file (mf->merges_path, "tokenizer", err);
  if (st != TS_OK)
    return st;
  return load_tokenizer (mf, err);
}

ts_model_files *
ts_model_files_open (const char *dir, ts_load_flags flags, ts_error *err)
{
  ts_model_files *mf;
  size_t len;

  if (!dir || !*dir) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "model: no folder given");
    return NULL;
  }
  mf = calloc (1, sizeof *mf);
  if (!mf) {
    ts_error_set (err, TS_ERR_NOMEM, "out of memory");
    return NULL;
  }
  mf->flags = flags;
  mf->dir = strdup (dir);
  if (!mf->dir) {
    ts_error_set (err, TS_ERR_NOMEM, "out of memory");
    goto fail;
  }
  /* "dir/" and "dir" name the same folder; keep messages free of "//". */
  len = strlen (mf->dir);
  while (len > 1 && mf->dir[len - 1] == '/')
    mf->dir[--len] = '\0';
  for (int c = 0; c < TS_COMPONENT_COUNT; c++)
    ts_tensor_list_init (&mf->expected[c]);

  if (read_configs (mf, err) != TS_OK)
    goto fail;
  if (!(flags & TS_LOAD_CONFIGS_ONLY) && open_weights (mf, err) != TS_OK)
    goto fail;
  return mf;

fail:
  ts_model_files_free (mf);
  return NULL;
}

void
ts_model_files_free (ts_model_files *mf)
{
  if (!mf)
    return;
  for (int c = 0; c < TS_COMPONENT_COUNT; c++) {
    ts_st_set_free (mf->sets[c]);
    ts_tensor_list_clear (&mf->expected[c]);
    free (mf->component_dirs[c]);
  }
  ts_tokenizer_free (mf->tokenizer);
  free (mf->vocab_path);
  free (mf->merges_path);
  free (mf->dir);
  free (mf);
}

const ts_model_index *
ts_model_files_index (const ts_model_files *mf)
{
  return &mf->index;
}

const ts_transformer_config *
ts_model_files_transformer_config (const ts_model_files *mf)
{
  return &mf->transformer;
}

const ts_vq_config *
ts_model_files_vq_config (const ts_model_files *mf)
{
  return &mf->vq;
}

const ts_clip_text_config *
ts_model_files_clip_text_config (const ts_model_files *mf)
{
  return &mf->clip;
}

const ts_scheduler_config *
ts_model_files_scheduler_config (const ts_model_files *mf)
{
  return &mf->scheduler;
}

const char *
ts_model_files_tokenizer_vocab (const ts_model_files *mf)
{
  return mf->vocab_path;
}

const char *
ts_model_files_tokenizer_merges (const ts_model_files *mf)
{
  return mf->merges_path;
}

ts_tokenizer *
ts_model_files_steal_tokenizer (ts_model_files *mf)
{
  ts_tokenizer *tok = mf->tokenizer;
  mf->tokenizer = NULL;
  return tok;
}

const ts_tensor_list *
ts_model_files_expected (const ts_model_files *mf, ts_component c)
{
  if (c != TS_COMPONENT_TRANSFORMER && c != TS_COMPONENT_VQVAE &&
      c != TS_COMPONENT_TEXT_ENCODER)
    return NULL;
  return &mf->expected[c];
}

const ts_st_set *
ts_model_files_checkpoint (const ts_model_files *mf, ts_component c)
{
  return (unsigned) c < TS_COMPONENT_COUNT ? mf->sets[c] : NULL;
}

const ts_st_tensor *
ts_model_files_find (const ts_model_files *mf, ts_component c, const char *name)
{
  const ts_st_set *set = ts_model_files_checkpoint (mf, c);
  return set && name ? ts_st_set_find (set, name) : NULL;
}

ts_status
ts_model_files_get (const ts_model_files *mf, ts_component c, const char *name,
                    const ts_st_tensor **out, ts_error *err)
{
  const ts_st_set *set = ts_model_files_checkpoint (mf, c);
  const ts_st_tensor *t;

  *out = NULL;
  if (!set)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: no checkpoint is open",
                         ts_component_name (c) ? ts_component_name (c) : "?");
  t = name ? ts_st_set_find (set, name) : NULL;
  if (!t)
    return ts_error_set (err, TS_ERR_NOT_FOUND, "%s: no tensor '%s' in %s",
                         ts_component_name (c), name ? name : "(null)",
                         ts_st_set_n_files (set) ? ts_st_set_file (set, 0) : mf->dir);
  *out = t;
  return TS_OK;
}

/* ---- public inspection API (tessera.h) -------------------------------------------- */

struct ts_model_info {
  ts_model_files *files;
  ts_component_info components[TS_COMPONENT_COUNT];
};

static uint64_t
file_size (const char *path)
{
  struct stat sb;
  return stat (path, &sb) == 0 ? (uint64_t) sb.st_size : 0;
}

static void
fill_weights_info (ts_component_info *ci, const ts_st_set *set)
{
  uint64_t elements[TS_DTYPE_COUNT] = { 0 };
  size_t n = ts_st_set_n_tensors (set);

  ci->n_tensors = n;
  ci->n_files = (int) ts_st_set_n_files (set);
  ci->size_bytes_on_disk = ts_st_set_size_bytes (set);
  for (size_t i = 0; i < n; i++) {
    const ts_st_tensor *t = ts_st_set_tensor (set, i);
    if ((unsigned) t->dtype < TS_DTYPE_COUNT) {
      ci->dtype_counts[t->dtype]++;
      elements[t->dtype] += t->n_elements;
    }
  }
  ci->dtype = TS_DTYPE_COUNT;
  for (int d = 0; d < TS_DTYPE_COUNT; d++)
    if (ci->dtype_counts[d] &&
        (ci->dtype == TS_DTYPE_COUNT || elements[d] > elements[ci->dtype]))
      ci->dtype = (ts_dtype) d;
}

ts_model_info *
ts_model_info_load (const char *dir, ts_load_flags flags, ts_error *err)
{
  ts_model_info *info = calloc (1, sizeof *info);
  ts_model_files *mf;

  if (!info) {
    ts_error_set (err, TS_ERR_NOMEM, "out of memory");
    return NULL;
  }
  mf = info->files = ts_model_files_open (dir, flags, err);
  if (!mf) {
    free (info);
    return NULL;
  }

  for (int c = 0; c < TS_COMPONENT_COUNT; c++) {
    ts_component_info *ci = &info->components[c];
    const ts_tensor_list *expected = ts_model_files_expected (mf, (ts_component) c);

    ci->name = ts_component_name ((ts_component) c);
    ci->class_name = mf->index.components[c].class_name;
    ci->present = true; /* folder and config were required to get here */
    ci->dtype = TS_DTYPE_COUNT;
    if (expected) {
      ci->n_params = ts_tensor_list_n_params (expected);
      ci->n_tensors = expected->n;
    }
    if (mf->sets[c])
      fill_weights_info (ci, mf->sets[c]);
  }
  ts_transformer_config_summary (&mf->transformer,
                                 info->components[TS_COMPONENT_TRANSFORMER].summary,
                                 sizeof info->components[0].summary);
  ts_vq_config_summary (&mf->vq, info->components[TS_COMPONENT_VQVAE].summary,
                        sizeof info->components[0].summary);
  ts_clip_text_config_summary (&mf->clip, info->components[TS_COMPONENT_TEXT_ENCODER].summary,
                               sizeof info->components[0].summary);
  ts_scheduler_config_summary (&mf->scheduler,
                               info->components[TS_COMPONENT_SCHEDULER].summary,
                               sizeof info->components[0].summary);
  {
    ts_component_info *tok = &info->components[TS_COMPONENT_TOKENIZER];
    bool vocab = is_file (mf->vocab_path), merges = is_file (mf->merges_path);

    tok->present = vocab && merges;
    tok->n_files = (vocab ? 1 : 0) + (merges ? 1 : 0);
    tok->size_bytes_on_disk = (vocab ? file_size (mf->vocab_path) : 0) +
                              (merges ? file_size (mf->merges_path) : 0);
    snprintf (tok->summary, sizeof tok->summary, "byte-level BPE: vocab.json %s, merges.txt %s",
              vocab ? "present" : "missing", merges ? "present" : "missing");
  }
  return info;
}

const char *
ts_model_info_dir (const ts_model_info *info)
{
  return info->files->dir;
}

const char *
ts_model_info_pipeline_class (const ts_model_info *info)
{
  return info->files->index.class_name;
}

const ts_component_info *
ts_model_info_component (const ts_model_info *info, ts_component c)
{
  return (unsigned) c < TS_COMPONENT_COUNT ? &info->components[c] : NULL;
}

uint32_t
ts_model_info_size_step (const ts_model_info *info)
{
  return (uint32_t) info->files->vq.vae_scale_factor * (info->files->transformer.downsample ? 2u : 1u);
}

void
ts_model_info_default_size (const ts_model_info *info, uint32_t *width, uint32_t *height)
{
  /* The rule of ts_model_default_size (ts-pipeline) on the configs alone, so that inspect
   * estimates memory at the size generate uses: 1024 px for a downsampling transformer,
   * 512 px otherwise, or the VQ config's sample_size when it is an image size the model
   * takes (the demo model's 128; the real folders' 32 is diffusers' default, no size). */
  const ts_model_files *mf = info->files;
  uint32_t size = mf->transformer.downsample ? 1024u : 512u;
  uint32_t f = mf->vq.vae_scale_factor > 0 ? (uint32_t) mf->vq.vae_scale_factor : 0;
  uint32_t trained = mf->vq.sample_size > 0 ? (uint32_t) mf->vq.sample_size : 0;

  if (trained >= 64 && trained <= 8192 && f > 0 && trained % f == 0 &&
      ts_transformer_check_grid (&mf->transformer, (int) (trained / f), (int) (trained / f),
                                 NULL) == TS_OK)
    size = trained;

  if (width)
    *width = size;
  if (height)
    *height = size;
}

uint64_t
ts_model_info_estimate_memory (const ts_model_info *info, uint32_t width, uint32_t height,
                               ts_dtype compute_weights_dtype)
{
  const ts_model_files *mf = info->files;
  const ts_transformer_config *t = &mf->transformer;
  const ts_clip_text_config *clip = &mf->clip;
  const ts_vq_config *vq = &mf->vq;
  const double batch = 2.0, f32 = 4.0;
  const uint32_t grid = (uint32_t) vq->vae_scale_factor * (t->downsample ? 2u : 1u);
  double weights, text, transformer, decoder = 0.0, seq, tokens, h, w, total;

  if (!is_float_dtype (compute_weights_dtype))
    return 0;
  if (width == 0 && height == 0)
    ts_model_info_default_size (info, &width, &height);
  if (width == 0 || height == 0 || width % grid != 0 || height % grid != 0)
    return 0;

  weights = (double) (info->components[TS_COMPONENT_TRANSFORMER].n_params +
                      info->components[TS_COMPONENT_TEXT_ENCODER].n_params +
                      info->components[TS_COMPONENT_VQVAE].n_params) *
            (double) ts_dtype_size (compute_weights_dtype);

  seq = clip->max_position_embeddings;
  text = f32 * batch * seq * (4.0 * clip->hidden_size + clip->intermediate_size) +
         f32 * batch * clip->num_attention_heads * seq * seq;

  h = (double) height / vq->vae_scale_factor;
  w = (double) width / vq->vae_scale_factor;
  tokens = t->downsample ? (h / 2.0) * (w / 2.0) : h * w;
  seq += tokens;
  transformer = f32 * batch * seq * t->inner_dim * 16.0 + f32 * batch * 2.0 * t->codebook_size * h * w;

  /* Decoder level k runs at 1/2^k of the image; its upsampler's output (k >= 1) is at
   * 1/2^(k-1) with the same channels. */
  for (int k = 0; k < vq->n_blocks; k++) {
    double level = k > 0 ? k - 1 : 0;
    double pixels = ((double) width / pow (2.0, level)) * ((double) height / pow (2.0, level));
    double map = (double) vq->block_out_channels[k] * pixels;
    if (map > decoder)
      decoder = map;
  }
  decoder *= f32 * 3.0;

  total = weights + fmax (text, fmax (transformer, decoder));
  return total >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t) total;
}

ts_status
ts_model_size_check (const ts_transformer_config *t, const ts_vq_config *vq, uint32_t width,
                     uint32_t height, ts_error *err)
{
  uint32_t f = (uint32_t) vq->vae_scale_factor;
  uint32_t step = t->downsample ? 2 * f : f;
  ts_error grid_err;

  if (width == 0 || height == 0 || width % f || height % f || width > 8192 || height > 8192)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "size %ux%u: this model takes widths and heights that are multiples of "
                         "%u px, from %u to 8192 (e.g. 1024x1024, 512x768)",
                         width, height, step, step);
  if (ts_transformer_check_grid (t, (int) (height / f), (int) (width / f), &grid_err) != TS_OK)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "size %ux%u: this model takes widths and heights that are multiples of "
                         "%u px (%s)",
                         width, height, step, grid_err.message);
  return TS_OK;
}

ts_status
ts_model_info_check_size (const ts_model_info *info, uint32_t width, uint32_t height,
                          ts_error *err)
{
  return ts_model_size_check (&info->files->transformer, &info->files->vq, width, height, err);
}

/* "123", "512K", "16M", "2G" (powers of 1024); 0 when s is not such a size. */
static uint64_t
parse_bytes (const char *s)
{
  char *end;
  unsigned long long v;
  int shift = 0;

  if (!s || *s < '0' || *s > '9')
    return 0;
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno)
    return 0;
  switch (*end) {
  case 'K': case 'k': shift = 10; end++; break;
  case 'M': case 'm': shift = 20; end++; break;
  case 'G': case 'g': shift = 30; end++; break;
  default: break;
  }
  if (*end || v > (UINT64_MAX >> shift))
    return 0;
  return (uint64_t) v << shift;
}

/* The cgroup v2 limit of this process's group ("max" or unreadable: none), as a
 * container or a systemd unit sets it. */
static uint64_t
cgroup_limit (void)
{
  char line[64] = "";
  uint64_t v;
  FILE *f = fopen ("/sys/fs/cgroup/memory.max", "re");

  if (!f)
    return 0;
  if (!fgets (line, sizeof line, f))
    line[0] = '\0';
  fclose (f);
  line[strcspn (line, "\n")] = '\0';
  v = parse_bytes (line);
  return v;
}

uint64_t
ts_memory_limit (const char **source)
{
  const char *env = getenv ("TESSERA_MAX_MEMORY");
  long pages = sysconf (_SC_PHYS_PAGES), page = sysconf (_SC_PAGESIZE);
  uint64_t total = pages > 0 && page > 0 ? (uint64_t) pages * (uint64_t) page : 0;
  uint64_t cg = cgroup_limit (), v = parse_bytes (env);
  const char *what = "the machine's RAM";

  if (v) {
    what = "TESSERA_MAX_MEMORY";
  } else {
    v = total;
    if (cg && (cg < v || v == 0)) {
      v = cg;
      what = "the cgroup's memory.max";
    }
  }
  if (source)
    *source = what;
  return v ? v : UINT64_MAX;
}

ts_status
ts_model_info_check_memory (const ts_model_info *info, uint32_t width, uint32_t height,
                            ts_dtype compute_weights_dtype, ts_error *err)
{
  const char *source;
  uint64_t limit = ts_memory_limit (&source);
  uint64_t need = ts_model_info_estimate_memory (info, width, height, compute_weights_dtype);

  if (need > limit)
    return ts_error_set (err, TS_ERR_NOMEM,
                         "size %ux%u needs about %.1f GiB by the model's estimate, more than "
                         "the %.1f GiB of %s",
                         width, height, (double) need / 1073741824.0,
                         (double) limit / 1073741824.0, source);
  return TS_OK;
}

void
ts_model_info_free (ts_model_info *info)
{
  if (!info)
    return;
  ts_model_files_free (info->files);
  free (info);
}
