#include "logger_test_util.h"

#include <check.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

lm_status test_logger_open(test_logger *t, const char *name, lm_config *cfg) {
    memset(t, 0, sizeof *t);
    ck_assert_int_eq(lm_registry_create(&t->registry), LM_OK);
    char path[1024];
    snprintf(path, sizeof path, "%s/lm_logger_%s.so", LM_TEST_PLUGIN_DIR, name);
    lm_status s = lm_registry_load_file(t->registry, path);
    ck_assert_msg(s == LM_OK, "cannot load %s: %s", path, lm_error_message());
    ck_assert_int_eq(lm_registry_find(t->registry, LM_KIND_LOGGER, name, &t->plugin), LM_OK);
    s = lm_plugin_instantiate(t->plugin, cfg, &t->self);
    if (s != LM_OK) {
        lm_registry_destroy(t->registry);
        memset(t, 0, sizeof *t);
    }
    return s;
}

lm_status test_logger_log(test_logger *t, const lm_event *ev) { return t->plugin->vtable.logger.log(t->self, ev); }

void test_logger_close(test_logger *t) {
    if (t->self) lm_plugin_release(t->plugin, t->self);
    if (t->registry) lm_registry_destroy(t->registry);
    memset(t, 0, sizeof *t);
}

lm_config *test_config(const char *owner, ...) {
    lm_config *cfg;
    ck_assert_int_eq(lm_config_create(&cfg, owner), LM_OK);
    va_list ap;
    va_start(ap, owner);
    for (const char *pair = va_arg(ap, const char *); pair; pair = va_arg(ap, const char *))
        ck_assert_int_eq(lm_config_set_parsed(cfg, pair), LM_OK);
    va_end(ap);
    return cfg;
}

lm_event test_event(lm_event_kind kind, int64_t step, double elapsed, const lm_scalar *scalars, size_t n) {
    lm_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.step = step;
    ev.total_steps = 6;
    ev.epoch = (double)step / 2.0;
    ev.total_epochs = 3;
    ev.elapsed = elapsed;
    ev.scalars = scalars;
    ev.n_scalars = n;
    return ev;
}

char *test_temp_dir(const char *tag) {
    char tmpl[256];
    snprintf(tmpl, sizeof tmpl, "/tmp/lm_test_%s_XXXXXX", tag);
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    char *dir = malloc(strlen(tmpl) + 1);
    strcpy(dir, tmpl);
    return dir;
}

void test_remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

char *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *data = malloc(cap);
    for (;;) {
        n += fread(data + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        cap *= 2;
        data = realloc(data, cap);
    }
    fclose(f);
    data[n] = '\0';
    if (len) *len = n;
    return data;
}

char *test_find_file(const char *dir, const char *needle) {
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char *found = NULL;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (!strstr(e->d_name, needle)) continue;
        found = malloc(strlen(dir) + strlen(e->d_name) + 2);
        sprintf(found, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    return found;
}

int test_count_files(const char *dir, const char *needle) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += strstr(e->d_name, needle) != NULL;
    closedir(d);
    return n;
}

/* ---- a minimal XML well-formedness check ---------------------------------------------- */

void test_check_xml(const char *s) {
    const char *stack[64];
    size_t stack_len[64];
    int depth = 0, roots = 0;
    const char *p = s;
    if (strncmp(p, "<?xml", 5) == 0) p = strstr(p, "?>") + 2;
    while (*p) {
        if (*p == '&') {
            ck_assert_msg(strncmp(p, "&amp;", 5) == 0 || strncmp(p, "&lt;", 4) == 0 || strncmp(p, "&gt;", 4) == 0 ||
                              strncmp(p, "&quot;", 6) == 0,
                          "bare '&' at: %.30s", p);
            p++;
            continue;
        }
        if (*p != '<') {
            p++;
            continue;
        }
        if (p[1] == '/') {
            const char *name = p + 2;
            size_t n = strcspn(name, ">");
            ck_assert_msg(depth > 0, "closing tag without an opening one at: %.30s", p);
            depth--;
            ck_assert_msg(n == stack_len[depth] && strncmp(name, stack[depth], n) == 0, "mismatched </%.*s>",
                          (int)n, name);
            p = name + n + 1;
            continue;
        }
        const char *name = p + 1;
        size_t n = strcspn(name, " />");
        ck_assert_msg(n > 0, "empty tag name at: %.30s", p);
        p = name + n;
        for (;;) { /* attributes: name="value" */
            while (*p == ' ' || *p == '\n') p++;
            if (*p == '>' || (p[0] == '/' && p[1] == '>')) break;
            size_t an = strcspn(p, "=");
            ck_assert_msg(an > 0 && p[an] == '=' && p[an + 1] == '"', "bad attribute at: %.30s", p);
            const char *value = p + an + 2, *close = strchr(value, '"');
            ck_assert_ptr_nonnull(close);
            for (const char *c = value; c < close; c++) ck_assert_msg(*c != '<', "'<' inside an attribute");
            p = close + 1;
        }
        if (depth == 0) roots++;
        if (*p == '/') {
            p += 2;
            continue;
        }
        ck_assert_int_lt(depth, 64);
        stack[depth] = name;
        stack_len[depth++] = n;
        p++;
    }
    ck_assert_int_eq(depth, 0);
    ck_assert_int_eq(roots, 1);
}

