/* Helpers shared by the logger suites: load a shipped logger plugin from the
 * build tree, feed it events, and look at the files it wrote. */
#ifndef LM_LOGGER_TEST_UTIL_H
#define LM_LOGGER_TEST_UTIL_H

#include <stddef.h>

#include "registry.h"

typedef struct test_logger {
    lm_registry *registry;
    const lm_plugin *plugin;
    void *self;
} test_logger;

/* Loads lm_logger_<name>.so of the build tree and instantiates it with cfg
 * (which the caller still owns and destroys).  Returns the plugin's status;
 * on failure nothing is left to close. */
lm_status test_logger_open(test_logger *t, const char *name, lm_config *cfg);
lm_status test_logger_log(test_logger *t, const lm_event *ev);
void test_logger_close(test_logger *t);

/* A config for `owner` from "key=value" pairs (NULL-terminated). */
lm_config *test_config(const char *owner, ...);

/* An event with the trainer's usual fields filled. */
lm_event test_event(lm_event_kind kind, int64_t step, double elapsed, const lm_scalar *scalars, size_t n);

/* mkdtemp under /tmp; the returned string is malloc'd. */
char *test_temp_dir(const char *tag);
/* Removes the files of dir (one level) and dir itself. */
void test_remove_dir(const char *dir);
/* The whole file, NUL-terminated, malloc'd; NULL if it cannot be read. */
char *test_read_file(const char *path, size_t *len);
/* The first entry of dir whose name contains `needle`, as a malloc'd full path (NULL if none). */
char *test_find_file(const char *dir, const char *needle);
/* Number of entries of dir whose name contains `needle`. */
int test_count_files(const char *dir, const char *needle);

/* Fails the test unless s is well-formed XML (one root, balanced tags,
 * quoted attributes, only the predefined entities). */
void test_check_xml(const char *s);

/* Reading an SVG plot back. */
double test_svg_attr(const char *element, const char *name); /* numeric attribute of the element at `element` */
int test_svg_has_attr(const char *element, const char *text);  /* `text` inside the element's start tag */
typedef struct test_svg_linear {
    double a, b; /* pixel = a + b * value */
} test_svg_linear;
typedef struct test_svg_axes {
    double left, top, right, bottom; /* the plot frame: the first <rect fill="none"> */
    test_svg_linear x, y;            /* value -> pixel, fitted through the numeric tick labels */
} test_svg_axes;
/* x tick labels are the numbers below the frame, centred on their tick; y
 * tick labels the numbers left of it, 4 px below theirs (12 px text).
 * test_svg_frame also checks that the x axis starts at its first tick (a
 * run from step 0); test_svg_frame_any does not (a resumed run's axis
 * starts where it went on, between ticks). */
test_svg_axes test_svg_frame(const char *svg);
test_svg_axes test_svg_frame_any(const char *svg);
double test_svg_px(const test_svg_linear *m, double v);

#endif
