#!/usr/bin/env python3
"""Writes the seeds of fuzz_elf_check (fuzz/corpus/fuzz_elf_check/): a small
hand-made ELF64 shared object (header, PT_LOAD, PT_DYNAMIC with its
symbol, string and hash tables, and a section header table, as a linker
lays them out) for x86-64 and AArch64, and
damaged copies: cut short, without section headers and cut, wrong class,
type and machine.  No dependency; run from the repository root:
  python3 fuzz/corpus/gen_elf_seeds.py"""
import os
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, "fuzz_elf_check")
EHDR, PHDR, SHDR = 64, 56, 64
PT_LOAD, PT_DYNAMIC = 1, 2


def shared_object(machine):
    phnum, shnum = 2, 2
    phoff = EHDR
    load_off, load_size = 0, 0x200
    dyn_off, dyn_size = 0x180, 0x50
    shoff = load_size
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 3, machine, 1, 0, phoff, shoff, 0, EHDR, PHDR, phnum, SHDR,
                                 shnum, 0)
    phdrs = struct.pack("<IIQQQQQQ", PT_LOAD, 5, load_off, 0, 0, load_size, load_size, 0x1000)
    phdrs += struct.pack("<IIQQQQQQ", PT_DYNAMIC, 6, dyn_off, dyn_off, dyn_off, dyn_size, dyn_size, 8)
    body = bytearray(header + phdrs)
    body += bytes(0x100 - len(body))
    # at 0x100: a symbol table of one null symbol (24 bytes), a string table
    # ("\0"), a SysV hash table (nbucket 1, nchain 1, bucket 0, chain 0)
    body += bytes(24) + b"\0" + bytes(7) + struct.pack("<IIII", 1, 1, 0, 0)
    body += bytes(dyn_off - len(body))
    DT_NULL, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ = 0, 4, 5, 6, 10
    for tag, value in ((DT_HASH, 0x120), (DT_STRTAB, 0x118), (DT_SYMTAB, 0x100), (DT_STRSZ, 1), (DT_NULL, 0)):
        body += struct.pack("<qQ", tag, value)
    body += bytes(load_size - len(body))
    body += bytes(SHDR * shnum)
    return bytes(body)


def patched(data, offset, value):
    out = bytearray(data)
    out[offset:offset + len(value)] = value
    return bytes(out)


def main():
    os.makedirs(OUT, exist_ok=True)
    x86 = shared_object(62)
    seeds = {
        "valid_x86_64": x86,
        "valid_aarch64": shared_object(183),
        "cut_in_half": x86[: len(x86) // 2],
        "cut_in_header": x86[:40],
        "no_sections_cut": patched(x86, 40, bytes(8))[:0x150],
        "class_32": patched(x86, 4, b"\x01"),
        "type_exec": patched(x86, 16, struct.pack("<H", 2)),
        "machine_arm": patched(x86, 18, struct.pack("<H", 40)),
        "phoff_huge": patched(x86, 32, struct.pack("<Q", (1 << 64) - 8)),
        "dynamic_zeroed": patched(x86, 0x180, bytes(0x50)),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
