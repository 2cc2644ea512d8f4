/*
 * Copyright (C) ngx_tsdb authors
 *
 * qload: loads the data set of the query benchmark (bench/query-compare)
 * into a server by Prometheus remote write 1.0.
 *
 *     qload -a HOST:PORT [-p PATH] [-t START_MS] [-r ROUNDS] [-i STEP_MS]
 *           [-b SERIES] [-k ROUNDS]
 *
 * The data set is the same for the same arguments:
 *
 *   x{job,instance,path,code}   counters like http_requests_total: 10
 *                               jobs of 10 instances each, 20 paths, 5
 *                               codes: 10,000 series
 *   x_duration_seconds_bucket{job,instance,le}, _sum, _count
 *                               a classic histogram per instance, 11
 *                               buckets: 1,300 series
 *
 * Every 7th instance restarts once during the run (its counters start
 * again from zero).  Instance i is scraped at a fixed phase within the
 * step, as by a real scraper.  ROUNDS samples per series, STEP_MS apart,
 * starting at START_MS.
 *
 * Requests carry K rounds of B series, oldest rounds first: every
 * request of rounds [r, r + K) is sent before any of the next K rounds,
 * one request at a time, so every series' samples arrive in time order
 * and a Prometheus head accepts them.  Any non-2xx answer stops qload
 * with the answer on stderr.
 */

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <snappy-c.h>

#include "prometheus_remote.pb-c.h"


#define QLOAD_JOBS        10
#define QLOAD_INSTANCES   100
#define QLOAD_PATHS       20
#define QLOAD_CODES       5
#define QLOAD_BUCKETS     11
#define QLOAD_NCOUNTERS   (QLOAD_INSTANCES * QLOAD_PATHS * QLOAD_CODES)
#define QLOAD_HIST        (QLOAD_BUCKETS + 2)
#define QLOAD_NSERIES     (QLOAD_NCOUNTERS + QLOAD_INSTANCES * QLOAD_HIST)
#define QLOAD_MAX_LABELS  5


typedef struct {
    const char              *addr;
    const char              *path;
    int64_t                  start;
    int64_t                  step;
    size_t                   rounds;
    size_t                   batch;
    size_t                   block;
    struct addrinfo         *ai;
    uint64_t                 rng;
    Prometheus__TimeSeries   ts[QLOAD_NSERIES];
    Prometheus__Label        lb[QLOAD_NSERIES][QLOAD_MAX_LABELS];
    Prometheus__Label       *lbp[QLOAD_NSERIES][QLOAD_MAX_LABELS];
    int                      inst[QLOAD_NSERIES];
    double                  *value;
} qload_conf_t;


static int qload_args(qload_conf_t *cf, int argc, char **argv);
static void qload_make_series(qload_conf_t *cf);
static void qload_set(qload_conf_t *cf, size_t s, int i, size_t nl,
    const char **names, const char **values);
static void qload_make_values(qload_conf_t *cf);
static void qload_counters(qload_conf_t *cf, size_t r, int i, int reset);
static void qload_histogram(qload_conf_t *cf, size_t r, int i, int reset);
static int qload_send_all(qload_conf_t *cf, size_t *nreqs);
static int qload_post(qload_conf_t *cf, const char *body, size_t len);
static int qload_connect(qload_conf_t *cf);
static double qload_rnd(qload_conf_t *cf);
static char *qload_strdup(const char *fmt, int a);
static void *qload_alloc(size_t n);


static const double  qload_le[QLOAD_BUCKETS - 1] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5
};

static const char  *qload_le_str[QLOAD_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    "+Inf"
};

static const char  *qload_codes[QLOAD_CODES] = {
    "200", "201", "404", "500", "503"
};

/* requests per second of one path per code */
static const double  qload_rate[QLOAD_CODES] = { 8, 1, 0.3, 0.05, 0.01 };


int
main(int argc, char **argv)
{
    int            rc;
    size_t         nreqs;
    struct timespec t0, t1;
    qload_conf_t  *cf;

    cf = qload_alloc(sizeof(qload_conf_t));

    if (qload_args(cf, argc, argv) != 0) {
        return 2;
    }

    qload_make_series(cf);
    qload_make_values(cf);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = qload_send_all(cf, &nreqs);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    if (rc != 0) {
        return 1;
    }

    printf("qload: %d series, %zu samples in %zu requests, %.1f s\n",
           QLOAD_NSERIES, (size_t) QLOAD_NSERIES * cf->rounds, nreqs,
           (double) (t1.tv_sec - t0.tv_sec)
           + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9);

    return 0;
}


