/* The strict JSON parser of json.h: recursive descent over a byte range with a depth
 * limit, building ln_json trees. Every allocation is checked; a failure anywhere frees
 * what was built so far and reports the byte offset. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

typedef struct parser {
    const char *s;
    size_t len, pos;
    size_t values; /* parsed so far, against LN_JSON_MAX_VALUES */
    char *err;
    size_t errlen;
} parser;

static bool fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(parser *p, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "at byte %zu: %s", p->pos, msg);
    return false;
}

bool ln_utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        int extra;
        unsigned cp, min;
        if ((c & 0xE0) == 0xC0) { extra = 1; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { extra = 2; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { extra = 3; cp = c & 0x07; min = 0x10000; }
        else return false;
        if (n - i <= (size_t)extra) return false;
        for (int k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += (size_t)extra + 1;
    }
    return true;
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static bool parse_value(parser *p, ln_json *v, int depth);

/* Appends the UTF-8 form of code point cp to buf (room for 4 bytes is guaranteed). */
static size_t put_utf8(char *buf, unsigned cp) {
    if (cp < 0x80) { buf[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        buf[0] = (char)(0xC0 | (cp >> 6)); buf[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | (cp >> 12)); buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    buf[0] = (char)(0xF0 | (cp >> 18)); buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); buf[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool hex4(parser *p, unsigned *out) {
    if (p->len - p->pos < 4) return fail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + (size_t)i];
        unsigned d;
        if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
        else return fail(p, "bad hex digit in \\u escape");
        v = v * 16 + d;
    }
    p->pos += 4;
    *out = v;
    return true;
}

/* p->pos is at the opening quote. The decoded string is never longer than its text. */
static bool parse_string(parser *p, ln_json *v) {
    size_t start = ++p->pos, end = start;
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return fail(p, "unterminated string");
    char *buf = malloc(end - start + 1);
    if (!buf) return fail(p, "out of memory");
    size_t n = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) { free(buf); return fail(p, "control character 0x%02x in a string", c); }
        if (c != '\\') { buf[n++] = (char)c; p->pos++; continue; }
        char e = p->s[++p->pos];
        p->pos++;
        switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (!hex4(p, &cp)) { free(buf); return false; }
            if (cp >= 0xDC00 && cp <= 0xDFFF) { free(buf); return fail(p, "lone low surrogate in \\u escape"); }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    free(buf);
                    return fail(p, "high surrogate not followed by a low one");
                }
                p->pos += 2;
                if (!hex4(p, &lo)) { free(buf); return false; }
                if (lo < 0xDC00 || lo > 0xDFFF) { free(buf); return fail(p, "high surrogate not followed by a low one"); }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            n += put_utf8(buf + n, cp); /* 6 or 12 text bytes give at most 4 */
            break;
        }
        default:
            p->pos--;
            free(buf);
            return fail(p, "bad escape '\\%c'", e >= 0x20 && e < 0x7f ? e : '?');
        }
    }
    p->pos = end + 1;
    buf[n] = '\0';
    if (!ln_utf8_valid(buf, n)) {
        free(buf);
        p->pos = start;
        return fail(p, "string is not valid UTF-8");
    }
    v->kind = LN_JSON_STRING;
    v->str = buf;
    v->len = n;
    return true;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool parse_number(parser *p, ln_json *v) {
    size_t i = p->pos;
    bool neg = false, integral = true, overflow = false;
    int64_t value = 0;
    if (p->s[i] == '-') { neg = true; i++; }
    if (i >= p->len || !is_digit(p->s[i])) return fail(p, "bad number");
    if (p->s[i] == '0' && i + 1 < p->len && is_digit(p->s[i + 1]))
        return fail(p, "number with a leading zero");
    while (i < p->len && is_digit(p->s[i])) {
        int d = p->s[i] - '0';
        if (value > (INT64_MAX - d) / 10) overflow = true;
        else value = value * 10 + d;
        i++;
    }
    if (i < p->len && p->s[i] == '.') {
        integral = false;
        i++;
        if (i >= p->len || !is_digit(p->s[i])) { p->pos = i; return fail(p, "digit expected after '.'"); }
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        integral = false;
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->len || !is_digit(p->s[i])) { p->pos = i; return fail(p, "digit expected in exponent"); }
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    v->kind = LN_JSON_NUMBER;
    v->is_uint = integral && !overflow && !neg;
    v->uint_value = v->is_uint ? value : 0;
    p->pos = i;
    return true;
}

