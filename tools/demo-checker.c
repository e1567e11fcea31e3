/* SPDX-License-Identifier: MIT
 *
 * demo-checker — segmentation and scoring of demo-model pictures (see demo-checker.h).
 *
 * Pixels take the nearest palette colour when it is close enough (else they stay
 * unlabelled). The background is the most common label on the image border. Objects are
 * 4-connected components of one non-background label; anti-aliased or blurred rims form
 * thin components of a mixed colour (red on yellow gives orange pixels), so a component
 * counts only when it is large enough and mostly interior (all four neighbours share its
 * label). Shapes are told apart by two scale-free measures: convex-hull solidity (a star
 * is about 0.56, the convex shapes near 1) and bounding-box fill (square 1, circle 0.79,
 * triangle 0.5). Size is the longer bounding-box side, position the centroid.
 */
#include "demo-checker.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLOUR_DIST 90.0  /* RGB distance beyond which a pixel stays unlabelled */
#define MIN_AREA_FRACTION 0.003
#define MIN_INTERIOR_FRACTION 0.35
#define STAR_MAX_SOLIDITY 0.78
#define SQUARE_MIN_FILL 0.89
#define TRIANGLE_MAX_FILL 0.64
#define LARGE_MIN_SIDE 0.31   /* longer bbox side / image side */
#define CENTER_MAX_OFFSET 0.12

static const uint8_t palette[DEMO_N_COLOURS][3] = {
  [DEMO_RED] = { 220, 30, 30 },     [DEMO_GREEN] = { 30, 170, 50 },
  [DEMO_BLUE] = { 30, 60, 220 },    [DEMO_YELLOW] = { 240, 220, 30 },
  [DEMO_ORANGE] = { 245, 140, 20 }, [DEMO_PURPLE] = { 140, 40, 180 },
  [DEMO_WHITE] = { 245, 245, 245 }, [DEMO_BLACK] = { 15, 15, 15 },
};
static const char *const colour_names[DEMO_N_COLOURS] = {
  "red", "green", "blue", "yellow", "orange", "purple", "white", "black",
};
static const char *const shape_names[DEMO_N_SHAPES] = { "circle", "square", "triangle", "star" };
static const char *const size_names[DEMO_N_SIZES] = { "small", "large" };
static const char *const position_names[DEMO_N_POSITIONS] = {
  "left", "right", "top", "bottom", "center",
};

const uint8_t *
demo_colour_rgb (demo_colour c)
{
  return palette[c];
}

static const char *
name_of (const char *const *names, int n, int i)
{
  return i >= 0 && i < n ? names[i] : "-";
}

const char *
demo_colour_name (int c)
{
  return name_of (colour_names, DEMO_N_COLOURS, c);
}

const char *
demo_shape_name (int s)
{
  return name_of (shape_names, DEMO_N_SHAPES, s);
}

const char *
demo_size_name (int s)
{
  return name_of (size_names, DEMO_N_SIZES, s);
}

const char *
demo_position_name (int p)
{
  return name_of (position_names, DEMO_N_POSITIONS, p);
}

/* ---- caption parsing ---- */

static int
lookup (const char *const *names, int n, const char *word)
{
  for (int i = 0; i < n; i++)
    if (strcmp (names[i], word) == 0)
      return i;
  return -1;
}

static void
object_clear (demo_object *o)
{
  memset (o, 0, sizeof *o);
  o->colour = o->shape = o->size = o->position = -1;
}

