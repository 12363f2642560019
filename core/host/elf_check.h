/* Checking a plugin file before dlopen() maps it.
 *
 * dlopen() trusts the file: a shared object cut short (a copy that was
 * interrupted, a full disk) is mapped beyond its end, and the loader's
 * first touch of the missing pages kills the process with SIGBUS.  So the
 * registry checks first that the file is a whole ELF shared object for
 * this machine: the header (magic, 64-bit, byte order, version, ET_DYN,
 * the machine), the program header table and every segment's file range,
 * and the section header table, all inside the file's size, and the
 * dynamic section that dlopen() reads first: terminated, with its string,
 * symbol and hash tables, pointing into bytes the file provides.  A file that
 * fails is refused with the reason, as any other unloadable file is.
 * Internal to liblmcore (the registry); fuzzed by fuzz/fuzz_elf_check.c. */
#ifndef LMCORE_ELF_CHECK_H
#define LMCORE_ELF_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "lmcore/status.h"

/* Checks a whole file's bytes.  LM_ERR_FORMAT with the reason (no path)
 * when it is no whole shared object for this machine. */
LM_API lm_status lm_elf_check_image(const unsigned char *data, size_t size);
/* Checks the file at `path` (opened without blocking, refused unless a
 * regular file, mapped within its size).  Messages name the path. */
LM_API lm_status lm_elf_check_file(const char *path);

#endif
