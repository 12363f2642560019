/* The ELF check before dlopen (core/host/elf_check.c): a real plugin
 * passes; every prefix of it, and every header field that makes it foreign,
 * is refused with the reason; the registry lists a cut plugin as refused
 * instead of dying of SIGBUS inside dlopen. */
#include <check.h>
#include <elf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elf_check.h"
#include "registry.h"
#include "test_main.h"

#define PLUGIN LM_TEST_BINARY_DIR "/tests/plugins/good_logger/lm_test_good_logger.so"

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(*len);
    ck_assert_uint_eq(fread(data, 1, *len, f), *len);
    fclose(f);
    return data;
}

static void expect_refused(const unsigned char *data, size_t len, const char *needle) {
    lm_status s = lm_elf_check_image(data, len);
    ck_assert_msg(s == LM_ERR_FORMAT, "accepted (%zu bytes)", len);
    ck_assert_msg(strstr(lm_error_message(), needle) != NULL, "'%s' not in '%s'", needle, lm_error_message());
}

START_TEST(a_real_plugin_passes) {
    size_t len;
    unsigned char *data = read_all(PLUGIN, &len);
    ck_assert_int_eq(lm_elf_check_image(data, len), LM_OK);
    ck_assert_msg(lm_elf_check_file(PLUGIN) == LM_OK, "%s", lm_error_message());
    free(data);
}
END_TEST

START_TEST(every_prefix_is_refused) {
    size_t len;
    unsigned char *data = read_all(PLUGIN, &len);
    for (size_t cut = 0; cut < len; cut += cut < 256 ? 1 : 97) {
        lm_status s = lm_elf_check_image(data, cut);
        ck_assert_msg(s == LM_ERR_FORMAT, "a %zu-byte prefix of %zu accepted", cut, len);
    }
    free(data);
}
END_TEST

START_TEST(segments_are_checked_without_section_headers) {
    size_t len;
    unsigned char *data = read_all(PLUGIN, &len);
    Elf64_Ehdr h;
    memcpy(&h, data, sizeof h);
    h.e_shoff = 0; /* strip's worst: only the segments tell where the file ends */
    memcpy(data, &h, sizeof h);
    uint64_t end = 0;
    for (unsigned i = 0; i < h.e_phnum; i++) {
        Elf64_Phdr p;
        memcpy(&p, data + h.e_phoff + i * sizeof p, sizeof p);
        if (p.p_offset + p.p_filesz > end) end = p.p_offset + p.p_filesz;
    }
    ck_assert_int_eq(lm_elf_check_image(data, len), LM_OK);
    ck_assert_int_eq(lm_elf_check_image(data, (size_t)end), LM_OK);
    expect_refused(data, (size_t)end - 1, "truncated: segment");
    expect_refused(data, (size_t)end / 2, "truncated: segment");
    free(data);
}
END_TEST

/* Sets `n` bytes at `offset` of a copy and expects the reason. */
static void expect_field_refused(const unsigned char *data, size_t len, size_t offset, const void *bytes, size_t n,
                                 const char *needle) {
    unsigned char *copy = malloc(len);
    memcpy(copy, data, len);
    memcpy(copy + offset, bytes, n);
    expect_refused(copy, len, needle);
    free(copy);
}

START_TEST(foreign_headers_are_refused_with_the_reason) {
    size_t len;
    unsigned char *data = read_all(PLUGIN, &len);
    const unsigned char class32 = ELFCLASS32, big = ELFDATA2MSB, bad_version = 7;
    const uint16_t exec = ET_EXEC, arm = EM_ARM, zero16 = 0, phentsize = 32;
    const uint64_t huge = UINT64_MAX - 8;
    expect_field_refused(data, len, 0, "\x7f" "ELG", 4, "not an ELF file");
    expect_field_refused(data, len, EI_CLASS, &class32, 1, "32-bit");
    expect_field_refused(data, len, EI_DATA, &big, 1, "byte order");
    expect_field_refused(data, len, EI_VERSION, &bad_version, 1, "ELF version");
    expect_field_refused(data, len, offsetof(Elf64_Ehdr, e_type), &exec, 2, "not a shared object (ET_DYN)");
    expect_field_refused(data, len, offsetof(Elf64_Ehdr, e_machine), &arm, 2, "built for ELF machine 40");
    expect_field_refused(data, len, offsetof(Elf64_Ehdr, e_phnum), &zero16, 2, "0 program headers");
    expect_field_refused(data, len, offsetof(Elf64_Ehdr, e_phentsize), &phentsize, 2, "program headers of 32 bytes");
    /* Offsets that overflow when added are out of the file, not wrapped in. */
    expect_field_refused(data, len, offsetof(Elf64_Ehdr, e_phoff), &huge, 8, "program headers end past");
    expect_field_refused(data, len, offsetof(Elf64_Ehdr, e_shoff), &huge, 8, "section headers end past");
    free(data);
}
END_TEST

/* A file whose tail was zeroed (a crash between writing its size and its
 * data): the dynamic section dlopen() trusts is refused, not followed. */
START_TEST(a_zeroed_dynamic_section_is_refused) {
    size_t len;
    unsigned char *data = read_all(PLUGIN, &len);
    Elf64_Ehdr h;
    memcpy(&h, data, sizeof h);
    for (unsigned i = 0; i < h.e_phnum; i++) {
        Elf64_Phdr p;
        memcpy(&p, data + h.e_phoff + i * sizeof p, sizeof p);
        if (p.p_type != PT_DYNAMIC) continue;
        unsigned char *copy = malloc(len);
        memcpy(copy, data, len);
        memset(copy + p.p_offset, 0, p.p_filesz); /* all DT_NULL: no tables */
        expect_refused(copy, len, "lacks its string table");
        memset(copy + p.p_offset, 0xff, p.p_filesz); /* no DT_NULL at all */
        expect_refused(copy, len, "has no end (DT_NULL)");
        free(copy);
    }
    free(data);
}
END_TEST

START_TEST(the_registry_refuses_a_cut_plugin) {
    size_t len;
    unsigned char *data = read_all(PLUGIN, &len);
    char dir[] = "/tmp/lm_elf_XXXXXX", path[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/lm_cut.so", dir);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len / 2, f);
    fclose(f);
    lm_registry *r;
    ck_assert_int_eq(lm_registry_create(&r), LM_OK);
    ck_assert_int_eq(lm_registry_load_file(r, path), LM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(lm_error_message(), "lm_cut.so: not a loadable shared object: truncated"));
    lm_registry_destroy(r);
    unlink(path);
    rmdir(dir);
    free(data);
}
END_TEST

int main(void) {
    Suite *s = suite_create("elf_check");
    TCase *tc = tcase_create("elf_check");
    tcase_add_test(tc, a_real_plugin_passes);
    tcase_add_test(tc, every_prefix_is_refused);
    tcase_add_test(tc, segments_are_checked_without_section_headers);
    tcase_add_test(tc, foreign_headers_are_refused_with_the_reason);
    tcase_add_test(tc, a_zeroed_dynamic_section_is_refused);
    tcase_add_test(tc, the_registry_refuses_a_cut_plugin);
    suite_add_tcase(s, tc);
    return lm_test_count_failures(CK_FORK_GETENV, s, NULL) ? 1 : 0;
}
