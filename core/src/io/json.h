/* A small strict JSON parser (RFC 8259) for file headers such as safetensors'. It
 * builds a tree of values; it rejects anything the grammar does not allow (trailing
 * commas, comments, leading zeros, control characters in strings, invalid UTF-8, lone
 * surrogates, nesting deeper than LN_JSON_MAX_DEPTH, more than LN_JSON_MAX_VALUES
 * values (which bounds the memory a hostile text can make it take), bytes after the
 * value other than whitespace). Numbers keep their text's exact value only when it is a non-negative
 * integer below 2^63 (is_uint); any other number is still valid JSON, flagged so. */
#ifndef LUNET_IO_JSON_H
#define LUNET_IO_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LN_JSON_MAX_DEPTH 64
#define LN_JSON_MAX_VALUES (1 << 22)

typedef enum ln_json_kind {
    LN_JSON_NULL, LN_JSON_FALSE, LN_JSON_TRUE, LN_JSON_NUMBER, LN_JSON_STRING,
    LN_JSON_ARRAY, LN_JSON_OBJECT
} ln_json_kind;

typedef struct ln_json {
    ln_json_kind kind;
    size_t pos;             /* byte offset of the value in the text (for messages) */
    /* LN_JSON_STRING: decoded UTF-8, NUL-terminated; len excludes the NUL (a string
     * holding \u0000 has strlen(str) < len) */
    char *str;
    size_t len;
    /* LN_JSON_NUMBER: the value when it is an integer in [0, 2^63) */
    bool is_uint;
    int64_t uint_value;
    /* LN_JSON_ARRAY / LN_JSON_OBJECT: n items (objects: keys[i] names items[i], in
     * text order; duplicate keys are kept, the caller decides) */
    size_t n;
    struct ln_json *items;
    struct ln_json *keys;   /* objects only: each an LN_JSON_STRING */
} ln_json;

/* Parses text[0..len) into *out (owned by the caller, freed with ln_json_free). On
 * failure returns false, *out is untouched and err receives a message with the byte
 * offset ("at byte 17: expected ':' after an object key"). */
bool ln_json_parse(const char *text, size_t len, ln_json *out, char *err, size_t errlen);
void ln_json_free(ln_json *v);

/* Whether s[0..n) is valid UTF-8 (no overlong forms, no surrogates, <= U+10FFFF). */
bool ln_utf8_valid(const char *s, size_t n);

#endif
