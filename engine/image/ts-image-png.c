/* SPDX-License-Identifier: MIT
 *
 * ts-image-png — the end of the pipeline: the RGB8 image the VQ decoder produces, and PNG
 * files with the generation parameters in them. PNG goes through libpng; the parameters
 * (their text forms are ts-image-meta's) are written twice, as AUTOMATIC1111 "infotext" in
 * a `parameters` chunk and as JSON in a `tessera` iTXt chunk. Reading converts any PNG to
 * RGB8 and accepts either metadata form. Files are written atomically (temporary file,
 * fsync, rename) and read with hard limits on every size a hostile file controls.
 *
 * libpng reports errors by longjmp. Every setjmp here sits in a small function
 * (png_guarded) that has no local variables of its own: whatever the guarded code
 * allocates is stored in a png_job the caller owns, so after a longjmp nothing depends on
 * the value of a non-volatile local (C11 7.13.2.1p3) and the caller frees it all on one
 * cleanup path.
 */
#include "image/ts-image-internal.h"

#include "core/ts-common.h"
#include "core/ts-file.h"

#include <png.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Per-chunk cap for the reader: the stored size of text chunks (enforced by png_track_chunks:
 * libpng 1.6.39 only warns about a chunk over png_set_chunk_malloc_max and then allocates
 * it anyway), and their size after decompression (enforced by libpng, which drops the
 * chunk). IDAT is streamed and not affected; other ancillary chunks are skipped unread. */
#define PNG_CHUNK_BYTES_MAX ((size_t) 8 << 20)
/* How many ancillary chunks libpng keeps (text chunks count against it), so that a file
 * cannot pile up CHUNK_BYTES_MAX-sized text chunks without bound. */
#define PNG_TEXT_CHUNKS_MAX 32

/* ---- images -------------------------------------------------------------------------- */

ts_image *
ts_image_new (uint32_t width, uint32_t height, ts_error *err)
{
  ts_image *img = NULL;
  size_t n_bytes;

  if (width == 0 || height == 0) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "image: %" PRIu32 "x%" PRIu32 " has a zero side",
                  width, height);
    return NULL;
  }
  if (!ts_mul_size (width, height, &n_bytes) || !ts_mul_size (n_bytes, 3, &n_bytes)) {
    ts_error_set (err, TS_ERR_NOMEM, "image: %" PRIu32 "x%" PRIu32 " is too large", width,
                  height);
    return NULL;
  }
  img = calloc (1, sizeof *img);
  if (!img)
    goto fail;
  img->pixels = calloc (n_bytes, 1);
  if (!img->pixels)
    goto fail;
  img->width = width;
  img->height = height;
  return img;

fail:
  free (img);
  ts_error_set (err, TS_ERR_NOMEM, "image: out of memory for %" PRIu32 "x%" PRIu32 " pixels",
                width, height);
  return NULL;
}

void
ts_image_free (ts_image *img)
{
  if (!img)
    return;
  free (img->pixels);
  free (img);
}

static bool
is_ascii (const char *s)
{
  for (; *s; s++)
    if ((unsigned char) *s >= 0x80)
      return false;
  return true;
}

/* ---- libpng plumbing ---------------------------------------------------------------- */

typedef struct {
  jmp_buf jmp;
  png_structp png;
  png_infop info;
  const char *name;  /* for messages: the path, or "PNG data" */
  ts_status code;    /* set by our callbacks before they raise; else default_code */
  ts_status default_code;
  char message[512];
  char warning[256]; /* the first libpng warning, added to the error message */

  /* writing */
  const ts_image *img;
  png_text text[2];
  int n_text;
  uint8_t *out;
  size_t out_len, out_cap;

  /* reading */
  FILE *file;
  const uint8_t *src;
  size_t src_len, src_pos;
  uint64_t stream_pos, next_chunk; /* bytes read so far; offset of the next chunk header */
  uint8_t chunk_header[8];
  uint8_t *pixels; /* width*height*channels while decoding, then width*height*3 */
  png_bytep *rows;
  uint32_t width, height;
  int channels;
} png_job;

static void
png_on_error (png_structp png, png_const_charp msg)
{
  png_job *job = png_get_error_ptr (png);

  if (job->code == TS_OK) {
    job->code = job->default_code;
    if (job->warning[0])
      snprintf (job->message, sizeof job->message, "%s (after: %s)", msg, job->warning);
    else
      snprintf (job->message, sizeof job->message, "%s", msg);
  }
  longjmp (job->jmp, 1);
}

