/* SPDX-License-Identifier: MIT
 *
 * Tests for tools/demo-checker: caption parsing, and the analysis of ground-truth scenes
 * drawn by a tiny anti-aliased renderer that follows tools/demo-model/make_dataset.py
 * (same palette, shape geometry, sizes and positions). Every shape, size and position is
 * drawn in several colour pairs at 128 and 256 px and must be recognised exactly; wrong
 * captions must score as wrong.
 */
#include "demo-checker.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SUPER 4

typedef struct {
  int shape;
  double cx, cy, r; /* fractions of the image side */
  int colour;
} shape_spec;

static int
polygon_of (const shape_spec *s, double side, double (*pts)[2])
{
  const double cx = s->cx * side, cy = s->cy * side, r = s->r * side;
  int n = 0;

  switch ((demo_shape) s->shape) {
  case DEMO_SQUARE: {
    const double h = 0.9 * r;
    const double sq[4][2] = { { cx - h, cy - h }, { cx + h, cy - h }, { cx + h, cy + h },
                              { cx - h, cy + h } };
    memcpy (pts, sq, sizeof sq);
    return 4;
  }
  case DEMO_TRIANGLE:
    for (int a = 90; a < 360; a += 120, n++) {
      pts[n][0] = cx + r * cos (a * G_PI / 180);
      pts[n][1] = cy - r * sin (a * G_PI / 180);
    }
    return n;
  case DEMO_STAR:
    for (int k = 0; k < 10; k++, n++) {
      const double rr = k % 2 ? 0.45 * r : r, a = (90 + 36 * k) * G_PI / 180;
      pts[n][0] = cx + rr * cos (a);
      pts[n][1] = cy - rr * sin (a);
    }
    return n;
  case DEMO_CIRCLE:
  case DEMO_N_SHAPES:
    break;
  }
  return 0;
}

static bool
inside (const shape_spec *s, double side, double x, double y)
{
  double pts[10][2];
  int n;
  bool in = false;

  if (s->shape == DEMO_CIRCLE) {
    const double dx = x - s->cx * side, dy = y - s->cy * side, r = s->r * side;
    return dx * dx + dy * dy <= r * r;
  }
  n = polygon_of (s, side, pts);
  for (int i = 0, j = n - 1; i < n; j = i++)
    if ((pts[i][1] > y) != (pts[j][1] > y)
        && x < (pts[j][0] - pts[i][0]) * (y - pts[i][1]) / (pts[j][1] - pts[i][1]) + pts[i][0])
      in = !in;
  return in;
}

/* Draws shapes over a background, SUPER x SUPER samples per pixel (box filter). */
static uint8_t *
render (int side, int background, const shape_spec *shapes, int n)
{
  uint8_t *img = g_malloc ((size_t) side * side * 3);

  for (int y = 0; y < side; y++)
    for (int x = 0; x < side; x++) {
      double acc[3] = { 0, 0, 0 };
      for (int sy = 0; sy < SUPER; sy++)
        for (int sx = 0; sx < SUPER; sx++) {
          const double px = x + (sx + 0.5) / SUPER, py = y + (sy + 0.5) / SUPER;
          int c = background;
          for (int k = 0; k < n; k++)
            if (inside (&shapes[k], side, px, py))
              c = shapes[k].colour;
          for (int ch = 0; ch < 3; ch++)
            acc[ch] += demo_colour_rgb ((demo_colour) c)[ch];
        }
      for (int ch = 0; ch < 3; ch++)
        img[((size_t) y * side + x) * 3 + ch] = (uint8_t) lround (acc[ch] / (SUPER * SUPER));
    }
  return img;
}

static const double pos_xy[DEMO_N_POSITIONS][2] = {
  [DEMO_LEFT] = { 0.27, 0.5 }, [DEMO_RIGHT] = { 0.73, 0.5 }, [DEMO_TOP] = { 0.5, 0.27 },
  [DEMO_BOTTOM] = { 0.5, 0.73 }, [DEMO_CENTER] = { 0.5, 0.5 },
};
static const double size_r[DEMO_N_SIZES] = { [DEMO_SMALL] = 0.12, [DEMO_LARGE] = 0.24 };

static void
test_parse (void)
{
  demo_scene s;

  g_assert_true (demo_scene_parse ("a large red circle on the left, blue background", &s));
  g_assert_cmpint (s.n_objects, ==, 1);
  g_assert_cmpint (s.background, ==, DEMO_BLUE);
  g_assert_cmpint (s.objects[0].colour, ==, DEMO_RED);
  g_assert_cmpint (s.objects[0].shape, ==, DEMO_CIRCLE);
  g_assert_cmpint (s.objects[0].size, ==, DEMO_LARGE);
  g_assert_cmpint (s.objects[0].position, ==, DEMO_LEFT);

  g_assert_true (demo_scene_parse ("A yellow star and a green square", &s));
  g_assert_cmpint (s.n_objects, ==, 2);
  g_assert_cmpint (s.background, ==, -1);
  g_assert_cmpint (s.objects[0].colour, ==, DEMO_YELLOW);
  g_assert_cmpint (s.objects[0].shape, ==, DEMO_STAR);
  g_assert_cmpint (s.objects[0].size, ==, -1);
  g_assert_cmpint (s.objects[1].colour, ==, DEMO_GREEN);
  g_assert_cmpint (s.objects[1].shape, ==, DEMO_SQUARE);

  g_assert_true (demo_scene_parse ("a small white triangle at the top, black background", &s));
  g_assert_cmpint (s.objects[0].position, ==, DEMO_TOP);
  g_assert_cmpint (s.background, ==, DEMO_BLACK);

  g_assert_false (demo_scene_parse ("a photo of a cat", &s));
  g_assert_false (demo_scene_parse ("a circle, a square and a star", &s));
}

