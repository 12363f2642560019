/* Checking a plugin file before dlopen() (see elf_check.h). */
#include "elf_check.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* Loadable segments a plugin may have (linkers make four). */
#define MAX_LOADS 64

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

static lm_status check_header(const Elf64_Ehdr *h, uint64_t size) {
    if (size < SELFMAG || memcmp(h->e_ident, ELFMAG, SELFMAG) != 0)
        return lm_error_set(LM_ERR_FORMAT, "not an ELF file (no ELF magic bytes)");
    if (size < sizeof *h)
        return lm_error_set(LM_ERR_FORMAT, "truncated: %llu bytes, shorter than an ELF header",
                            (unsigned long long)size);
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
    if (!inside(h->e_phoff, (uint64_t)h->e_phnum * sizeof(Elf64_Phdr), size))
        return lm_error_set(LM_ERR_FORMAT, "truncated: the program headers end past the file's %llu bytes",
                            (unsigned long long)size);
    if (h->e_shoff != 0) {
        if (h->e_shentsize != sizeof(Elf64_Shdr))
            return lm_error_set(LM_ERR_FORMAT, "section headers of %u bytes (expected %zu)", (unsigned)h->e_shentsize,
                                sizeof(Elf64_Shdr));
        /* Linkers put them last: a file cut short loses them first. */
        if (!inside(h->e_shoff, (uint64_t)h->e_shnum * sizeof(Elf64_Shdr), size))
            return lm_error_set(LM_ERR_FORMAT, "truncated: the section headers end past the file's %llu bytes",
                                (unsigned long long)size);
    }
    return LM_OK;
}

/* Whether [vaddr, vaddr + len) is backed by file bytes of a PT_LOAD segment. */
static int in_loaded_file_bytes(const Elf64_Phdr *loads, int n, uint64_t vaddr, uint64_t len) {
    for (int i = 0; i < n; i++)
        if (vaddr >= loads[i].p_vaddr && inside(vaddr - loads[i].p_vaddr, len, loads[i].p_filesz)) return 1;
    return 0;
}

/* The dynamic section is what dlopen() reads first and trusts: a file whose
 * tail was zeroed (a crash after the size was written, before the data)
 * has a table without its string and symbol tables.  Each entry the loader
 * needs must be there and point into bytes the file provides. */
static lm_status check_dynamic(const unsigned char *data, const Elf64_Phdr *dyn, const Elf64_Phdr *loads,
                               int n_loads) {
    if (!in_loaded_file_bytes(loads, n_loads, dyn->p_vaddr, dyn->p_filesz))
        return lm_error_set(LM_ERR_FORMAT, "the dynamic segment is not inside a loadable one");
    uint64_t strtab = 0, strsz = 0, symtab = 0;
    int has_strtab = 0, has_symtab = 0, has_hash = 0, terminated = 0;
    size_t n = (size_t)(dyn->p_filesz / sizeof(Elf64_Dyn));
    for (size_t i = 0; i < n && !terminated; i++) {
        Elf64_Dyn d;
        memcpy(&d, data + dyn->p_offset + i * sizeof d, sizeof d);
        switch (d.d_tag) {
        case DT_NULL: terminated = 1; break;
        case DT_STRTAB: strtab = d.d_un.d_ptr, has_strtab = 1; break;
        case DT_STRSZ: strsz = d.d_un.d_val; break;
        case DT_SYMTAB: symtab = d.d_un.d_ptr, has_symtab = 1; break;
        case DT_HASH:
        case DT_GNU_HASH: has_hash = 1; break;
        default: break;
        }
    }
    if (!terminated) return lm_error_set(LM_ERR_FORMAT, "the dynamic section has no end (DT_NULL): damaged");
    if (!has_strtab || !has_symtab || !has_hash)
        return lm_error_set(LM_ERR_FORMAT, "the dynamic section lacks its %s: damaged",
                            !has_strtab ? "string table" : !has_symtab ? "symbol table" : "symbol hash table");
    if (strsz == 0 || !in_loaded_file_bytes(loads, n_loads, strtab, strsz))
        return lm_error_set(LM_ERR_FORMAT, "the dynamic string table is not inside the file's loaded bytes: damaged");
    if (!in_loaded_file_bytes(loads, n_loads, symtab, sizeof(Elf64_Sym)))
        return lm_error_set(LM_ERR_FORMAT, "the dynamic symbol table is not inside the file's loaded bytes: damaged");
    return LM_OK;
}