static void
png_on_warning (png_structp png, png_const_charp msg)
{
  png_job *job = png_get_error_ptr (png);

  TS_LOG_D ("image: %s: libpng: %s", job->name, msg);
  if (!job->warning[0])
    snprintf (job->warning, sizeof job->warning, "%s", msg);
}

/* Raises an error of our own through libpng's error path. */
static _Noreturn void job_fail (png_job *job, ts_status code, const char *fmt, ...)
    TS_PRINTF (3, 4);

static _Noreturn void
job_fail (png_job *job, ts_status code, const char *fmt, ...)
{
  va_list ap;

  if (job->code == TS_OK) {
    job->code = code;
    va_start (ap, fmt);
    vsnprintf (job->message, sizeof job->message, fmt, ap);
    va_end (ap);
  }
  png_error (job->png, job->message);
}

/* Runs fn under setjmp. No locals here and none used after a longjmp: see the top. Kept out
 * of line so that the setjmp stays in this frame rather than in the caller's. */
#if defined(__GNUC__)
__attribute__ ((noinline))
#endif
static bool
png_guarded (png_job *job, void (*fn) (png_job *))
{
  if (setjmp (job->jmp))
    return false;
  fn (job);
  return true;
}

/* ---- PNG writing --------------------------------------------------------------------- */

static void
png_write_memory (png_structp png, png_bytep data, size_t n)
{
  png_job *job = png_get_io_ptr (png);

  if (n > job->out_cap - job->out_len) {
    size_t need, cap = job->out_cap ? job->out_cap : 64 * 1024;
    uint8_t *p;
    if (!ts_add_size (job->out_len, n, &need))
      job_fail (job, TS_ERR_NOMEM, "encoded PNG is too large");
    while (cap < need)
      if (!ts_mul_size (cap, 2, &cap))
        job_fail (job, TS_ERR_NOMEM, "encoded PNG is too large");
    p = realloc (job->out, cap);
    if (!p)
      job_fail (job, TS_ERR_NOMEM, "out of memory for %zu bytes of PNG", cap);
    job->out = p;
    job->out_cap = cap;
  }
  memcpy (job->out + job->out_len, data, n);
  job->out_len += n;
}

static void
png_flush_nothing (png_structp png)
{
  (void) png;
}