static int
qload_args(qload_conf_t *cf, int argc, char **argv)
{
    int               c, rc;
    char              host[256], *colon;
    struct addrinfo   hints;

    cf->addr = "127.0.0.1:9090";
    cf->path = "/api/v1/write";
    cf->step = 15000;
    cf->rounds = 281;
    cf->batch = 1000;
    cf->block = 4;
    cf->start = ((int64_t) time(NULL) - 4260) / 60 * 60000;
    cf->rng = 42;

    while ((c = getopt(argc, argv, "a:p:t:r:i:b:k:")) != -1) {
        switch (c) {
        case 'a': cf->addr = optarg; break;
        case 'p': cf->path = optarg; break;
        case 't': cf->start = strtoll(optarg, NULL, 10); break;
        case 'r': cf->rounds = strtoul(optarg, NULL, 10); break;
        case 'i': cf->step = strtoll(optarg, NULL, 10); break;
        case 'b': cf->batch = strtoul(optarg, NULL, 10); break;
        case 'k': cf->block = strtoul(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: qload -a HOST:PORT [-p PATH]"
                    " [-t START_MS] [-r ROUNDS] [-i STEP_MS] [-b SERIES]"
                    " [-k ROUNDS]\n");
            return -1;
        }
    }

    if (cf->rounds == 0 || cf->batch == 0 || cf->block == 0
        || cf->step <= 0)
    {
        fprintf(stderr, "qload: -r, -b, -k and -i must be positive\n");
        return -1;
    }

    snprintf(host, sizeof(host), "%s", cf->addr);
    colon = strrchr(host, ':');
    if (colon == NULL) {
        fprintf(stderr, "qload: -a wants HOST:PORT\n");
        return -1;
    }

    *colon = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;

    rc = getaddrinfo(host, colon + 1, &hints, &cf->ai);
    if (rc != 0) {
        fprintf(stderr, "qload: %s: %s\n", cf->addr, gai_strerror(rc));
        return -1;
    }

    return 0;
}


static void
qload_make_series(qload_conf_t *cf)
{
    int          i, p, c, b;
    size_t       s;
    const char  *xn[] = { "__name__", "code", "instance", "job", "path" };
    const char  *hn[] = { "__name__", "instance", "job", "le" };
    const char  *v[QLOAD_MAX_LABELS];

    s = 0;
    for (i = 0; i < QLOAD_INSTANCES; i++) {
        v[0] = "x";
        v[2] = qload_strdup("host-%02d:9100", i);
        v[3] = qload_strdup("job-%d", i / (QLOAD_INSTANCES / QLOAD_JOBS));

        for (p = 0; p < QLOAD_PATHS; p++) {
            v[4] = qload_strdup("/api/v1/resource%02d", p);
            for (c = 0; c < QLOAD_CODES; c++) {
                v[1] = qload_codes[c];
                qload_set(cf, s++, i, 5, xn, v);
            }
        }

        v[1] = v[2];
        v[2] = v[3];
        v[0] = "x_duration_seconds_bucket";
        for (b = 0; b < QLOAD_BUCKETS; b++) {
            v[3] = qload_le_str[b];
            qload_set(cf, s++, i, 4, hn, v);
        }

        v[0] = "x_duration_seconds_sum";
        qload_set(cf, s++, i, 3, hn, v);
        v[0] = "x_duration_seconds_count";
        qload_set(cf, s++, i, 3, hn, v);
    }
}


/* series s of instance i; names are given sorted, as Prometheus sends */
static void
qload_set(qload_conf_t *cf, size_t s, int i, size_t nl, const char **names,
    const char **values)
{
    size_t                   k;
    Prometheus__Label       *l;
    Prometheus__TimeSeries  *ts;

    ts = &cf->ts[s];
    prometheus__time_series__init(ts);
    cf->inst[s] = i;

    for (k = 0; k < nl; k++) {
        l = &cf->lb[s][k];
        prometheus__label__init(l);
        l->name = (char *) names[k];
        l->value = (char *) values[k];
        cf->lbp[s][k] = l;
    }

    ts->n_labels = nl;
    ts->labels = cf->lbp[s];
}


