#include <stdio.h>
#include "stats.h"
int main(int argc, char **argv) {
    double xs[1024];
    size_t n = 0;
    for (int i = 1; i < argc && n < 1024; i++)
        n += parse_numbers(argv[i], xs + n, 1024 - n);
    printf("n=%zu mean=%.2f variance=%.2f median=%.2f\n",
           n, mean(xs, n), variance(xs, n), median(xs, n));
    return 0;
}