static void
png_write_body (png_job *job)
{
  const ts_image *img = job->img;

  png_set_write_fn (job->png, job, png_write_memory, png_flush_nothing);
  png_set_IHDR (job->png, job->info, img->width, img->height, 8, PNG_COLOR_TYPE_RGB,
                PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  /* Text goes before IDAT: PIL (A1111, ComfyUI) only sees chunks before the image data
   * unless the pixels are loaded too. */
  if (job->n_text > 0)
    png_set_text (job->png, job->info, job->text, job->n_text);
  png_write_info (job->png, job->info);
  for (uint32_t y = 0; y < img->height; y++)
    png_write_row (job->png, img->pixels + (size_t) y * img->width * 3);
  png_write_end (job->png, job->info);
}

/* `what` starts every message: "image" or "image: '<path>'". */
static ts_status
check_image (const ts_image *img, const char *what, ts_error *err)
{
  if (!img || !img->pixels || img->width == 0 || img->height == 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: no pixels to write", what);
  if (img->width > TS_IMAGE_MAX_SIDE || img->height > TS_IMAGE_MAX_SIDE ||
      (uint64_t) img->width * img->height > TS_IMAGE_MAX_PIXELS)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "%s: %" PRIu32 "x%" PRIu32 " is larger than the PNG files this engine "
                         "reads (%u per side, %u pixels)",
                         what, img->width, img->height, TS_IMAGE_MAX_SIDE, TS_IMAGE_MAX_PIXELS);
  return TS_OK;
}

static ts_status
encode_png (const ts_image *img, const ts_image_meta *meta, const char *what,
            uint8_t **out_data, size_t *out_size, ts_error *err)
{
  static char key_parameters[] = "parameters", key_tessera[] = "tessera";
  png_job job = { .name = what, .default_code = TS_ERR_NOMEM, .img = img };
  char *parameters = NULL, *json = NULL;
  ts_status status;

  *out_data = NULL;
  *out_size = 0;
  if ((status = check_image (img, what, err)) != TS_OK)
    return status;
  if (meta && (status = ts_image_meta_check_strings (meta, what, err)) != TS_OK)
    return status;

  if (meta) {
    parameters = ts_image_meta_to_parameters (meta);
    json = ts_image_meta_to_json (meta);
    if (!parameters || !json) {
      status = ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory for metadata", what);
      goto done;
    }
    /* `parameters` mirrors PIL's PngInfo.add_text, which A1111 and ComfyUI use: tEXt when
     * the text fits tEXt's Latin-1, iTXt (UTF-8) otherwise; their readers accept both. We
     * switch at ASCII rather than Latin-1 so that a tEXt chunk is never ambiguous: readers
     * that wrongly assume UTF-8 in tEXt and readers that follow the spec agree on it.
     * Neither chunk is compressed, so `strings` and simple tools can read them. */
    job.text[0].compression = is_ascii (parameters) ? PNG_TEXT_COMPRESSION_NONE
                                                    : PNG_ITXT_COMPRESSION_NONE;
    job.text[0].key = key_parameters;
    job.text[0].text = parameters;
    job.text[1].compression = PNG_ITXT_COMPRESSION_NONE;
    job.text[1].key = key_tessera;
    job.text[1].text = json;
    job.n_text = 2;
  }

  job.png = png_create_write_struct (PNG_LIBPNG_VER_STRING, &job, png_on_error, png_on_warning);
  if (!job.png || !(job.info = png_create_info_struct (job.png))) {
    status = ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory for the PNG encoder", what);
    goto done;
  }
  /* After check_image and ts_image_meta_check_strings, what libpng can still fail on is
   * memory (zlib state, buffers): hence default_code TS_ERR_NOMEM. */
  if (!png_guarded (&job, png_write_body)) {
    status = ts_error_set (err, job.code, "%s: cannot encode PNG: %s", what, job.message);
    goto done;
  }
  *out_data = job.out;
  *out_size = job.out_len;
  job.out = NULL;
  status = TS_OK;

done:
  png_destroy_write_struct (&job.png, &job.info);
  free (job.out);
  free (parameters);
  free (json);
  return status;
}

ts_status
ts_image_encode_png_memory (const ts_image *img, const ts_image_meta *meta, uint8_t **out_data,
                            size_t *out_size, ts_error *err)
{
  if (!out_data || !out_size)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "image: no output buffer");
  return encode_png (img, meta, "image", out_data, out_size, err);
}

/* ---- atomic file writing ------------------------------------------------------------ */

/* A temporary file is "<target>.tmp-" and TEMP_RANDOM characters from temp_chars. */
#define TEMP_RANDOM 6
static const char temp_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/* A temporary file younger than this is never taken for stale: a writer locks its file a
 * moment after creating it (create_temp), and this covers that moment with a wide margin. */
#define TEMP_STALE_AGE_S 2

/* Creates "<path>.tmp-XXXXXX" exclusively, like mkstemp, but with mode 0666 so that the
 * kernel applies the umask: mkstemp's 0600 would make saved images private, and reading
 * the umask (umask () twice) is racy with other threads. O_EXCL makes the name ours. The
 * file is flock'ed until the caller closes it, after the rename: that lock is how the next
 * save in the folder tells a file being written from one left by a killed process. */
static int
create_temp (const char *path, char **tmp_out)
{
  size_t len = strlen (path);
  char *tmp = malloc (len + sizeof ".tmp-XXXXXX");
  int fd = -1;

  *tmp_out = NULL;
  if (!tmp) {
    errno = ENOMEM;
    return -1;
  }
  for (int attempt = 0; attempt < 100; attempt++) {
    unsigned char rnd[TEMP_RANDOM];
    if (getrandom (rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t) sizeof rnd) {
      uint64_t x = (uint64_t) (ts_time_now () * 1e9) ^ ((uint64_t) getpid () << 32) ^
                   (uint64_t) attempt * 0x9e3779b97f4a7c15u;
      for (size_t i = 0; i < sizeof rnd; i++, x >>= 8)
        rnd[i] = (unsigned char) x;
    }
    memcpy (tmp, path, len);
    memcpy (tmp + len, ".tmp-", 5);
    for (size_t i = 0; i < sizeof rnd; i++)
      tmp[len + 5 + i] = temp_chars[rnd[i] % (sizeof temp_chars - 1)];
    tmp[len + 5 + TEMP_RANDOM] = '\0';
    fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST)
      break;
  }
  if (fd < 0) {
    int saved = errno;
    free (tmp);
    errno = saved;
    return -1;
  }
  /* A file system without flock (rare) still gets the write; the age rule alone then
   * guards its temporary file, as for any other writer. */
  if (flock (fd, LOCK_EX | LOCK_NB) != 0)
    TS_LOG_D ("image: '%s': cannot lock: %s", tmp, strerror (errno));
  *tmp_out = tmp;
  return fd;
}

