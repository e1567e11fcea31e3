/* SPDX-License-Identifier: MIT
 *
 * demo-checker — a deterministic judge for the demo model's pictures. The demo model
 * (tools/demo-model/) is trained on flat coloured shapes with templated captions; this
 * module parses such a caption into a wanted scene, segments an RGB image by the same
 * palette (nearest colour), finds the objects as connected components and measures each
 * one (colour, area, bounding box, centroid, convex-hull solidity), then names its shape,
 * size and position, and scores the found scene against the wanted one. It is used by
 * tools/demo-eval (accuracy tables) and by the tests; it does not depend on the engine.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef enum {
  DEMO_RED, DEMO_GREEN, DEMO_BLUE, DEMO_YELLOW, DEMO_ORANGE, DEMO_PURPLE, DEMO_WHITE,
  DEMO_BLACK, DEMO_N_COLOURS
} demo_colour;

typedef enum { DEMO_CIRCLE, DEMO_SQUARE, DEMO_TRIANGLE, DEMO_STAR, DEMO_N_SHAPES } demo_shape;
typedef enum { DEMO_SMALL, DEMO_LARGE, DEMO_N_SIZES } demo_size;
typedef enum {
  DEMO_LEFT, DEMO_RIGHT, DEMO_TOP, DEMO_BOTTOM, DEMO_CENTER, DEMO_N_POSITIONS
} demo_position;

#define DEMO_MAX_OBJECTS 4

/* One object; -1 in a field means "not said" (wanted) or "not found". */
typedef struct {
  int colour, shape, size, position;
  /* measurements (found objects only) */
  int area;
  int bbox_w, bbox_h;
  double cx, cy;      /* centroid / image side, 0..1 */
  double fill;        /* area / bounding-box area */
  double solidity;    /* area / convex-hull area */
} demo_object;

typedef struct {
  int background;     /* -1: not said */
  int n_objects;
  demo_object objects[DEMO_MAX_OBJECTS];  /* found: by decreasing area */
} demo_scene;

typedef struct {
  bool colour, shape, size, position, background;
  bool both;          /* two-object scenes: both (colour, shape) pairs found */
} demo_score;

/* The palette, as tools/demo-model/make_dataset.py draws it. */
const uint8_t *demo_colour_rgb (demo_colour c);
const char *demo_colour_name (int c);
const char *demo_shape_name (int s);
const char *demo_size_name (int s);
const char *demo_position_name (int p);

/* Parses a caption ("a large red circle on the left, blue background", "a yellow star and
 * a green square"). Returns false when it names no object or more than two. */
bool demo_scene_parse (const char *caption, demo_scene *out);

/* Analyses a packed RGB8 image (width*height*3 bytes). Returns false when out of memory. */
bool demo_image_analyse (const uint8_t *rgb, int width, int height, demo_scene *found);

/* Scores a found scene against a wanted one. One-object scenes judge the largest found
 * object; two-object scenes set colour (both colours present), shape (both shapes
 * present) and both. Attributes the caption does not state count as correct. */
void demo_scene_score (const demo_scene *want, const demo_scene *found, demo_score *score);
