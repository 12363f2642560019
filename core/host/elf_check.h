/* Checking a plugin file before dlopen() maps it.
 *
 * dlopen() trusts the file: a shared object cut short (a copy that was
 * interrupted, a full disk) is mapped beyond its end, and the loader's
 * first touch of the missing pages kills the process with SIGBUS.  So the
 * registry checks first that the file is a whole ELF shared object for
 * this machine: the header (magic, 64-bit, byte order, version, ET_DYN,
 * the machine), the program header table and every segment's file range,
 * and the section header table, all inside the file's size.  A file that
 * fails is refused with the reason, as any other unloadable file is.
 * Internal to liblmcore (the registry); fuzzed by fuzz/fuzz_elf_check.c. */
#ifndef LMCORE_ELF_CHECK_H
#define LMCORE_ELF_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "lmcore/status.h"

/* Checks the first `len` bytes of a file of `file_size` bytes (len <=
 * file_size; the header and the program header table must be among them).
 * LM_ERR_FORMAT with the reason (no path) when it is no whole shared object
 * for this machine. */
LM_API lm_status lm_elf_check_image(const unsigned char *data, size_t len, uint64_t file_size);
/* Reads what lm_elf_check_image needs from `path` (opened without blocking,
 * refused unless a regular file) and checks it.  Messages name the path. */
LM_API lm_status lm_elf_check_file(const char *path);

#endif