/* Whether name is one of ours: "<name>.png.tmp-XXXXXX" (any case for ".png"). Only PNG
 * targets: a ".tmp-" file of another program is never touched. */
static bool
is_temp_name (const char *name)
{
  size_t len = strlen (name), tail = sizeof ".png.tmp-" - 1 + TEMP_RANDOM;

  if (len <= tail || strncasecmp (name + len - tail, ".png", 4) != 0 ||
      memcmp (name + len - tail + 4, ".tmp-", 5) != 0)
    return false;
  for (size_t i = len - TEMP_RANDOM; i < len; i++)
    if (!strchr (temp_chars, name[i]) || name[i] == '\0')
      return false;
  return true;
}

/* Removes the temporary files a killed save left in dir (SIGKILL, a crash, a power cut
 * before the rename). A file is stale when it has our name pattern, is a regular file of
 * this user, is older than TEMP_STALE_AGE_S and nobody holds its lock: a live writer holds
 * it from creation to rename, and the kernel drops it when a writer dies, whatever its PID
 * namespace. Failures are logged at DEBUG and never fail the save. */
static void
remove_stale_temps (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  time_t now = time (NULL);

  if (!d)
    return;
  while ((e = readdir (d))) {
    struct stat sb, again;
    int fd;

    if (!is_temp_name (e->d_name))
      continue;
    fd = openat (dirfd (d), e->d_name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
      continue;
    if (fstat (fd, &sb) == 0 && S_ISREG (sb.st_mode) && sb.st_uid == geteuid () &&
        now - sb.st_mtime >= TEMP_STALE_AGE_S && flock (fd, LOCK_EX | LOCK_NB) == 0 &&
        fstatat (dirfd (d), e->d_name, &again, AT_SYMLINK_NOFOLLOW) == 0 &&
        again.st_dev == sb.st_dev && again.st_ino == sb.st_ino) {
      if (unlinkat (dirfd (d), e->d_name, 0) == 0)
        TS_LOG_I ("image: removed '%s/%s', left by an interrupted save", dir, e->d_name);
      else
        TS_LOG_D ("image: cannot remove '%s/%s': %s", dir, e->d_name, strerror (errno));
    }
    close (fd);
  }
  closedir (d);
}

static bool
write_all (int fd, const uint8_t *data, size_t size)
{
  while (size > 0) {
    ssize_t n = write (fd, data, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (n == 0) {
      errno = EIO;
      return false;
    }
    data += n;
    size -= (size_t) n;
  }
  return true;
}

/* The folder part of path ("." when it has none); malloc'd. */
static char *
dir_of (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash ? ts_image_dup_range (path, slash == path ? 1 : (size_t) (slash - path))
               : strdup (".");
}

/* Makes the rename durable. The file is already complete and in place, so a failure here
 * is logged rather than reported. */
static void
sync_dir (const char *path, const char *dir)
{
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0 || (fsync (fd) != 0 && errno != EINVAL))
    TS_LOG_W ("image: '%s': cannot sync directory '%s': %s", path, dir, strerror (errno));
  if (fd >= 0)
    close (fd);
}

/* Where a save to path lands, once checked. */
typedef struct {
  char *target; /* path, or the regular file a symbolic link at path points to */
  char *dir;    /* target's folder: the temporary file goes there */
  bool exists;  /* target is an existing regular file, to be replaced */
  mode_t mode;  /* its permission bits, kept by the replacement (as cp keeps them) */
} out_target;

static void
out_target_clear (out_target *t)
{
  free (t->target);
  free (t->dir);
  memset (t, 0, sizeof *t);
}

/* Checks path as a destination and resolves it (see ts_output_path_check). */
static ts_status
resolve_output (const char *path, out_target *t, ts_error *err)
{
  struct stat sb;
  ts_status st = TS_ERR_IO;

  memset (t, 0, sizeof *t);
  if (ts_image_str_empty (path))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "image: no file name to save to");
  if (lstat (path, &sb) != 0) {
    if (errno != ENOENT) {
      ts_error_set (err, TS_ERR_IO, "image: '%s': cannot write there: %s", path,
                    strerror (errno));
      goto fail;
    }
    t->target = strdup (path);
  } else if (S_ISLNK (sb.st_mode)) {
    /* Written through, as cp does: the file the link points to is replaced and the link
     * kept. Only a link to a regular file; cp's other choices (creating a dangling link's
     * target, writing into a device) are exactly the surprises this refuses. */
    if (stat (path, &sb) != 0) {
      if (errno == ENOENT)
        ts_error_set (err, TS_ERR_IO,
                      "image: '%s' is a dangling symbolic link; refusing to write through it",
                      path);
      else if (errno == ELOOP)
        ts_error_set (err, TS_ERR_IO, "image: '%s' is a symbolic link loop", path);
      else
        ts_error_set (err, TS_ERR_IO, "image: '%s': cannot follow the symbolic link: %s", path,
                      strerror (errno));
      goto fail;
    }
    if (!S_ISREG (sb.st_mode)) {
      ts_error_set (err, TS_ERR_IO,
                    "image: '%s' is a symbolic link to %s, not a regular file; refusing to "
                    "replace it",
                    path, ts_file_kind_name (sb.st_mode));
      goto fail;
    }
    t->target = realpath (path, NULL);
    if (!t->target) {
      ts_error_set (err, TS_ERR_IO, "image: '%s': cannot follow the symbolic link: %s", path,
                    strerror (errno));
      goto fail;
    }
    t->exists = true;
    t->mode = sb.st_mode;
  } else if (!S_ISREG (sb.st_mode)) {
    ts_error_set (err, TS_ERR_IO, "image: '%s' is %s, not a regular file; refusing to replace it",
                  path, ts_file_kind_name (sb.st_mode));
    goto fail;
  } else {
    t->target = strdup (path);
    t->exists = true;
    t->mode = sb.st_mode;
  }
  if (!t->target || !(t->dir = dir_of (t->target))) {
    st = ts_error_set (err, TS_ERR_NOMEM, "image: '%s': out of memory", path);
    goto fail;
  }

  if (stat (t->dir, &sb) != 0) {
    ts_error_set (err, TS_ERR_IO, "image: '%s': folder '%s': %s", path, t->dir,
                  strerror (errno));
    goto fail;
  }
  if (!S_ISDIR (sb.st_mode)) {
    ts_error_set (err, TS_ERR_IO, "image: '%s': '%s' is %s, not a folder", path, t->dir,
                  ts_file_kind_name (sb.st_mode));
    goto fail;
  }
  /* access () says what the rename needs: write and search permission in the folder, and
   * a writable file system (EROFS). Root passes the permission part, as it should. */
  if (access (t->dir, W_OK | X_OK) != 0) {
    ts_error_set (err, TS_ERR_IO, "image: '%s': cannot write in folder '%s': %s", path, t->dir,
                  strerror (errno));
    goto fail;
  }
  /* A read-only file is not replaced behind its owner's back (cp refuses it too). */
  if (t->exists && access (t->target, W_OK) != 0) {
    ts_error_set (err, TS_ERR_IO, "image: '%s' is not writable: %s", path, strerror (errno));
    goto fail;
  }
  return TS_OK;

fail:
  out_target_clear (t);
  return err ? err->code : st;
}