/* ---- reading the plot back --------------------------------------------------------------- */

double test_svg_attr(const char *element, const char *name) {
    char key[64];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *end = strchr(element, '>'), *a = strstr(element, key);
    ck_assert_msg(a && a < end, "element lacks %s: %.60s", name, element);
    return strtod(a + strlen(key), NULL);
}

int test_svg_has_attr(const char *element, const char *text) {
    const char *a = strstr(element, text), *end = strchr(element, '>');
    return a && a < end;
}

/* The plot frame, then the value -> pixel maps fitted through the tick
 * labels: x labels are centred under their tick, y labels sit 4 px below
 * theirs (baseline of 12 px text). */
test_svg_axes test_svg_frame_any(const char *svg) {
    test_svg_axes f;
    memset(&f, 0, sizeof f);
    const char *r = strstr(svg, "<rect x=");
    while (r && !test_svg_has_attr(r, "fill=\"none\"")) r = strstr(r + 1, "<rect x=");
    ck_assert_ptr_nonnull(r);
    f.left = test_svg_attr(r, "x");
    f.top = test_svg_attr(r, "y");
    f.right = f.left + test_svg_attr(r, "width");
    f.bottom = f.top + test_svg_attr(r, "height");
    double xv[64], xp[64], yv[64], yp[64];
    int nx = 0, ny = 0;
    for (const char *t = strstr(svg, "<text "); t; t = strstr(t + 1, "<text ")) {
        const char *content = strchr(t, '>') + 1;
        char *end;
        double v = strtod(content, &end);
        if (end == content || *end != '<') continue; /* not a number */
        double x = test_svg_attr(t, "x"), y = test_svg_attr(t, "y");
        /* Only the frame's own ticks: a panel below it (the learning rate)
         * has labels of its own. */
        if (x < f.left && y <= f.bottom + 10 && ny < 64) yv[ny] = v, yp[ny++] = y - 4;
        else if (y > f.bottom && y < f.bottom + 30 && nx < 64) xv[nx] = v, xp[nx++] = x;
    }
    ck_assert_int_ge(nx, 3);
    ck_assert_int_ge(ny, 3);
    f.x.b = (xp[nx - 1] - xp[0]) / (xv[nx - 1] - xv[0]);
    f.x.a = xp[0] - f.x.b * xv[0];
    f.y.b = (yp[ny - 1] - yp[0]) / (yv[ny - 1] - yv[0]);
    f.y.a = yp[0] - f.y.b * yv[0];
    ck_assert(f.y.b < 0); /* larger losses higher up */
    return f;
}

test_svg_axes test_svg_frame(const char *svg) {
    test_svg_axes f = test_svg_frame_any(svg);
    /* The x axis starts at its first tick: the leftmost label sits on the frame. */
    const char *t = strstr(svg, "<text ");
    double first = f.right;
    for (; t; t = strstr(t + 1, "<text ")) {
        const char *content = strchr(t, '>') + 1;
        char *end;
        strtod(content, &end);
        if (end == content || *end != '<') continue;
        double x = test_svg_attr(t, "x"), y = test_svg_attr(t, "y");
        if (x >= f.left && y > f.bottom && y < f.bottom + 30 && x < first) first = x; /* test_svg_frame_any's rule */
    }
    ck_assert_double_eq_tol(first, f.left, 0.6);
    return f;
}

double test_svg_px(const test_svg_linear *m, double v) { return m->a + m->b * v; }

