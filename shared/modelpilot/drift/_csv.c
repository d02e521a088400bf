/* The CSV block parser of modelpilot.drift: one block of whole lines decoded straight into columns.
 *
 * The typed blocks of a CSV file (every block after the first, once the column kinds are known)
 * are parsed here in one pass: number columns into float64 arrays, text columns into the buffers
 * of Arrow string arrays. It reads only the simple, common form of CSV and gives up on the whole
 * block at anything else, and pyarrow then parses that block as before:
 *
 * - fields separated by commas, lines ended by LF or CRLF, empty lines skipped;
 * - a field is bare or quoted, with no quote inside either (a text's "" gives the block up);
 * - every line has exactly as many fields as the header;
 * - a number is [+-]digits[.digits][(e|E)[+-]digits] with at least one digit and an exponent of at
 *   most 6 digits (no spaces, no inf or nan spelt out); one of the null tokens (NULLS in _arrow.py)
 *   is a missing value (NaN), in a number column as in a text one.
 *
 * Numbers are rounded correctly, as pyarrow's parser (fast_float) rounds them: exactly with one
 * IEEE operation where the digits and the power of ten are exact doubles, otherwise with the
 * Eisel-Lemire algorithm (Lemire, "Number Parsing at a Gigabyte per Second", 2021) over the
 * 128-bit powers of ten of _pow10.h. A number it cannot decide (one in fifty or so: more than 19
 * digits, a product too close to a tie, a result outside the normal doubles) is read by the C
 * library's strtod in the "C" locale, which rounds correctly too; where that is not available the
 * block is given up.
 */
#if defined(__linux__)
#define _GNU_SOURCE /* strtod_l */
#endif
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__) || defined(__APPLE__)
#include <locale.h>
#include <pthread.h>
#if defined(__APPLE__)
#include <xlocale.h>
#endif
#define MP_STRTOD_L 1
#endif

#include "_pow10.h"

#include "_export.h"

enum { KIND_NUMBER = 0, KIND_TEXT = 1 };
enum { GIVE_UP = -1, TOO_MANY_ROWS = -2 };

static const double exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static const struct {
    const char *text;
    size_t size;
} nulls[] = {{"", 0}, {"NA", 2}, {"N/A", 3}, {"NaN", 3}, {"nan", 3}, {"null", 4}, {"NULL", 4}, {"None", 4}};

static int is_null(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (nulls[i].size == n && memcmp(nulls[i].text, s, n) == 0)
            return 1;
    return 0;
}

static void mul_64(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo)
{
#if defined(__SIZEOF_INT128__)
    unsigned __int128 p = (unsigned __int128)a * b;
    *hi = (uint64_t)(p >> 64);
    *lo = (uint64_t)p;
#else
    uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32, b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);
    *lo = (mid << 32) | (p00 & 0xFFFFFFFFu);
    *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
#endif
}

static int leading_zeros(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_clzll(x);
#else
    int n = 0;
    while (!(x & 0x8000000000000000u)) {
        x <<= 1;
        n++;
    }
    return n;
#endif
}

static inline int trailing_zeros(uint64_t x) /* the number of zero bits below x's lowest set bit (x > 0) */
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(x);
#else
    int n = 0;
    while (!(x & 1)) {
        x >>= 1;
        n++;
    }
    return n;
#endif
}

/* man * 10^e10 (man > 0) rounded to the nearest double, ties to even; 0 when it cannot be decided
 * from the 128-bit product, or falls outside the normal doubles */