static bool literal(parser *p, const char *word, ln_json_kind kind, ln_json *v) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, "unexpected character '%c'", p->s[p->pos] >= 0x20 && p->s[p->pos] < 0x7f ? p->s[p->pos] : '?');
    p->pos += n;
    v->kind = kind;
    return true;
}

/* Grows an item (and key) array to hold at least n + 1 entries. */
static bool grow(parser *p, ln_json *v, size_t *cap, bool keys) {
    if (v->n < *cap) return true;
    size_t nc = *cap ? *cap * 2 : 4;
    ln_json *items = realloc(v->items, nc * sizeof *items);
    if (!items) return fail(p, "out of memory");
    v->items = items;
    if (keys) {
        ln_json *k = realloc(v->keys, nc * sizeof *k);
        if (!k) return fail(p, "out of memory");
        v->keys = k;
    }
    *cap = nc;
    return true;
}

static bool parse_container(parser *p, ln_json *v, int depth, bool object) {
    char close = object ? '}' : ']';
    v->kind = object ? LN_JSON_OBJECT : LN_JSON_ARRAY;
    size_t cap = 0;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) { p->pos++; return true; }
    for (;;) {
        if (!grow(p, v, &cap, object)) return false;
        skip_ws(p);
        if (object) {
            if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "expected a string key");
            memset(&v->keys[v->n], 0, sizeof v->keys[v->n]);
            v->keys[v->n].pos = p->pos;
            if (!parse_string(p, &v->keys[v->n])) return false;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(v->keys[v->n].str);
                return fail(p, "expected ':' after an object key");
            }
            p->pos++;
        }
        memset(&v->items[v->n], 0, sizeof v->items[v->n]);
        if (!parse_value(p, &v->items[v->n], depth + 1)) {
            if (object) free(v->keys[v->n].str);
            ln_json_free(&v->items[v->n]);
            return false;
        }
        v->n++;
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, "unterminated %s", object ? "object" : "array");
        if (p->s[p->pos] == close) { p->pos++; return true; }
        if (p->s[p->pos] != ',') return fail(p, "expected ',' or '%c'", close);
        p->pos++;
    }
}

static bool parse_value(parser *p, ln_json *v, int depth) {
    if (depth > LN_JSON_MAX_DEPTH) return fail(p, "nesting deeper than %d", LN_JSON_MAX_DEPTH);
    if (++p->values > LN_JSON_MAX_VALUES) return fail(p, "more than %d values", LN_JSON_MAX_VALUES);
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end of text");
    v->pos = p->pos;
    char c = p->s[p->pos];
    switch (c) {
    case '{': return parse_container(p, v, depth, true);
    case '[': return parse_container(p, v, depth, false);
    case '"': return parse_string(p, v);
    case 't': return literal(p, "true", LN_JSON_TRUE, v);
    case 'f': return literal(p, "false", LN_JSON_FALSE, v);
    case 'n': return literal(p, "null", LN_JSON_NULL, v);
    default:
        if (c == '-' || is_digit(c)) return parse_number(p, v);
        return fail(p, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
    }
}

bool ln_json_parse(const char *text, size_t len, ln_json *out, char *err, size_t errlen) {
    parser p = {text, len, 0, 0, err, errlen};
    ln_json v;
    memset(&v, 0, sizeof v);
    if (!parse_value(&p, &v, 1)) {
        ln_json_free(&v);
        return false;
    }
    skip_ws(&p);
    if (p.pos != len) {
        ln_json_free(&v);
        return fail(&p, "unexpected bytes after the JSON value");
    }
    *out = v;
    return true;
}

void ln_json_free(ln_json *v) {
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        ln_json_free(&v->items[i]);
        if (v->keys) free(v->keys[i].str);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    memset(v, 0, sizeof *v);
}
