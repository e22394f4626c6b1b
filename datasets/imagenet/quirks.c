/* datasets/imagenet/quirks.c — what makes our ImageNet shards hold the same files in the same
 * order as slim's: Python 3's Mersenne Twister seeding and shuffle (random.seed(12345);
 * random.shuffle(index)), and numpy.linspace(...).astype(int) shard boundaries.
 * Knows nothing of files or images.
 */
#include "datasets/imagenet/imagenet.h"

#include <stdlib.h>
#include <string.h>

/* MT19937 as CPython's _randommodule.c: init_genrand, init_by_array, genrand_uint32. */
static void init_genrand(imagenet_pyrandom *r, uint32_t s) {
    r->mt[0] = s;
    for (int i = 1; i < 624; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->index = 624;
}

static void init_by_array(imagenet_pyrandom *r, const uint32_t *key, int len) {
    init_genrand(r, 19650218u);
    int i = 1, j = 0;
    for (int k = 624 > len ? 624 : len; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1664525u)) + key[j] +
                   (uint32_t)j;
        i++;
        j++;
        if (i >= 624) {
            r->mt[0] = r->mt[623];
            i = 1;
        }
        if (j >= len) j = 0;
    }
    for (int k = 623; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= 624) {
            r->mt[0] = r->mt[623];
            i = 1;
        }
    }
    r->mt[0] = 0x80000000u;
}

static uint32_t genrand_uint32(imagenet_pyrandom *r) {
    static const uint32_t mag01[2] = {0, 0x9908b0dfu};
    if (r->index >= 624) {
        int kk;
        uint32_t y;
        for (kk = 0; kk < 624 - 397; kk++) {
            y = (r->mt[kk] & 0x80000000u) | (r->mt[kk + 1] & 0x7fffffffu);
            r->mt[kk] = r->mt[kk + 397] ^ (y >> 1) ^ mag01[y & 1];
        }
        for (; kk < 623; kk++) {
            y = (r->mt[kk] & 0x80000000u) | (r->mt[kk + 1] & 0x7fffffffu);
            r->mt[kk] = r->mt[kk + (397 - 624)] ^ (y >> 1) ^ mag01[y & 1];
        }
        y = (r->mt[623] & 0x80000000u) | (r->mt[0] & 0x7fffffffu);
        r->mt[623] = r->mt[396] ^ (y >> 1) ^ mag01[y & 1];
        r->index = 0;
    }
    uint32_t y = r->mt[r->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

void imagenet_pyrandom_seed(imagenet_pyrandom *r, uint64_t seed) {
    /* random.seed(int): the absolute value as 32-bit little-endian words, at least one */
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    init_by_array(r, key, key[1] ? 2 : 1);
}

uint32_t imagenet_pyrandom_bits(imagenet_pyrandom *r, int k) {
    SB_ASSERT(k >= 1 && k <= 32);
    return genrand_uint32(r) >> (32 - k);
}

/* random._randbelow_with_getrandbits(n), n < 2^32 */
static size_t randbelow(imagenet_pyrandom *r, size_t n) {
    int k = 0;
    while (k < 64 && (n >> k)) k++; /* n.bit_length() */
    size_t v = imagenet_pyrandom_bits(r, k);
    while (v >= n) v = imagenet_pyrandom_bits(r, k);
    return v;
}

void imagenet_pyrandom_shuffle(imagenet_pyrandom *r, size_t *x, size_t n) {
    SB_ASSERT(n < ((size_t)1 << 32));
    for (size_t i = n; i-- > 1;) {
        size_t j = randbelow(r, i + 1);
        size_t t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

void imagenet_linspace_int(int64_t start, int64_t stop, int num, int64_t *out) {
    SB_ASSERT(num >= 2);
    /* numpy: y = arange(num) * ((stop - start) / (num - 1)) + start; y[-1] = stop; astype(int)
     * truncates toward zero */
    double step = (double)(stop - start) / (double)(num - 1);
    for (int i = 0; i < num - 1; i++) out[i] = (int64_t)((double)i * step + (double)start);
    out[num - 1] = stop;
}

int imagenet_shard_bounds(int64_t n, int num_shards, int num_threads, int64_t *bounds,
                          sb_err *err) {
    if (num_threads < 1 || num_shards < 1 || num_shards % num_threads)
        return sb_err_set(err, SB_E_USAGE,
                          "the number of shards (%d) must be a multiple of --num_threads (%d), "
                          "as in slim's build_imagenet_data",
                          num_shards, num_threads);
    int per = num_shards / num_threads;
    int64_t *spacing = sb_xmalloc((size_t)(num_threads + 1) * sizeof *spacing);
    int64_t *sub = sb_xmalloc((size_t)(per + 1) * sizeof *sub);
    imagenet_linspace_int(0, n, num_threads + 1, spacing);
    for (int t = 0; t < num_threads; t++) {
        imagenet_linspace_int(spacing[t], spacing[t + 1], per + 1, sub);
        for (int s = 0; s <= per; s++) bounds[t * per + s] = sub[s];
    }
    free(spacing);
    free(sub);
    return 0;
}
