/* openmp.c - an OpenMP program (libgomp's thread pool, as numeric codes run): parallel loops
 * that allocate per iteration, a reduction, tasks. */

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    long sum = 0;
    omp_set_num_threads(4);
    for (int pass = 0; pass < 5; pass++) {
#pragma omp parallel for reduction(+ : sum) schedule(dynamic, 64)
        for (int i = 0; i < 20000; i++) {
            char *p = malloc(32 + (size_t)(i % 300));
            memset(p, i & 0x7f, 32);
            sum += p[5];
            free(p);
        }
    }
    long tasks = 0;
#pragma omp parallel
#pragma omp single
    for (int i = 0; i < 200; i++) {
#pragma omp task shared(tasks)
        {
            int *v = calloc(100, sizeof *v);
            v[99] = 1;
#pragma omp atomic
            tasks += v[99];
            free(v);
        }
    }
    printf("sum %ld, tasks %ld\n", sum, tasks);
    return 0;
}
