/* SPDX-License-Identifier: MIT
 *
 * tessera-gallery-item.c — a gallery entry. The PNG is decoded with the engine's reader
 * in a GTask thread, which also scales it down to a thumbnail; the texture is made back
 * on the main thread.
 */
#include "tessera-gallery-item.h"

#define THUMBNAIL_PX 320

struct _TesseraGalleryItem
{
  GObject parent_instance;

  GFile *file;
  gint64 mtime;
  GdkPaintable *thumbnail;
  TesseraImageMeta *meta;
  guint width, height;
  gboolean loading, loaded;
};

enum {
  PROP_0,
  PROP_FILE,
  PROP_THUMBNAIL,
  PROP_META,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (TesseraGalleryItem, tessera_gallery_item, G_TYPE_OBJECT)

typedef struct {
  GBytes *rgb;
  int w, h;
  guint width, height;
  TesseraImageMeta *meta;
} Thumb;

static void
thumb_free (Thumb *t)
{
  g_clear_pointer (&t->rgb, g_bytes_unref);
  tessera_image_meta_free (t->meta);
  g_free (t);
}

/* Box filter down to at most THUMBNAIL_PX on the long side. */
static GBytes *
downscale (const ts_image *img, int *out_w, int *out_h)
{
  guint f = MAX (1, (MAX (img->width, img->height) + THUMBNAIL_PX - 1) / THUMBNAIL_PX);
  int w = MAX (1, (int) (img->width / f)), h = MAX (1, (int) (img->height / f));
  guint8 *px = g_malloc ((gsize) w * h * 3);

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        {
          guint sum = 0;

          for (guint dy = 0; dy < f; dy++)
            for (guint dx = 0; dx < f; dx++)
              sum += img->pixels[((gsize) (y * f + dy) * img->width + x * f + dx) * 3 + c];
          px[((gsize) y * w + x) * 3 + c] = (guint8) ((sum + f * f / 2) / (f * f));
        }
  *out_w = w;
  *out_h = h;
  return g_bytes_new_take (px, (gsize) w * h * 3);
}

static void
load_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  GFile *file = task_data;
  g_autofree char *path = g_file_get_path (file);
  ts_image_meta meta;
  ts_error err;
  g_autoptr (ts_image) img = NULL;
  Thumb *t;
  GError *error = NULL;

  (void) source;
  (void) cancellable;
  ts_image_meta_init (&meta);
  img = path ? ts_image_load_png (path, &meta, &err) : NULL;
  if (!img)
    {
      if (path)
        tessera_engine_error_from_ts (&err, &error);
      else
        error = g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "not a local file");
      g_task_return_error (task, error);
      return;
    }
  t = g_new0 (Thumb, 1);
  t->rgb = downscale (img, &t->w, &t->h);
  t->width = img->width;
  t->height = img->height;
  if ((meta.prompt && meta.prompt[0]) || meta.steps > 0)
    t->meta = tessera_image_meta_dup (&meta);
  ts_image_meta_clear (&meta);
  g_task_return_pointer (task, t, (GDestroyNotify) thumb_free);
}

static void
load_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  TesseraGalleryItem *self = TESSERA_GALLERY_ITEM (source);
  g_autoptr (GError) error = NULL;
  Thumb *t = g_task_propagate_pointer (G_TASK (result), &error);

  (void) user_data;
  self->loading = FALSE;
  self->loaded = TRUE;
  if (!t)
    {
      g_debug ("gallery: cannot read %s: %s", g_file_peek_path (self->file), error->message);
      return;
    }
  self->width = t->width;
  self->height = t->height;
  g_clear_object (&self->thumbnail);
  self->thumbnail = GDK_PAINTABLE (gdk_memory_texture_new (t->w, t->h, GDK_MEMORY_R8G8B8, t->rgb,
                                                           (gsize) t->w * 3));
  self->meta = g_steal_pointer (&t->meta);
  thumb_free (t);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_META]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_THUMBNAIL]);
}

void
tessera_gallery_item_load (TesseraGalleryItem *self)
{
  g_autoptr (GTask) task = NULL;

  g_return_if_fail (TESSERA_IS_GALLERY_ITEM (self));
  if (self->loading || self->loaded)
    return;
  self->loading = TRUE;
  task = g_task_new (self, NULL, load_done, NULL);
  g_task_set_source_tag (task, tessera_gallery_item_load);
  g_task_set_task_data (task, g_object_ref (self->file), g_object_unref);
  g_task_run_in_thread (task, load_thread);
}

static void
tessera_gallery_item_finalize (GObject *object)
{
  TesseraGalleryItem *self = TESSERA_GALLERY_ITEM (object);

  g_clear_object (&self->file);
  g_clear_object (&self->thumbnail);
  tessera_image_meta_free (self->meta);
  G_OBJECT_CLASS (tessera_gallery_item_parent_class)->finalize (object);
}

static void
tessera_gallery_item_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  TesseraGalleryItem *self = TESSERA_GALLERY_ITEM (object);

  switch (prop_id)
    {
    case PROP_FILE:
      g_value_set_object (value, self->file);
      break;
    case PROP_THUMBNAIL:
      g_value_set_object (value, self->thumbnail);
      break;
    case PROP_META:
      g_value_set_boxed (value, self->meta);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tessera_gallery_item_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  TesseraGalleryItem *self = TESSERA_GALLERY_ITEM (object);

  switch (prop_id)
    {
    case PROP_FILE:
      self->file = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tessera_gallery_item_class_init (TesseraGalleryItemClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = tessera_gallery_item_finalize;
  object_class->get_property = tessera_gallery_item_get_property;
  object_class->set_property = tessera_gallery_item_set_property;

  properties[PROP_FILE] = g_param_spec_object ("file", NULL, NULL, G_TYPE_FILE,
                                               G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_THUMBNAIL] = g_param_spec_object ("thumbnail", NULL, NULL, GDK_TYPE_PAINTABLE,
                                                    G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_META] = g_param_spec_boxed ("meta", NULL, NULL, TESSERA_TYPE_IMAGE_META,
                                              G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
tessera_gallery_item_init (TesseraGalleryItem *self)
{
  (void) self;
}

TesseraGalleryItem *
tessera_gallery_item_new (GFile *file, gint64 mtime)
{
  TesseraGalleryItem *self;

  g_return_val_if_fail (G_IS_FILE (file), NULL);
  self = g_object_new (TESSERA_TYPE_GALLERY_ITEM, "file", file, NULL);
  self->mtime = mtime;
  return self;
}

GFile *
tessera_gallery_item_get_file (TesseraGalleryItem *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY_ITEM (self), NULL);
  return self->file;
}

gint64
tessera_gallery_item_get_mtime (TesseraGalleryItem *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY_ITEM (self), 0);
  return self->mtime;
}


const TesseraImageMeta *
tessera_gallery_item_get_meta (TesseraGalleryItem *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY_ITEM (self), NULL);
  return self->meta;
}

guint
tessera_gallery_item_get_width (TesseraGalleryItem *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY_ITEM (self), 0);
  return self->width;
}

guint
tessera_gallery_item_get_height (TesseraGalleryItem *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY_ITEM (self), 0);
  return self->height;
}

gboolean
tessera_gallery_item_is_loaded (TesseraGalleryItem *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY_ITEM (self), FALSE);
  return self->loaded;
}
