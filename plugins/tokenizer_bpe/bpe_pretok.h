/* The GPT-2 pre-tokenizer and the byte-level alphabet, written out by hand.
 *
 * Hugging Face's ByteLevel pre-tokenizer (use_regex=true) splits text with
 *
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * under Oniguruma's leftmost-first semantics.  bpe_pretok_next() returns the
 * end of the match that starts at a position, so that iterating from 0 yields
 * the same pieces (every character is covered by some alternative).
 *
 * Invalid UTF-8 (which HF cannot receive: Python strings are always valid)
 * is accepted here: each invalid byte is one character that is neither a
 * letter, a number nor whitespace, so it joins runs of punctuation.  The
 * byte-level alphabet covers every byte, so such text still encodes without
 * an unknown token and decodes back to the same bytes. */
#ifndef BPE_PRETOK_H
#define BPE_PRETOK_H

#include <stddef.h>
#include <stdint.h>

/* End (exclusive) of the piece starting at s[pos], pos < len. */
size_t bpe_pretok_next(const unsigned char *s, size_t len, size_t pos);

/* GPT-2's bytes_to_unicode(): byte -> code point of its printable stand-in
 * ("Ġ" U+0120 for the space ...), and back (-1 for code points that stand for
 * no byte). */
uint32_t bpe_byte_to_codepoint(unsigned char byte);
int bpe_codepoint_to_byte(uint32_t cp);
/* The UTF-8 of the stand-in of `byte` (1 or 2 bytes) into out; returns length. */
size_t bpe_byte_to_utf8(unsigned char byte, char out[2]);

#endif
