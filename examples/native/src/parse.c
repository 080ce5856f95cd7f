#include <stdlib.h>
#include "stats.h"
size_t parse_numbers(const char *text, double *out, size_t max) {
    size_t n = 0;
    char *end;
    while (n < max) {
        double v = strtod(text, &end);
        if (end == text) { if (!*text) break; text++; continue; }
        out[n++] = v;
        text = end;
    }
    return n;
}