lm_status lm_elf_check_image(const unsigned char *data, size_t size) {
    Elf64_Ehdr h;
    memset(&h, 0, sizeof h);
    memcpy(&h, data, size < sizeof h ? size : sizeof h);
    LM_TRY(check_header(&h, size));
    Elf64_Phdr loads[MAX_LOADS], dyn;
    memset(&dyn, 0, sizeof dyn);
    int n_loads = 0, n_dynamic = 0;
    for (unsigned i = 0; i < h.e_phnum; i++) {
        Elf64_Phdr p;
        memcpy(&p, data + h.e_phoff + (uint64_t)i * sizeof p, sizeof p); /* unaligned-safe */
        if (!inside(p.p_offset, p.p_filesz, size))
            return lm_error_set(LM_ERR_FORMAT,
                                "truncated: segment %u (%s) ends at byte %llu but the file has %llu bytes", i,
                                segment_name(p.p_type), (unsigned long long)p.p_offset + p.p_filesz,
                                (unsigned long long)size);
        if (p.p_type == PT_LOAD) {
            if (p.p_filesz > p.p_memsz)
                return lm_error_set(LM_ERR_FORMAT, "segment %u (PT_LOAD) has more bytes in the file than in memory",
                                    i);
            if (n_loads == MAX_LOADS)
                return lm_error_set(LM_ERR_FORMAT, "more than %d loadable segments: not a plugin", MAX_LOADS);
            loads[n_loads++] = p;
        }
        if (p.p_type == PT_DYNAMIC) {
            n_dynamic++;
            dyn = p;
        }
    }
    if (n_loads == 0) return lm_error_set(LM_ERR_FORMAT, "no loadable (PT_LOAD) segment: not a shared object");
    if (n_dynamic != 1)
        return lm_error_set(LM_ERR_FORMAT, "%d dynamic (PT_DYNAMIC) segments: not a shared object", n_dynamic);
    return check_dynamic(data, &dyn, loads, n_loads);
}

lm_status lm_elf_check_file(const char *path) {
    int fd;
    struct stat st;
    lm_status opened = lm_user_file_open(path, &fd, &st);
    if (opened != LM_OK) { /* missing, unreadable, a FIFO: unloadable, as dlopen() would say */
        char reason[1024];
        snprintf(reason, sizeof reason, "%s", lm_error_message());
        return lm_error_set(LM_ERR_FORMAT, "%s: not a loadable shared object (%s)", path, reason);
    }
    /* Mapped within the size fstat() gave, so reading it cannot fault
     * (unless the file shrinks meanwhile); only the headers and the
     * dynamic section are touched. */
    size_t size = (size_t)st.st_size;
    lm_status status = LM_OK;
    if (size == 0) {
        status = lm_error_set(LM_ERR_FORMAT, "an empty file");
    } else {
        void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            status = lm_error_set(LM_ERR_IO, "%s: cannot map it: %s", path, strerror(errno));
        } else {
            status = lm_elf_check_image(map, size);
            munmap(map, size);
        }
    }
    close(fd);
    if (status == LM_ERR_FORMAT) {
        char reason[1024];
        snprintf(reason, sizeof reason, "%s", lm_error_message());
        lm_error_set(LM_ERR_FORMAT,
                     "%s: not a loadable shared object: %s (rebuild or reinstall the plugin, or remove the file)", path,
                     reason);
    }
    return status;
}
