/* Resident memory of this process, for tests that measure what code keeps
 * (tests/memory).  Header-only, like the rest of tests/common. */
#ifndef LMCORE_TESTS_PROCESS_MEMORY_H
#define LMCORE_TESTS_PROCESS_MEMORY_H

#include <stdio.h>
#include <unistd.h>

/* Resident set size in KiB (/proc/self/statm); 0 when it cannot be read. */
static inline long lm_test_rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

#endif