/* Every shape x size x position, in three colour pairs (one of them with a mixed-colour
 * anti-aliasing rim: red on yellow gives orange edge pixels). */
static void
test_single_objects (gconstpointer data)
{
  const int side = GPOINTER_TO_INT (data);
  const int pairs[3][2] = { { DEMO_RED, DEMO_YELLOW }, { DEMO_WHITE, DEMO_BLUE },
                            { DEMO_PURPLE, DEMO_GREEN } };
  int n_checked = 0;

  for (int shape = 0; shape < DEMO_N_SHAPES; shape++)
    for (int size = 0; size < DEMO_N_SIZES; size++)
      for (int pos = 0; pos < DEMO_N_POSITIONS; pos++)
        for (int k = 0; k < 3; k++) {
          const shape_spec spec = { shape, pos_xy[pos][0], pos_xy[pos][1], size_r[size],
                                    pairs[k][0] };
          g_autofree uint8_t *img = render (side, pairs[k][1], &spec, 1);
          g_autofree char *caption = NULL;
          demo_scene want, found;
          demo_score score;

          caption = g_strdup_printf ("a %s %s %s on the %s, %s background",
                                     demo_size_name (size), demo_colour_name (pairs[k][0]),
                                     demo_shape_name (shape), demo_position_name (pos),
                                     demo_colour_name (pairs[k][1]));
          g_assert_true (demo_scene_parse (caption, &want));
          g_assert_true (demo_image_analyse (img, side, side, &found));
          if (found.n_objects != 1)
            g_test_message ("%s: %d objects", caption, found.n_objects);
          g_assert_cmpint (found.n_objects, ==, 1);
          g_test_message ("%s: fill %.3f solidity %.3f", caption, found.objects[0].fill,
                          found.objects[0].solidity);
          demo_scene_score (&want, &found, &score);
          g_assert_true (score.background);
          g_assert_true (score.colour);
          g_assert_cmpstr (demo_shape_name (found.objects[0].shape), ==, demo_shape_name (shape));
          g_assert_cmpstr (demo_size_name (found.objects[0].size), ==, demo_size_name (size));
          g_assert_cmpstr (demo_position_name (found.objects[0].position), ==,
                           demo_position_name (pos));
          n_checked++;
        }
  g_assert_cmpint (n_checked, ==, 4 * 2 * 5 * 3);
}

static void
test_two_objects (void)
{
  const shape_spec specs[2] = {
    { DEMO_STAR, 0.27, 0.5, 0.15, DEMO_YELLOW },
    { DEMO_SQUARE, 0.73, 0.5, 0.15, DEMO_GREEN },
  };
  g_autofree uint8_t *img = render (128, DEMO_BLACK, specs, 2);
  demo_scene want, found;
  demo_score score;

  g_assert_true (demo_image_analyse (img, 128, 128, &found));
  g_assert_cmpint (found.n_objects, ==, 2);

  g_assert_true (demo_scene_parse ("a yellow star and a green square, black background", &want));
  demo_scene_score (&want, &found, &score);
  g_assert_true (score.both && score.colour && score.shape && score.background);

  /* the same picture judged against wrong captions */
  g_assert_true (demo_scene_parse ("a yellow square and a green star", &want));
  demo_scene_score (&want, &found, &score);
  g_assert_false (score.both);
  g_assert_true (score.colour && score.shape);
  g_assert_true (demo_scene_parse ("a red star and a green square, white background", &want));
  demo_scene_score (&want, &found, &score);
  g_assert_false (score.both || score.colour || score.background);
}

static void
test_wrong_single (void)
{
  const shape_spec spec = { DEMO_SQUARE, 0.73, 0.5, 0.12, DEMO_RED };
  g_autofree uint8_t *img = render (128, DEMO_WHITE, &spec, 1);
  demo_scene want, found;
  demo_score score;

  g_assert_true (demo_image_analyse (img, 128, 128, &found));
  g_assert_true (demo_scene_parse ("a large blue circle on the left, black background", &want));
  demo_scene_score (&want, &found, &score);
  g_assert_false (score.colour || score.shape || score.size || score.position
                  || score.background);
}

static void
test_empty_and_noise (void)
{
  g_autofree uint8_t *img = render (64, DEMO_ORANGE, NULL, 0);
  demo_scene want, found;
  demo_score score;
  guint32 state = 12345;

  g_assert_true (demo_image_analyse (img, 64, 64, &found));
  g_assert_cmpint (found.n_objects, ==, 0);
  g_assert_cmpint (found.background, ==, DEMO_ORANGE);
  g_assert_true (demo_scene_parse ("a small red star in the center", &want));
  demo_scene_score (&want, &found, &score);
  g_assert_false (score.colour || score.shape);

  /* salt-and-pepper noise is not an object */
  for (int i = 0; i < 64 * 64; i++) {
    state = state * 1664525u + 1013904223u;
    if ((state >> 24) < 20)
      memcpy (img + 3 * i, demo_colour_rgb (DEMO_BLUE), 3);
  }
  g_assert_true (demo_image_analyse (img, 64, 64, &found));
  g_assert_cmpint (found.n_objects, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/demo-checker/parse", test_parse);
  g_test_add_data_func ("/demo-checker/single-objects-128", GINT_TO_POINTER (128),
                        test_single_objects);
  g_test_add_data_func ("/demo-checker/single-objects-256", GINT_TO_POINTER (256),
                        test_single_objects);
  g_test_add_func ("/demo-checker/two-objects", test_two_objects);
  g_test_add_func ("/demo-checker/wrong-single", test_wrong_single);
  g_test_add_func ("/demo-checker/empty-and-noise", test_empty_and_noise);
  return g_test_run ();
}
