/* splitmix.h - splitmix64, the server's one small generator (user directory, --exercise random). */
#ifndef SPLITMIX_H
#define SPLITMIX_H

#include <stdint.h>

/* Advance *state and return its next 64-bit value: small, fast, every bit
 * of the state reaching every bit of the result, and the same sequence
 * from the same seed on every run. Not for secrets. */
static inline uint64_t splitmix64_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif /* SPLITMIX_H */