ts_status
ts_output_path_check (const char *path, ts_error *err)
{
  out_target t;
  ts_status st = resolve_output (path, &t, err);

  out_target_clear (&t);
  return st;
}

static ts_status
write_file_atomic (const char *path, const out_target *t, const uint8_t *data, size_t size,
                   ts_error *err)
{
  char *tmp = NULL;
  const char *what;
  struct stat sb;
  int fd, saved;

  remove_stale_temps (t->dir);
  fd = create_temp (t->target, &tmp);
  if (fd < 0) {
    what = "cannot create a temporary file";
    goto fail;
  }
  /* The replacement keeps the replaced file's permissions; a new file has 0666 minus the
   * umask from open. */
  if (t->exists && fchmod (fd, t->mode & 07777) != 0)
    TS_LOG_D ("image: '%s': cannot keep the mode of the file replaced: %s", path,
              strerror (errno));
  what = "cannot write";
  if (!write_all (fd, data, size))
    goto fail;
  what = "cannot sync";
  if (fsync (fd) != 0)
    goto fail;
  /* Checked again just before the rename: something other than a regular file that
   * appeared at the target meanwhile is not replaced either. */
  if (lstat (t->target, &sb) == 0 && !S_ISREG (sb.st_mode)) {
    close (fd);
    unlink (tmp);
    free (tmp);
    return ts_error_set (err, TS_ERR_IO,
                         "image: '%s' became %s while writing; refusing to replace it", path,
                         ts_file_kind_name (sb.st_mode));
  }
  what = "cannot rename the temporary file over it";
  if (rename (tmp, t->target) != 0)
    goto fail;
  /* Closed after the rename, so the lock covers the temporary file for its whole life. The
   * data is already synced, so close has nothing left to report. */
  close (fd);
  free (tmp);
  sync_dir (path, t->dir);
  return TS_OK;

fail:
  saved = errno;
  if (fd >= 0)
    close (fd);
  if (tmp) {
    unlink (tmp);
    free (tmp);
  }
  return ts_error_set (err, TS_ERR_IO, "image: '%s': %s: %s", path, what, strerror (saved));
}

