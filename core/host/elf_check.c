/* Checking a plugin file before dlopen() (see elf_check.h). */
#include "elf_check.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "user_file.h"

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#define HOST_MACHINE_NAME "x86-64"
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#define HOST_MACHINE_NAME "AArch64"
#elif defined(__powerpc64__)
#define HOST_MACHINE EM_PPC64
#define HOST_MACHINE_NAME "POWER"
#elif defined(__riscv) && __riscv_xlen == 64
#define HOST_MACHINE EM_RISCV
#define HOST_MACHINE_NAME "RISC-V"
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_DATA ELFDATA2LSB
#else
#define HOST_DATA ELFDATA2MSB
#endif

/* The table of program headers may not be larger than this (65535 headers
 * of 56 bytes would be 3.5 MiB; real plugins have about ten). */
#define MAX_PHDR_BYTES (1u << 20)

/* 1 when [offset, offset + size) lies inside a file of file_size bytes,
 * without overflow. */
static int inside(uint64_t offset, uint64_t size, uint64_t file_size) {
    return offset <= file_size && size <= file_size - offset;
}

static const char *segment_name(uint32_t type) {
    switch (type) {
    case PT_LOAD: return "PT_LOAD";
    case PT_DYNAMIC: return "PT_DYNAMIC";
    case PT_INTERP: return "PT_INTERP";
    case PT_NOTE: return "PT_NOTE";
    case PT_TLS: return "PT_TLS";
    case PT_GNU_EH_FRAME: return "PT_GNU_EH_FRAME";
    case PT_GNU_RELRO: return "PT_GNU_RELRO";
    default: return "segment";
    }
}

static lm_status check_header(const Elf64_Ehdr *h, size_t len, uint64_t file_size) {
    if (len < SELFMAG || memcmp(h->e_ident, ELFMAG, SELFMAG) != 0)
        return lm_error_set(LM_ERR_FORMAT, "not an ELF file (no ELF magic bytes)");
    if (len < sizeof *h)
        return lm_error_set(LM_ERR_FORMAT, "truncated: %llu bytes, shorter than an ELF header",
                            (unsigned long long)file_size);
    if (h->e_ident[EI_CLASS] != ELFCLASS64)
        return lm_error_set(LM_ERR_FORMAT, "a %s ELF file; lmcore loads 64-bit plugins",
                            h->e_ident[EI_CLASS] == ELFCLASS32 ? "32-bit" : "bad-class");
    if (h->e_ident[EI_DATA] != HOST_DATA)
        return lm_error_set(LM_ERR_FORMAT, "the ELF file's byte order is not this machine's");
    if (h->e_ident[EI_VERSION] != EV_CURRENT || h->e_version != EV_CURRENT)
        return lm_error_set(LM_ERR_FORMAT, "unknown ELF version %u", (unsigned)h->e_version);
    if (h->e_type != ET_DYN)
        return lm_error_set(LM_ERR_FORMAT, "an ELF file of type %u, not a shared object (ET_DYN)", (unsigned)h->e_type);
#ifdef HOST_MACHINE
    if (h->e_machine != HOST_MACHINE)
        return lm_error_set(LM_ERR_FORMAT, "built for ELF machine %u, not for this %s machine", (unsigned)h->e_machine,
                            HOST_MACHINE_NAME);
#endif
    if (h->e_phnum == 0 || h->e_phnum == PN_XNUM)
        return lm_error_set(LM_ERR_FORMAT, "%u program headers: not a loadable shared object", (unsigned)h->e_phnum);
    if (h->e_phentsize != sizeof(Elf64_Phdr))
        return lm_error_set(LM_ERR_FORMAT, "program headers of %u bytes (expected %zu)", (unsigned)h->e_phentsize,
                            sizeof(Elf64_Phdr));
    uint64_t table = (uint64_t)h->e_phnum * sizeof(Elf64_Phdr);
    if (!inside(h->e_phoff, table, file_size))
        return lm_error_set(LM_ERR_FORMAT, "truncated: the program headers end past the file's %llu bytes",
                            (unsigned long long)file_size);
    if (!inside(h->e_phoff, table, len))
        return lm_error_set(LM_ERR_FORMAT, "the program headers are not in the file's first %zu bytes", len);
    if (h->e_shoff != 0) {
        if (h->e_shentsize != sizeof(Elf64_Shdr))
            return lm_error_set(LM_ERR_FORMAT, "section headers of %u bytes (expected %zu)", (unsigned)h->e_shentsize,
                                sizeof(Elf64_Shdr));
        /* Linkers put them last: a file cut short loses them first. */
        if (!inside(h->e_shoff, (uint64_t)h->e_shnum * sizeof(Elf64_Shdr), file_size))
            return lm_error_set(LM_ERR_FORMAT, "truncated: the section headers end past the file's %llu bytes",
                                (unsigned long long)file_size);
    }
    return LM_OK;
}