/* value[s * rounds + r]: every series' value in every round */
static void
qload_make_values(qload_conf_t *cf)
{
    int     i, reset;
    size_t  r;

    cf->value = qload_alloc(sizeof(double) * QLOAD_NSERIES * cf->rounds);

    for (r = 0; r < cf->rounds; r++) {
        for (i = 0; i < QLOAD_INSTANCES; i++) {
            reset = i % 7 == 0
                    && r == (size_t) (17 + i * 53) % cf->rounds;
            qload_counters(cf, r, i, reset);
            qload_histogram(cf, r, i, reset);
        }
    }
}


static void
qload_counters(qload_conf_t *cf, size_t r, int i, int reset)
{
    int      p, c;
    double   prev, inc, *v;
    size_t   s;

    s = (size_t) i * (QLOAD_PATHS * QLOAD_CODES + QLOAD_HIST);

    for (p = 0; p < QLOAD_PATHS; p++) {
        for (c = 0; c < QLOAD_CODES; c++, s++) {
            v = &cf->value[s * cf->rounds];
            prev = (r == 0 || reset) ? 0 : v[r - 1];
            inc = qload_rate[c] * (1.0 + p % 4) * (double) cf->step / 1000
                  * (0.5 + qload_rnd(cf));
            v[r] = prev + floor(inc);
        }
    }
}


static void
qload_histogram(qload_conf_t *cf, size_t r, int i, int reset)
{
    int      k, b, nobs;
    double   x, sum, *v[QLOAD_HIST];
    size_t   s;

    s = (size_t) i * (QLOAD_PATHS * QLOAD_CODES + QLOAD_HIST)
        + QLOAD_PATHS * QLOAD_CODES;

    for (b = 0; b < QLOAD_HIST; b++) {
        v[b] = &cf->value[(s + (size_t) b) * cf->rounds];
        v[b][r] = (r == 0 || reset) ? 0 : v[b][r - 1];
    }

    nobs = 20 + (int) (qload_rnd(cf) * 60);
    sum = 0;

    for (k = 0; k < nobs; k++) {
        x = pow(qload_rnd(cf), 3) * 2 * (1 + i % 3);
        sum += x;
        for (b = 0; b < QLOAD_BUCKETS; b++) {
            if (b == QLOAD_BUCKETS - 1 || x <= qload_le[b]) {
                v[b][r]++;
            }
        }
    }

    v[QLOAD_BUCKETS][r] += sum;
    v[QLOAD_BUCKETS + 1][r] += nobs;
}


static int
qload_send_all(qload_conf_t *cf, size_t *nreqs)
{
    int                        phase;
    char                      *pb, *z;
    size_t                     r0, g, s, n, k, j, plen, zlen, cap;
    Prometheus__Sample        *sm, **smp;
    Prometheus__TimeSeries    *tsp[QLOAD_NSERIES];
    Prometheus__WriteRequest   req = PROMETHEUS__WRITE_REQUEST__INIT;

    n = cf->batch * cf->block;
    sm = qload_alloc(n * sizeof(Prometheus__Sample));
    smp = qload_alloc(n * sizeof(Prometheus__Sample *));
    cap = 0;
    pb = NULL;
    z = NULL;
    *nreqs = 0;

    for (s = 0; s < QLOAD_NSERIES; s++) {
        tsp[s] = &cf->ts[s];
    }

    for (r0 = 0; r0 < cf->rounds; r0 += cf->block) {
        k = cf->rounds - r0 < cf->block ? cf->rounds - r0 : cf->block;

        for (g = 0; g < QLOAD_NSERIES; g += cf->batch) {
            n = QLOAD_NSERIES - g < cf->batch ? QLOAD_NSERIES - g
                                              : cf->batch;

            for (s = g; s < g + n; s++) {
                phase = (cf->inst[s] * 149) % (int) cf->step;
                for (j = 0; j < k; j++) {
                    Prometheus__Sample *p = &sm[(s - g) * k + j];
                    prometheus__sample__init(p);
                    p->timestamp = cf->start + phase
                                   + (int64_t) (r0 + j) * cf->step;
                    p->value = cf->value[s * cf->rounds + r0 + j];
                    smp[(s - g) * k + j] = p;
                }
                cf->ts[s].n_samples = k;
                cf->ts[s].samples = &smp[(s - g) * k];
            }

            req.n_timeseries = n;
            req.timeseries = &tsp[g];

            plen = prometheus__write_request__get_packed_size(&req);
            if (snappy_max_compressed_length(plen) > cap) {
                cap = snappy_max_compressed_length(plen) * 2;
                free(pb);
                free(z);
                pb = qload_alloc(cap);
                z = qload_alloc(cap);
            }

            prometheus__write_request__pack(&req, (uint8_t *) pb);

            zlen = cap;
            if (snappy_compress(pb, plen, z, &zlen) != SNAPPY_OK) {
                fprintf(stderr, "qload: snappy_compress() failed\n");
                return -1;
            }

            if (qload_post(cf, z, zlen) != 0) {
                return -1;
            }

            (*nreqs)++;
        }
    }

    free(pb);
    free(z);
    free(sm);
    free(smp);

    return 0;
}