ts_status
ts_image_save_png (const ts_image *img, const ts_image_meta *meta, const char *path,
                   ts_error *err)
{
  uint8_t *data = NULL;
  size_t size = 0;
  char what[1024];
  out_target t;
  ts_status status;

  if (ts_image_str_empty (path))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "image: no file name to save to");
  snprintf (what, sizeof what, "image: '%s'", path);
  status = encode_png (img, meta, what, &data, &size, err);
  if (status != TS_OK)
    return status;
  status = resolve_output (path, &t, err);
  if (status == TS_OK)
    status = write_file_atomic (path, &t, data, size, err);
  out_target_clear (&t);
  free (data);
  return status;
}

/* ---- PNG reading ---------------------------------------------------------------------- */

/* Follows the chunk layout (length, type, data, CRC after the 8-byte signature) in the bytes
 * libpng reads, whatever pieces it reads them in, and stops at a text chunk over the cap
 * before libpng allocates it. */
static void
png_track_chunks (png_job *job, const uint8_t *data, size_t n)
{
  uint64_t begin = job->stream_pos, end = begin + n;

  while (job->next_chunk < end) {
    uint64_t h = job->next_chunk;
    uint32_t length;
    const uint8_t *type = job->chunk_header + 4;

    for (uint64_t i = h > begin ? h : begin; i < h + 8 && i < end; i++)
      job->chunk_header[i - h] = data[i - begin];
    if (h + 8 > end)
      break; /* the rest of the header comes with the next read */
    length = (uint32_t) job->chunk_header[0] << 24 | (uint32_t) job->chunk_header[1] << 16 |
             (uint32_t) job->chunk_header[2] << 8 | job->chunk_header[3];
    if ((memcmp (type, "tEXt", 4) == 0 || memcmp (type, "zTXt", 4) == 0 ||
         memcmp (type, "iTXt", 4) == 0) &&
        length > PNG_CHUNK_BYTES_MAX)
      job_fail (job, TS_ERR_FORMAT, "%.4s chunk of %" PRIu32 " bytes is too large (limit %zu)",
                (const char *) type, length, PNG_CHUNK_BYTES_MAX);
    job->next_chunk = h + 12 + length;
  }
  job->stream_pos = end;
}

static void
png_read_file (png_structp png, png_bytep out, size_t n)
{
  png_job *job = png_get_io_ptr (png);

  if (fread (out, 1, n, job->file) != n) {
    if (ferror (job->file))
      job_fail (job, TS_ERR_IO, "read error: %s", strerror (errno));
    job_fail (job, TS_ERR_FORMAT, "file is truncated");
  }
  png_track_chunks (job, out, n);
}

static void
png_read_memory (png_structp png, png_bytep out, size_t n)
{
  png_job *job = png_get_io_ptr (png);

  if (n > job->src_len - job->src_pos)
    job_fail (job, TS_ERR_FORMAT, "data is truncated");
  memcpy (out, job->src + job->src_pos, n);
  job->src_pos += n;
  png_track_chunks (job, out, n);
}