bool
demo_scene_parse (const char *caption, demo_scene *out)
{
  char word[32];
  int pending_colour = -1, pending_size = -1;
  const char *p = caption;

  memset (out, 0, sizeof *out);
  out->background = -1;
  for (int i = 0; i < DEMO_MAX_OBJECTS; i++)
    object_clear (&out->objects[i]);

  while (*p) {
    size_t n = 0;
    int v;

    while (*p && !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z'))
      p++;
    while (((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) && n + 1 < sizeof word)
      word[n++] = (char) (*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p), p++;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
      p++;
    word[n] = '\0';
    if (n == 0)
      continue;

    if (strcmp (word, "background") == 0) {
      out->background = pending_colour;
      pending_colour = -1;
    } else if (strcmp (word, "centre") == 0 || strcmp (word, "middle") == 0) {
      if (out->n_objects > 0)
        out->objects[out->n_objects - 1].position = DEMO_CENTER;
    } else if ((v = lookup (colour_names, DEMO_N_COLOURS, word)) >= 0) {
      pending_colour = v;
    } else if ((v = lookup (size_names, DEMO_N_SIZES, word)) >= 0) {
      pending_size = v;
    } else if ((v = lookup (shape_names, DEMO_N_SHAPES, word)) >= 0) {
      demo_object *o;
      if (out->n_objects == 2)
        return false;
      o = &out->objects[out->n_objects++];
      o->shape = v;
      o->colour = pending_colour;
      o->size = pending_size;
      pending_colour = pending_size = -1;
    } else if ((v = lookup (position_names, DEMO_N_POSITIONS, word)) >= 0) {
      if (out->n_objects > 0)
        out->objects[out->n_objects - 1].position = v;
    }
  }
  return out->n_objects > 0;
}

/* ---- analysis ---- */

static int
nearest_colour (const uint8_t *px)
{
  int best = -1;
  double best_d = MAX_COLOUR_DIST * MAX_COLOUR_DIST;

  for (int c = 0; c < DEMO_N_COLOURS; c++) {
    double dr = px[0] - palette[c][0], dg = px[1] - palette[c][1], db = px[2] - palette[c][2];
    double d = dr * dr + dg * dg + db * db;
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

static double
cross (const double *o, const double *a, const double *b)
{
  return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

/* Area of the convex hull of n points given in increasing (x, y) order (monotone chain).
 * hull needs room for 2n points. */
static double
hull_area (const double (*pts)[2], int n, double (*hull)[2])
{
  int k = 0;
  double area = 0.0;

  for (int i = 0; i < n; i++) {
    while (k >= 2 && cross (hull[k - 2], hull[k - 1], pts[i]) <= 0)
      k--;
    memcpy (hull[k++], pts[i], sizeof pts[i]);
  }
  for (int i = n - 2, lower = k + 1; i >= 0; i--) {
    while (k >= lower && cross (hull[k - 2], hull[k - 1], pts[i]) <= 0)
      k--;
    memcpy (hull[k++], pts[i], sizeof pts[i]);
  }
  for (int i = 0; i + 1 < k; i++)
    area += hull[i][0] * hull[i + 1][1] - hull[i + 1][0] * hull[i][1];
  return fabs (area) / 2.0;
}

static int
cmp_point (const void *a, const void *b)
{
  const double *p = a, *q = b;
  if (p[0] != q[0])
    return p[0] < q[0] ? -1 : 1;
  return (p[1] > q[1]) - (p[1] < q[1]);
}

static int
cmp_area_desc (const void *a, const void *b)
{
  const demo_object *p = a, *q = b;
  return (q->area > p->area) - (q->area < p->area);
}

static void
classify (demo_object *o, int side)
{
  const double longer = (double) (o->bbox_w > o->bbox_h ? o->bbox_w : o->bbox_h) / side;
  const double dx = o->cx - 0.5, dy = o->cy - 0.5;

  if (o->solidity < STAR_MAX_SOLIDITY)
    o->shape = DEMO_STAR;
  else if (o->fill >= SQUARE_MIN_FILL)
    o->shape = DEMO_SQUARE;
  else if (o->fill < TRIANGLE_MAX_FILL)
    o->shape = DEMO_TRIANGLE;
  else
    o->shape = DEMO_CIRCLE;
  o->size = longer >= LARGE_MIN_SIDE ? DEMO_LARGE : DEMO_SMALL;
  if (fabs (dx) < CENTER_MAX_OFFSET && fabs (dy) < CENTER_MAX_OFFSET)
    o->position = DEMO_CENTER;
  else if (fabs (dx) >= fabs (dy))
    o->position = dx < 0 ? DEMO_LEFT : DEMO_RIGHT;
  else
    o->position = dy < 0 ? DEMO_TOP : DEMO_BOTTOM;
}

bool
demo_image_analyse (const uint8_t *rgb, int width, int height, demo_scene *found)
{
  const size_t n = (size_t) width * height;
  const int side = width < height ? width : height;
  const int min_area = (int) (MIN_AREA_FRACTION * (double) n) + 1;
  int8_t *label = malloc (n);
  uint8_t *seen = calloc (n, 1);
  int32_t *queue = malloc (n * sizeof *queue);
  int *row_min = malloc ((size_t) height * sizeof *row_min);
  int *row_max = malloc ((size_t) height * sizeof *row_max);
  double (*pts)[2] = malloc ((size_t) height * 4 * sizeof *pts);
  double (*hull)[2] = malloc ((size_t) height * 8 * sizeof *hull);
  demo_object objs[64];
  int n_objs = 0, border[DEMO_N_COLOURS] = { 0 }, bg = -1;
  bool ok = false;

  memset (found, 0, sizeof *found);
  found->background = -1;
  for (int i = 0; i < DEMO_MAX_OBJECTS; i++)
    object_clear (&found->objects[i]);
  if (!label || !seen || !queue || !row_min || !row_max || !pts || !hull)
    goto fail;

  for (size_t i = 0; i < n; i++)
    label[i] = (int8_t) nearest_colour (rgb + 3 * i);
  for (int x = 0; x < width; x++) {
    int l;
    if ((l = label[x]) >= 0)
      border[l]++;
    if ((l = label[(size_t) (height - 1) * width + x]) >= 0)
      border[l]++;
  }
  for (int y = 0; y < height; y++) {
    int l;
    if ((l = label[(size_t) y * width]) >= 0)
      border[l]++;
    if ((l = label[(size_t) y * width + width - 1]) >= 0)
      border[l]++;
  }
  for (int c = 0; c < DEMO_N_COLOURS; c++)
    if (border[c] > 0 && (bg < 0 || border[c] > border[bg]))
      bg = c;
  found->background = bg;

  for (size_t start = 0; start < n; start++) {
    const int l = label[start];
    size_t head = 0, tail = 0;
    int area = 0, interior = 0, x0 = width, x1 = -1, y0 = height, y1 = -1, n_pts = 0;
    double sx = 0, sy = 0;

    if (seen[start] || l < 0 || l == bg)
      continue;
    for (int y = 0; y < height; y++) {
      row_min[y] = width;
      row_max[y] = -1;
    }
    seen[start] = 1;
    queue[tail++] = (int32_t) start;
    while (head < tail) {
      const int32_t i = queue[head++];
      const int x = (int) (i % width), y = (int) (i / width);
      const int nx[4] = { x - 1, x + 1, x, x };
      const int ny[4] = { y, y, y - 1, y + 1 };
      int same = 0;

      area++;
      sx += x + 0.5;
      sy += y + 0.5;
      if (x < row_min[y]) row_min[y] = x;
      if (x > row_max[y]) row_max[y] = x;
      for (int k = 0; k < 4; k++) {
        size_t j;
        if (nx[k] < 0 || nx[k] >= width || ny[k] < 0 || ny[k] >= height)
          continue;
        j = (size_t) ny[k] * width + nx[k];
        if (label[j] != l)
          continue;
        same++;
        if (!seen[j]) {
          seen[j] = 1;
          queue[tail++] = (int32_t) j;
        }
      }
      if (same == 4)
        interior++;
    }
    if (area < min_area || interior < MIN_INTERIOR_FRACTION * area || n_objs == 64)
      continue;

    for (int y = 0; y < height; y++) {
      if (row_max[y] < 0)
        continue;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      if (row_min[y] < x0) x0 = row_min[y];
      if (row_max[y] > x1) x1 = row_max[y];
      /* pixel corners, so the hull covers every pixel square */
      pts[n_pts][0] = row_min[y];     pts[n_pts++][1] = y;
      pts[n_pts][0] = row_min[y];     pts[n_pts++][1] = y + 1;
      pts[n_pts][0] = row_max[y] + 1; pts[n_pts++][1] = y;
      pts[n_pts][0] = row_max[y] + 1; pts[n_pts++][1] = y + 1;
    }
    qsort (pts, (size_t) n_pts, sizeof *pts, cmp_point);

    demo_object *o = &objs[n_objs++];
    object_clear (o);
    o->colour = l;
    o->area = area;
    o->bbox_w = x1 - x0 + 1;
    o->bbox_h = y1 - y0 + 1;
    o->cx = sx / area / width;
    o->cy = sy / area / height;
    o->fill = (double) area / ((double) o->bbox_w * o->bbox_h);
    o->solidity = area / hull_area ((const double (*)[2]) pts, n_pts, hull);
    classify (o, side);
  }

  qsort (objs, (size_t) n_objs, sizeof objs[0], cmp_area_desc);
  found->n_objects = n_objs < DEMO_MAX_OBJECTS ? n_objs : DEMO_MAX_OBJECTS;
  memcpy (found->objects, objs, (size_t) found->n_objects * sizeof objs[0]);
  ok = true;
fail:
  free (label);
  free (seen);
  free (queue);
  free (row_min);
  free (row_max);
  free (pts);
  free (hull);
  return ok;
}

/* ---- scoring ---- */

static bool
attr_ok (int want, int got)
{
  return want < 0 || want == got;
}

static bool
has (const demo_scene *found, int colour, int shape, int skip)
{
  for (int i = 0; i < found->n_objects; i++)
    if (i != skip && attr_ok (colour, found->objects[i].colour)
        && attr_ok (shape, found->objects[i].shape))
      return true;
  return false;
}

void
demo_scene_score (const demo_scene *want, const demo_scene *found, demo_score *s)
{
  memset (s, 0, sizeof *s);
  s->background = attr_ok (want->background, found->background);
  if (want->n_objects == 1) {
    const demo_object *w = &want->objects[0];
    if (found->n_objects == 0)
      return;
    const demo_object *f = &found->objects[0];
    s->colour = attr_ok (w->colour, f->colour);
    s->shape = attr_ok (w->shape, f->shape);
    s->size = attr_ok (w->size, f->size);
    s->position = attr_ok (w->position, f->position);
    s->both = s->colour && s->shape;
  } else if (want->n_objects == 2) {
    const demo_object *a = &want->objects[0], *b = &want->objects[1];
    s->colour = has (found, a->colour, -1, -1) && has (found, b->colour, -1, -1);
    s->shape = has (found, -1, a->shape, -1) && has (found, -1, b->shape, -1);
    s->size = s->position = true;
    for (int i = 0; i < found->n_objects && !s->both; i++)
      if (attr_ok (a->colour, found->objects[i].colour)
          && attr_ok (a->shape, found->objects[i].shape))
        s->both = has (found, b->colour, b->shape, i);
  }
}