static int eisel_lemire(uint64_t man, int e10, double *out)
{
    if (e10 < MP_POW10_MIN || e10 > MP_POW10_MAX)
        return 0;
    int lz = leading_zeros(man);
    man <<= lz;
    /* floor(e10 * log2(10)) + 64 + bias, as a fixed-point product rounded down */
    int64_t scaled = (int64_t)217706 * e10;
    int64_t floor_log2 = scaled >= 0 ? scaled / 65536 : -((-scaled + 65535) / 65536);
    uint64_t exp2 = (uint64_t)(floor_log2 + 64 + 1023) - (uint64_t)lz;
    const uint64_t *power = mp_pow10[e10 - MP_POW10_MIN];
    uint64_t hi, lo;
    mul_64(man, power[0], &hi, &lo);
    if ((hi & 0x1FF) == 0x1FF && lo + man < man) { /* the low 64 bits of the power may carry into the result */
        uint64_t yhi, ylo;
        mul_64(man, power[1], &yhi, &ylo);
        uint64_t merged_lo = lo + yhi, merged_hi = hi + (merged_lo < lo);
        if ((merged_hi & 0x1FF) == 0x1FF && merged_lo + 1 == 0 && ylo + man < man)
            return 0;
        hi = merged_hi;
        lo = merged_lo;
    }
    uint64_t top = hi >> 63;
    uint64_t mantissa = hi >> (top + 9); /* 54 bits */
    exp2 -= 1 ^ top;
    if (lo == 0 && (hi & 0x1FF) == 0 && (mantissa & 3) == 1)
        return 0; /* exactly half-way, or so it seems: undecided */
    mantissa += mantissa & 1;            /* to 53 bits, ties to even */
    mantissa >>= 1;
    if (mantissa >> 53) {
        mantissa >>= 1;
        exp2 += 1;
    }
    if (exp2 - 1 >= 0x7FF - 1)
        return 0; /* subnormal, or beyond the largest double */
    uint64_t bits = (exp2 << 52) | (mantissa & 0x000FFFFFFFFFFFFFu);
    memcpy(out, &bits, sizeof bits);
    return 1;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MP_SWAR 1
/* eight ASCII digits, read as one little-endian word: the test and the value (Lemire's "parsing eight
 * digits" multiplications) */
static int eight_digits(uint64_t v)
{
    return ((v & 0xF0F0F0F0F0F0F0F0u) | (((v + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u) >> 4)) ==
           0x3333333333333333u;
}

static uint64_t eight_digits_value(uint64_t v)
{
    const uint64_t mask = 0x000000FF000000FFu;
    const uint64_t mul1 = 100 + ((uint64_t)1000000 << 32), mul2 = 1 + ((uint64_t)10000 << 32);
    v -= 0x3030303030303030u;
    v = (v * 10) + (v >> 8); /* pairs of digits */
    return (((v & mask) * mul1) + (((v >> 16) & mask) * mul2)) >> 32;
}
#endif

/* Add the digits that start at s to *man; return where they end. Eight bytes are read as one word: the
 * digits among them counted by a bit mask (no branch per digit) and added with one multiplication. */
static const char *digits(const char *s, const char *end, uint64_t *man)
{
    uint64_t m = *man;
#ifdef MP_SWAR
    static const uint64_t small_pow10[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};
    while (end - s >= 8) {
        uint64_t word, x, other;
        memcpy(&word, s, sizeof word);
        x = word ^ 0x3030303030303030u;                                /* a digit byte becomes 0..9 */
        other = ((x + 0x7676767676767676u) | x) & 0x8080808080808080u; /* the top bit of every other byte */
        if (other == 0) {
            m = m * 100000000u + eight_digits_value(word);
            s += 8;
            continue;
        }
        /* the bytes before the first other one are digits (no carry reaches it from them) */
        int n = trailing_zeros(other) >> 3;
        if (n > 0) {
            uint64_t shifted = (word << (8 * (8 - n))) | (0x3030303030303030u >> (8 * n)); /* "000ddddd" */
            m = m * small_pow10[n] + eight_digits_value(shifted);
        }
        *man = m;
        return s + n;
    }
#endif
    for (; s < end && (unsigned)(*s - '0') < 10; s++)
        m = m * 10 + (unsigned)(*s - '0');
    *man = m;
    return s;
}

#ifdef MP_STRTOD_L
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }
#endif

/* The number text[0:n] (of the simple form) read by strtod in the "C" locale; 0 where that is not available */
static int slow_number(const char *text, size_t n, double *out)
{
#ifdef MP_STRTOD_L
    char copy[128];
    char *stop;
    if (n >= sizeof copy)
        return 0;
    pthread_once(&c_locale_once, make_c_locale);
    if (c_locale == (locale_t)0)
        return 0;
    memcpy(copy, text, n);
    copy[n] = 0;
    *out = strtod_l(copy, &stop, c_locale);
    return stop == copy + n;
#else
    (void)text;
    (void)n;
    (void)out;
    return 0;
#endif
}

/* Parse a number that starts at s; return where it ends, or NULL when it is not of the simple form */
static const char *parse_number(const char *s, const char *end, double *out)
{
    const char *text = s;
    int negative = 0, slow = 0;
    uint64_t man = 0;
    int64_t e10 = 0;
    if (s < end && (*s == '-' || *s == '+')) {
        negative = *s == '-';
        s++;
    }
    const char *first = s;
    s = digits(s, end, &man);
    int64_t count = s - first;
    if (s < end && *s == '.') {
        const char *fraction = ++s;
        s = digits(s, end, &man);
        e10 = -(s - fraction);
        count += s - fraction;
    }
    if (count == 0)
        return NULL;
    if (count > 19) { /* more than 19 digits: only leading zeros may make them fit */
        const char *p = first;
        for (; p < s && (*p == '0' || *p == '.'); p++)
            if (*p == '0')
                count--;
        slow = count > 19;
    }
    if (s < end && (*s == 'e' || *s == 'E')) {
        int exp_negative = 0;
        int64_t exponent = 0;
        s++;
        if (s < end && (*s == '-' || *s == '+')) {
            exp_negative = *s == '-';
            s++;
        }
        const char *exp_first = s;
        for (; s < end && (unsigned)(*s - '0') < 10 && s - exp_first < 7; s++)
            exponent = exponent * 10 + (*s - '0');
        if (s == exp_first || s - exp_first == 7)
            return NULL;
        e10 += exp_negative ? -exponent : exponent;
    }
    double value;
    if (slow)
        return slow_number(text, (size_t)(s - text), out) ? s : NULL;
    if (man == 0)
        value = 0.0;
    else if (man <= ((uint64_t)1 << 53) && e10 >= -22 && e10 <= 22)
        value = e10 >= 0 ? (double)man * exact_pow10[e10] : (double)man / exact_pow10[-e10];
    else if (!eisel_lemire(man, (int)e10, &value))
        return slow_number(text, (size_t)(s - text), out) ? s : NULL; /* the sign is in the text */
    *out = negative ? -value : value;
    return s;
}

static int at_field_end(const char *p, const char *end) { return p == end || *p == ',' || *p == '\n' || *p == '\r'; }

/* Parse the lines of buf[0:size] into ncols columns (kinds[c]: KIND_NUMBER or KIND_TEXT).
 *
 * A number column c fills numbers[c][row]. A text column c fills spans[c][2 row], spans[c][2 row + 1]
 * (where its value starts in buf, and its length: 0 for a null) and valid[c] (a bitmap, zeroed by the
 * caller, one bit set per value that is not null), and adds up its nulls and bytes in null_counts[c]
 * and text_bytes[c] (zeroed by the caller); mp_csv_gather then copies its values. Returns the number
 * of rows, GIVE_UP when the block is not of the simple form, TOO_MANY_ROWS past capacity rows.
 */
MP_EXPORT int64_t mp_csv_block(const char *buf, int64_t size, int64_t ncols, const uint8_t *kinds,
                               double *const *numbers, int32_t *const *spans, uint8_t *const *valid,
                               int64_t *null_counts, int64_t *text_bytes, int64_t capacity)
{
    const char *p = buf, *end = buf + size;
    int64_t row = 0;
    if (size > INT32_MAX)
        return GIVE_UP; /* the text offsets are 32-bit */
    while (p < end) {
        if (*p == '\n') {
            p++;
            continue;
        }
        if (*p == '\r') {
            if (p + 1 < end && p[1] == '\n') {
                p += 2;
                continue;
            }
            return GIVE_UP;
        }
        if (row == capacity)
            return TOO_MANY_ROWS;
        for (int64_t c = 0; c < ncols; c++) {
            const char *field = p, *stop;
            char scratch[64];
            size_t n;
            int quoted = p < end && *p == '"';
            if (kinds[c] == KIND_TEXT) {
                const char *first;
                if (quoted) {
                    first = ++p;
                    for (;; p++) {
                        if (p == end || *p == '\n' || *p == '\r')
                            return GIVE_UP;
                        if (*p == '"')
                            break;
                    }
                    n = (size_t)(p - first);
                    p++;
                    if (!at_field_end(p, end))
                        return GIVE_UP; /* "" within a quoted text, or text after its closing quote */
                } else {
                    first = p;
                    while (!at_field_end(p, end)) {
                        if (*p == '"')
                            return GIVE_UP;
                        p++;
                    }
                    n = (size_t)(p - first);
                }
                int32_t *span = spans[c] + 2 * row;
                span[0] = (int32_t)(first - buf);
                if (is_null(first, n)) {
                    span[1] = 0;
                    null_counts[c]++;
                } else {
                    span[1] = (int32_t)n;
                    text_bytes[c] += (int64_t)n;
                    valid[c][row >> 3] |= (uint8_t)(1u << (row & 7));
                }
            } else {
                double value;
                if (quoted) {
                    n = 0;
                    for (p++;; p++) {
                        if (p == end || *p == '\n' || *p == '\r' || n == sizeof scratch)
                            return GIVE_UP;
                        if (*p == '"') {
                            if (p + 1 < end && p[1] == '"')
                                return GIVE_UP;
                            p++;
                            break;
                        }
                        scratch[n++] = *p;
                    }
                    if (!at_field_end(p, end))
                        return GIVE_UP;
                    field = scratch;
                    stop = scratch + n;
                } else {
                    stop = parse_number(p, end, &value);
                    if (stop != NULL && at_field_end(stop, end)) { /* the common case: one pass */
                        numbers[c][row] = value;
                        p = stop;
                        goto separator;
                    }
                    while (!at_field_end(p, end))
                        p++;
                    n = (size_t)(p - field);
                    stop = p;
                }
                if (is_null(field, n))
                    value = NAN;
                else if (parse_number(field, stop, &value) != stop)
                    return GIVE_UP;
                numbers[c][row] = value;
            }
        separator:
            if (c + 1 < ncols) {
                if (p == end || *p != ',')
                    return GIVE_UP;
                p++;
            } else if (p < end) {
                if (*p == '\n')
                    p++;
                else if (*p == '\r' && p + 1 < end && p[1] == '\n')
                    p += 2;
                else
                    return GIVE_UP;
            }
        }
        row++;
    }
    return row;
}

/* Copy a text column's values (its spans from mp_csv_block) into data, an Arrow string array's
 * value buffer, and write its offsets[0..rows]. */
MP_EXPORT void mp_csv_gather(const char *buf, const int32_t *spans, int64_t rows, int32_t *offsets, char *data)
{
    int32_t at = 0;
    offsets[0] = 0;
    for (int64_t row = 0; row < rows; row++) {
        int32_t n = spans[2 * row + 1];
        memcpy(data + at, buf + spans[2 * row], (size_t)n);
        at += n;
        offsets[row + 1] = at;
    }
}

/* The number of line feeds in buf[0:size]. */
MP_EXPORT int64_t mp_count_lines(const char *buf, int64_t size)
{
    int64_t lines = 0;
    const char *p = buf, *end = buf + size, *found;
    while (p < end && (found = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        lines++;
        p = found + 1;
    }
    return lines;
}