static void
png_read_body (png_job *job)
{
  png_structp png = job->png;
  png_infop info = job->info;
  png_uint_32 width, height;
  size_t n_bytes, row_bytes;
  int depth, color_type;

  /* Limits first: libpng checks IHDR against user limits and every chunk length against
   * the malloc cap as it reads them. */
  png_set_user_limits (png, TS_IMAGE_MAX_SIDE, TS_IMAGE_MAX_SIDE);
  png_set_chunk_cache_max (png, PNG_TEXT_CHUNKS_MAX);
  png_set_chunk_malloc_max (png, PNG_CHUNK_BYTES_MAX);
  /* Skip every ancillary chunk unread except text (IHDR, PLTE, tRNS, IDAT and IEND are
   * always handled): less of libpng is exposed to hostile data, and we ignore colour
   * management anyway. */
  png_set_keep_unknown_chunks (png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
  png_set_keep_unknown_chunks (png, PNG_HANDLE_CHUNK_AS_DEFAULT,
                               (png_const_bytep) "tEXt\0zTXt\0iTXt", 3);

  png_read_info (png, info);
  png_get_IHDR (png, info, &width, &height, &depth, &color_type, NULL, NULL, NULL);
  if ((uint64_t) width * height > TS_IMAGE_MAX_PIXELS)
    job_fail (job, TS_ERR_FORMAT,
              "%" PRIu32 "x%" PRIu32 " pixels is over the limit of %u pixels per image",
              (uint32_t) width, (uint32_t) height, TS_IMAGE_MAX_PIXELS);

  /* Everything becomes 8-bit RGB or RGBA: palette -> RGB, gray < 8 bits -> 8, tRNS ->
   * alpha, 16 -> 8 bits with rounding, gray -> RGB; libpng deinterlaces. */
  png_set_expand (png);
  png_set_scale_16 (png);
  png_set_gray_to_rgb (png);
  png_set_interlace_handling (png);
  png_read_update_info (png, info);

  job->width = width;
  job->height = height;
  job->channels = png_get_channels (png, info);
  row_bytes = png_get_rowbytes (png, info);
  if (png_get_bit_depth (png, info) != 8 || (job->channels != 3 && job->channels != 4) ||
      row_bytes != (size_t) width * (size_t) job->channels)
    job_fail (job, TS_ERR_FORMAT, "unexpected layout after conversion (%d channels)",
              job->channels);

  /* At most 64 Mi pixels * 4 bytes, so no overflow on 64-bit size_t; checked anyway. */
  if (!ts_mul_size (row_bytes, height, &n_bytes))
    job_fail (job, TS_ERR_FORMAT, "image too large");
  job->pixels = malloc (n_bytes);
  job->rows = malloc ((size_t) height * sizeof *job->rows);
  if (!job->pixels || !job->rows)
    job_fail (job, TS_ERR_NOMEM, "out of memory for %" PRIu32 "x%" PRIu32 " pixels",
              (uint32_t) width, (uint32_t) height);
  for (png_uint_32 y = 0; y < height; y++)
    job->rows[y] = job->pixels + (size_t) y * row_bytes;
  png_read_image (png, job->rows);
  /* Reads up to IEND (a file without it is truncated) and collects text chunks that
   * follow the image data. */
  png_read_end (png, info);
}

/* Text of a chunk as UTF-8: iTXt is UTF-8 by definition; tEXt/zTXt are Latin-1 by the
 * spec, but tools that write UTF-8 there exist, and Latin-1 text that happens to be valid
 * UTF-8 with non-ASCII in it ("Ã©") is rare in prompts: valid UTF-8 is taken as is. */
static char *
png_text_to_utf8 (const png_text *t)
{
  bool is_itxt =
      t->compression == PNG_ITXT_COMPRESSION_NONE || t->compression == PNG_ITXT_COMPRESSION_zTXt;
  size_t len;

  if (!t->text)
    return strdup ("");
  len = strnlen (t->text, is_itxt ? t->itxt_length : t->text_length);
  if (is_itxt || ts_image_utf8_valid (t->text, len))
    return ts_image_dup_range (t->text, len);
  return ts_image_latin1_to_utf8 (t->text, len);
}

/* Fills meta from the text chunks. Only running out of memory is an error; metadata that
 * does not parse is logged and skipped. */
static ts_status
png_read_meta (png_job *job, ts_image_meta *meta, ts_error *err)
{
  png_textp texts = NULL;
  int n_texts = 0;
  const png_text *tessera = NULL, *parameters = NULL;
  const png_text *order[2];
  ts_error sub;

  png_get_text (job->png, job->info, &texts, &n_texts);
  for (int i = 0; i < n_texts; i++) {
    if (!tessera && texts[i].key && strcmp (texts[i].key, "tessera") == 0)
      tessera = &texts[i];
    if (!parameters && texts[i].key && strcmp (texts[i].key, "parameters") == 0)
      parameters = &texts[i];
  }
  order[0] = tessera;
  order[1] = parameters;
  for (int i = 0; i < 2; i++) {
    char *text;
    ts_status status;
    if (!order[i])
      continue;
    text = png_text_to_utf8 (order[i]);
    if (!text)
      return ts_error_set (err, TS_ERR_NOMEM, "image: %s: out of memory for metadata",
                           job->name);
    status = i == 0 ? ts_image_meta_from_json (text, meta, &sub)
                    : ts_image_meta_from_parameters (text, meta, &sub);
    free (text);
    if (status == TS_OK)
      return TS_OK;
    if (status == TS_ERR_NOMEM)
      return ts_error_set (err, TS_ERR_NOMEM, "image: %s: %s", job->name, sub.message);
    TS_LOG_W ("image: %s: ignoring the '%s' text chunk: %s", job->name, order[i]->key,
              sub.message);
  }
  return TS_OK;
}

/* RGBA -> RGB in place, compositing onto black. */
static void
composite_on_black (uint8_t *px, size_t n_pixels)
{
  for (size_t i = 0; i < n_pixels; i++) {
    unsigned a = px[4 * i + 3];
    for (int c = 0; c < 3; c++)
      px[3 * i + c] = (uint8_t) ((px[4 * i + c] * a + 127) / 255);
  }
}

static ts_image *
png_load (png_job *job, ts_image_meta *meta_out, ts_error *err)
{
  ts_image *img = NULL;
  ts_status status;

  if (meta_out)
    ts_image_meta_init (meta_out);
  job->default_code = TS_ERR_FORMAT;
  job->next_chunk = 8; /* after the signature */
  job->png = png_create_read_struct (PNG_LIBPNG_VER_STRING, job, png_on_error, png_on_warning);
  if (!job->png || !(job->info = png_create_info_struct (job->png))) {
    ts_error_set (err, TS_ERR_NOMEM, "image: %s: out of memory for the PNG decoder", job->name);
    goto fail;
  }
  if (job->file)
    png_set_read_fn (job->png, job, png_read_file);
  else
    png_set_read_fn (job->png, job, png_read_memory);

  if (!png_guarded (job, png_read_body)) {
    ts_error_set (err, job->code, "image: %s: %s", job->name, job->message);
    goto fail;
  }

  if (job->channels == 4) {
    uint8_t *smaller;
    composite_on_black (job->pixels, (size_t) job->width * job->height);
    smaller = realloc (job->pixels, (size_t) job->width * job->height * 3);
    if (smaller)
      job->pixels = smaller;
  }
  if (meta_out && (status = png_read_meta (job, meta_out, err)) != TS_OK)
    goto fail;

  img = malloc (sizeof *img);
  if (!img) {
    ts_error_set (err, TS_ERR_NOMEM, "image: %s: out of memory", job->name);
    goto fail;
  }
  img->width = job->width;
  img->height = job->height;
  img->pixels = job->pixels;
  job->pixels = NULL;

fail:
  png_destroy_read_struct (&job->png, &job->info, NULL);
  free (job->rows);
  free (job->pixels);
  if (!img && meta_out)
    ts_image_meta_clear (meta_out);
  return img;
}

ts_image *
ts_image_load_png (const char *path, ts_image_meta *meta_out, ts_error *err)
{
  png_job job = { 0 };
  ts_image *img;
  char name[1024];

  if (meta_out)
    ts_image_meta_init (meta_out);
  if (ts_image_str_empty (path)) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "image: no file name to load");
    return NULL;
  }
  /* A FIFO or a device is refused by name instead of blocking the caller (ts-file). */
  if (ts_file_fopen_regular (path, "image", &job.file, NULL, err) != TS_OK)
    return NULL;
  snprintf (name, sizeof name, "'%s'", path);
  job.name = name;
  img = png_load (&job, meta_out, err);
  fclose (job.file);
  return img;
}

ts_image *
ts_image_load_png_memory (const void *data, size_t size, ts_image_meta *meta_out,
                          ts_error *err)
{
  png_job job = { .name = "PNG data", .src = data, .src_len = size };

  if (!data && size > 0) {
    if (meta_out)
      ts_image_meta_init (meta_out);
    ts_error_set (err, TS_ERR_INVALID_ARG, "image: PNG data is NULL");
    return NULL;
  }
  return png_load (&job, meta_out, err);
}