lm_status lm_elf_check_image(const unsigned char *data, size_t len, uint64_t file_size) {
    if (len > file_size) return lm_error_set(LM_ERR_INTERNAL, "lm_elf_check_image: %zu bytes of a %llu-byte file",
                                             len, (unsigned long long)file_size);
    Elf64_Ehdr h;
    memset(&h, 0, sizeof h);
    memcpy(&h, data, len < sizeof h ? len : sizeof h);
    LM_TRY(check_header(&h, len, file_size));
    int loads = 0, dynamic = 0;
    for (unsigned i = 0; i < h.e_phnum; i++) {
        Elf64_Phdr p;
        memcpy(&p, data + h.e_phoff + (uint64_t)i * sizeof p, sizeof p); /* unaligned-safe */
        if (p.p_type == PT_LOAD) {
            loads++;
            if (p.p_filesz > p.p_memsz)
                return lm_error_set(LM_ERR_FORMAT, "segment %u (PT_LOAD) has more bytes in the file than in memory",
                                    i);
        }
        if (p.p_type == PT_DYNAMIC) dynamic++;
        if (!inside(p.p_offset, p.p_filesz, file_size))
            return lm_error_set(LM_ERR_FORMAT,
                                "truncated: segment %u (%s) ends at byte %llu but the file has %llu bytes", i,
                                segment_name(p.p_type), (unsigned long long)p.p_offset + p.p_filesz,
                                (unsigned long long)file_size);
    }
    if (loads == 0) return lm_error_set(LM_ERR_FORMAT, "no loadable (PT_LOAD) segment: not a shared object");
    if (dynamic != 1)
        return lm_error_set(LM_ERR_FORMAT, "%d dynamic (PT_DYNAMIC) segments: not a shared object", dynamic);
    return LM_OK;
}

/* Reads `len` bytes at offset 0 (a short read is an error). */
static lm_status read_prefix(int fd, const char *path, unsigned char *out, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, out + done, len - done, (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return lm_error_set(LM_ERR_IO, "cannot read '%s': %s", path, n < 0 ? strerror(errno) : "short read");
        done += (size_t)n;
    }
    return LM_OK;
}

lm_status lm_elf_check_file(const char *path) {
    int fd;
    struct stat st;
    LM_TRY(lm_user_file_open(path, &fd, &st));
    uint64_t file_size = (uint64_t)st.st_size;
    /* The header, then as much of the file as the program header table
     * needs (it follows the header in every linker's output); a table that
     * lies beyond the file or MAX_PHDR_BYTES is refused by the check. */
    unsigned char header[sizeof(Elf64_Ehdr)];
    size_t need = file_size < sizeof header ? (size_t)file_size : sizeof header;
    lm_status status = read_prefix(fd, path, header, need);
    if (status == LM_OK && need == sizeof header) {
        Elf64_Ehdr h;
        memcpy(&h, header, sizeof h);
        uint64_t end = h.e_phoff + (uint64_t)h.e_phnum * sizeof(Elf64_Phdr);
        if (end >= h.e_phoff && end > need && end <= file_size && end <= MAX_PHDR_BYTES) need = (size_t)end;
    }
    unsigned char *image = NULL;
    if (status == LM_OK) {
        image = malloc(need ? need : 1);
        if (!image) status = lm_error_set(LM_ERR_NOMEM, "out of memory checking '%s'", path);
    }
    if (status == LM_OK) status = read_prefix(fd, path, image, need);
    if (status == LM_OK) status = lm_elf_check_image(image, need, file_size);
    free(image);
    close(fd);
    if (status == LM_ERR_FORMAT) lm_error_prefix("%s: damaged or foreign plugin file: ", path);
    return status;
}
