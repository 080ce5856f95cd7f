#include "stats.h"
double variance(const double *xs, size_t n) {
    double m = mean(xs, n), s = 0;
    for (size_t i = 0; i < n; i++) s += (xs[i] - m) * (xs[i] - m);
    return n ? s / n : 0;
}
