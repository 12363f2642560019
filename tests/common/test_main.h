/* The end of every Check test's main(), in one place.
 *
 * Each test executable used to repeat the same five lines: create a runner
 * from its suites, run them with CK_NORMAL output, count the failures, free
 * the runner and turn the count into an exit status.  This header does that
 * once, so a main() only says which suites it runs (and anything it must do
 * first, such as a GPU probe).  Header-only, because tests/common is already
 * on every test's include path and this needs no library of its own.
 *
 *     return lm_test_run_suites(a_suite(), b_suite(), NULL);
 *
 * Suite lists end with NULL; the suites run in the order given. */
#ifndef LMCORE_TESTS_TEST_MAIN_H
#define LMCORE_TESTS_TEST_MAIN_H

#include <check.h>
#include <stdarg.h>
#include <stdlib.h>

/* Runs first and the suites after it (up to NULL) in one runner with the
 * given fork status and CK_NORMAL output; returns how many tests failed.
 * CK_FORK_GETENV is Check's default (fork unless CK_FORK=no); CK_NOFORK is
 * for the CUDA tests, whose context lives in this process and would not
 * survive into a forked child. */
static inline int lm_test_count_failures(enum fork_status fork_mode, Suite *first, ...) {
    SRunner *runner = srunner_create(first);
    va_list more;
    va_start(more, first);
    for (Suite *s = va_arg(more, Suite *); s != NULL; s = va_arg(more, Suite *))
        srunner_add_suite(runner, s);
    va_end(more);
    srunner_set_fork_status(runner, fork_mode);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed;
}

/* The exit status CTest expects from a count of failed tests. */
static inline int lm_test_exit_status(int failed) { return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE; }

/* Runs the NULL-terminated suites and returns main()'s exit status: in
 * Check's default fork mode, or without forking (CUDA tests). */
#define lm_test_run_suites(...) lm_test_exit_status(lm_test_count_failures(CK_FORK_GETENV, __VA_ARGS__))
#define lm_test_run_suites_nofork(...) lm_test_exit_status(lm_test_count_failures(CK_NOFORK, __VA_ARGS__))

#endif
