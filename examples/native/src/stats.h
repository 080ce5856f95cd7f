#ifndef STATS_H
#define STATS_H
#include <stddef.h>
double mean(const double *xs, size_t n);
double variance(const double *xs, size_t n);
double median(double *xs, size_t n);
size_t parse_numbers(const char *text, double *out, size_t max);
#endif