/* one request per connection ("Connection: close"): read to EOF */
static int
qload_post(qload_conf_t *cf, const char *body, size_t len)
{
    int      fd, hlen, status;
    char     head[1024], resp[4096];
    size_t   off, have;
    ssize_t  n;

    fd = qload_connect(cf);
    if (fd == -1) {
        fprintf(stderr, "qload: connect to %s: %s\n", cf->addr,
                strerror(errno));
        return -1;
    }

    hlen = snprintf(head, sizeof(head),
                    "POST %s HTTP/1.1\r\n"
                    "Host: %s\r\n"
                    "User-Agent: qload\r\n"
                    "Content-Type: application/x-protobuf\r\n"
                    "Content-Encoding: snappy\r\n"
                    "X-Prometheus-Remote-Write-Version: 0.1.0\r\n"
                    "Connection: close\r\n"
                    "Content-Length: %zu\r\n\r\n", cf->path, cf->addr, len);

    for (off = 0; off < (size_t) hlen + len; off += (size_t) n) {
        if (off < (size_t) hlen) {
            n = send(fd, head + off, (size_t) hlen - off, MSG_NOSIGNAL);
        } else {
            n = send(fd, body + off - hlen, len + hlen - off, MSG_NOSIGNAL);
        }

        if (n <= 0) {
            if (n == -1 && errno == EINTR) {
                n = 0;
                continue;
            }
            fprintf(stderr, "qload: send: %s\n", strerror(errno));
            close(fd);
            return -1;
        }
    }

    have = 0;
    while (have < sizeof(resp) - 1) {
        n = recv(fd, resp + have, sizeof(resp) - 1 - have, 0);
        if (n == 0 || (n == -1 && errno != EINTR)) {
            break;
        }
        have += n > 0 ? (size_t) n : 0;
    }

    close(fd);
    resp[have] = '\0';

    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1
        || status < 200 || status > 299)
    {
        fprintf(stderr, "qload: %s answered:\n%s\n", cf->addr, resp);
        return -1;
    }

    return 0;
}


static int
qload_connect(qload_conf_t *cf)
{
    int  fd;

    fd = socket(cf->ai->ai_family, SOCK_STREAM, 0);
    if (fd == -1) {
        return -1;
    }

    if (connect(fd, cf->ai->ai_addr, cf->ai->ai_addrlen) == -1) {
        close(fd);
        return -1;
    }

    return fd;
}


/* xorshift64*: the same sequence on every platform */
static double
qload_rnd(qload_conf_t *cf)
{
    cf->rng ^= cf->rng >> 12;
    cf->rng ^= cf->rng << 25;
    cf->rng ^= cf->rng >> 27;

    return (double) ((cf->rng * 2685821657736338717ull) >> 11)
           / 9007199254740992.0;
}


static char *
qload_strdup(const char *fmt, int a)
{
    char  *s;

    s = qload_alloc(32);
    snprintf(s, 32, fmt, a);

    return s;
}


static void *
qload_alloc(size_t n)
{
    void  *p;

    p = calloc(1, n);
    if (p == NULL) {
        fprintf(stderr, "qload: out of memory\n");
        exit(1);
    }

    return p;
}
