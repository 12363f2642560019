/* fuzz_elf_check: a plugin file made of the fuzzer's bytes.
 *
 * The check that runs before dlopen() (core/host/elf_check.c) must refuse
 * it with a message or accept it, never read outside it; an accepted image
 * must really be whole: the header, the program header table and every
 * segment's file range inside the file, at least one PT_LOAD.  The same
 * bytes as a file (lm_elf_check_file, which maps it) must get the same
 * verdict, and a prefix of an accepted image that cuts a segment must be
 * refused. */
#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "elf_check.h"
#include "fuzz_util.h"
#include "lmcore/lmcore.h"

static int inside(uint64_t offset, uint64_t size, uint64_t file_size) {
    return offset <= file_size && size <= file_size - offset;
}

/* The end of the last byte any segment needs (0 when the image is not
 * accepted, which the caller knows). */
static uint64_t check_accepted(const uint8_t *data, size_t size) {
    Elf64_Ehdr h;
    FUZZ_CHECK(size >= sizeof h, "accepted a %zu-byte file", size);
    memcpy(&h, data, sizeof h);
    FUZZ_CHECK(memcmp(h.e_ident, ELFMAG, SELFMAG) == 0 && h.e_type == ET_DYN, "accepted a non-ET_DYN file");
    FUZZ_CHECK(h.e_phentsize == sizeof(Elf64_Phdr) && h.e_phnum > 0, "accepted a bad program header table");
    FUZZ_CHECK(inside(h.e_phoff, (uint64_t)h.e_phnum * sizeof(Elf64_Phdr), size), "program headers outside");
    uint64_t end = 0;
    int loads = 0;
    for (unsigned i = 0; i < h.e_phnum; i++) {
        Elf64_Phdr p;
        memcpy(&p, data + h.e_phoff + (uint64_t)i * sizeof p, sizeof p);
        FUZZ_CHECK(inside(p.p_offset, p.p_filesz, size), "segment %u outside the file", i);
        if (p.p_filesz && p.p_offset + p.p_filesz > end) end = p.p_offset + p.p_filesz;
        loads += p.p_type == PT_LOAD;
    }
    FUZZ_CHECK(loads > 0, "accepted without PT_LOAD");
    return end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lm_status image = lm_elf_check_image(data, size);
    FUZZ_CHECK(image == LM_OK || image == LM_ERR_FORMAT, "image check returned %d", image);
    FUZZ_CHECK(image == LM_OK || lm_error_message()[0], "refused without a message");

    const char *path = fuzz_file(0, "lm_plugin.so", data, size);
    lm_status file = lm_elf_check_file(path);
    FUZZ_CHECK((file == LM_OK) == (image == LM_OK), "the file check says %d, the image check %d (%s)", file, image,
               lm_error_message());
    fuzz_remove(path);

    if (image == LM_OK) {
        uint64_t end = check_accepted(data, size);
        /* Cut inside a segment: refused. */
        if (end > 0)
            FUZZ_CHECK(lm_elf_check_image(data, (size_t)end - 1) == LM_ERR_FORMAT,
                       "a prefix cutting a segment was accepted");
    }
    return 0;
}
