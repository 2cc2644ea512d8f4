/*
 * Copyright (C) ngx_tsdb authors
 *
 * pload: the profile ingest benchmark's load generator
 * (bench/profile-bench).  Sends real pprof profiles to a
 * tsdb_profile_ingest location over many keep-alive HTTP/1.1
 * connections and reports profiles ingested per second.
 *
 *     pload -a HOST:PORT [-P PREFIX] [-e push|ingest] [-c CONNS]
 *           [-n PROFILES] [-k PER_REQUEST] [-s SERVICES] [-p PODS] FILE...
 *
 * FILEs are pprof profiles (gzip or not), decoded once and re-encoded
 * gzip with time_nanos 0, so that the server stamps each with its
 * arrival time (Pyroscope's fixTime) and equal bodies never collide on
 * one row key.  Profile i is FILE i % nfiles with the labels
 * service_name=svc-<i / nfiles % SERVICES> and pod=pod-<i / (nfiles *
 * SERVICES) % PODS>: SERVICES x PODS x nfiles distinct series per
 * sample type.  -e push (default) sends each as a binary Connect
 * PushRequest to PREFIX/push.v1.PusherService/Push; -e ingest as
 * Pyroscope's /ingest?name=...&format=pprof.  -k K (push only) puts
 * K profiles (K series) into one PushRequest, which the server stores
 * in one transaction; PROFILES is then rounded down to a multiple of K.
 * Request bodies are built
 * before the clock starts.  Any non-200 answer is counted, and the first
 * one printed.  Output: one "key value" line per figure.
 */

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "ts_error.h"
#include "ts_pprof.h"
#include "pyroscope_push.pb-c.h"


#define PL_RBUF       16384
#define PL_MAX_FILES  64
#define PL_HEAD_MAX   1024


typedef struct {
    char                    *data;
    size_t                   len;
} pl_req_t;


typedef struct {
    const char              *addr;
    const char              *prefix;
    int                      push;
    int                      nconns;
    uint64_t                 n;
    uint64_t                 nrq;           /* requests: n / batch */
    uint32_t                 batch;
    uint32_t                 services;
    uint32_t                 pods;
    struct sockaddr_storage  sa;
    socklen_t                salen;

    uint8_t                 *prof[PL_MAX_FILES];
    size_t                   prof_len[PL_MAX_FILES];
    uint32_t                 nfiles;

    pl_req_t                *reqs;
    uint64_t                 nreqs;

    pthread_mutex_t          lock;
    uint64_t                 next;
    uint64_t                 ok;
    uint64_t                 bad;
    uint64_t                 err;
    uint64_t                 bytes;
    int                      printed;
} pl_conf_t;


typedef struct {
    pl_conf_t               *cf;
    pthread_t                tid;
    int                      fd;
    double                  *lat;
    uint64_t                 nlat;
    char                     rbuf[PL_RBUF];
} pl_conn_t;


typedef struct {
    uint8_t                 *p;
    size_t                   len;
    size_t                   cap;
} pl_buf_t;


static int pl_args(pl_conf_t *cf, int argc, char **argv);
static int pl_load(pl_conf_t *cf, const char *path);
static int pl_write(void *data, const char *p, size_t len);
static void pl_build(pl_conf_t *cf, uint64_t k, pl_req_t *rq);
static void pl_series(pl_conf_t *cf, uint64_t i, char *svc, char *pod,
    Push__V1__RawProfileSeries *ser);
static void *pl_thread(void *arg);
static int pl_connect(pl_conf_t *cf);
static int pl_exchange(pl_conn_t *c, const pl_req_t *rq, int *status);
static int pl_cmp(const void *a, const void *b);
static double pl_now(void);
static void *pl_alloc(size_t n);


int
main(int argc, char **argv)
{
    int         i;
    double      t0, t1, *lat;
    uint64_t    k, nlat;
    pl_conf_t   cf;
    pl_conn_t  *conns;

    memset(&cf, 0, sizeof(pl_conf_t));

    if (pl_args(&cf, argc, argv) != 0) {
        fprintf(stderr, "usage: pload -a HOST:PORT [-P PREFIX]"
                " [-e push|ingest] [-c CONNS] [-n PROFILES]"
                " [-k PER_REQUEST] [-s SERVICES] [-p PODS] FILE...\n");
        return 2;
    }

    for (i = optind; i < argc; i++) {
        if (pl_load(&cf, argv[i]) != 0) {
            return 1;
        }
    }

    /* every distinct body once; the load cycles through them */

    cf.nrq = cf.n / cf.batch;
    cf.n = cf.nrq * cf.batch;
    cf.nreqs = (uint64_t) cf.nfiles * cf.services * cf.pods;
    cf.nreqs = (cf.nreqs + cf.batch - 1) / cf.batch;
    cf.nreqs = cf.nreqs < cf.nrq ? cf.nreqs : cf.nrq;
    cf.reqs = pl_alloc(cf.nreqs * sizeof(pl_req_t));

    for (k = 0; k < cf.nreqs; k++) {
        pl_build(&cf, k, &cf.reqs[k]);
    }

    conns = pl_alloc((size_t) cf.nconns * sizeof(pl_conn_t));
    pthread_mutex_init(&cf.lock, NULL);

    t0 = pl_now();

    for (i = 0; i < cf.nconns; i++) {
        conns[i].cf = &cf;
        conns[i].fd = -1;
        conns[i].lat = pl_alloc((cf.nrq + 1) * sizeof(double));

        if (pthread_create(&conns[i].tid, NULL, pl_thread, &conns[i]) != 0) {
            fprintf(stderr, "pload: pthread_create() failed\n");
            return 1;
        }
    }

    for (i = 0; i < cf.nconns; i++) {
        pthread_join(conns[i].tid, NULL);
    }

    t1 = pl_now();

    lat = pl_alloc((cf.nrq + 1) * sizeof(double));
    nlat = 0;

    for (i = 0; i < cf.nconns; i++) {
        memcpy(lat + nlat, conns[i].lat, conns[i].nlat * sizeof(double));
        nlat += conns[i].nlat;
    }

    qsort(lat, nlat, sizeof(double), pl_cmp);

    printf("endpoint %s\n", cf.push ? "push" : "ingest");
    printf("connections %d\n", cf.nconns);
    printf("profiles_per_request %u\n", cf.batch);
    printf("files %u\n", cf.nfiles);
    printf("series_label_sets %llu\n",
           (unsigned long long) cf.services * cf.pods);
    printf("profiles_sent %llu\n", (unsigned long long) cf.n);
    printf("profiles_ok %llu\n", (unsigned long long) cf.ok);
    printf("profiles_refused %llu\n", (unsigned long long) cf.bad);
    printf("errors %llu\n", (unsigned long long) cf.err);
    printf("seconds %.3f\n", t1 - t0);
    printf("profiles_per_second %.1f\n", (double) cf.ok / (t1 - t0));
    printf("request_bytes_avg %.0f\n",
           cf.nrq ? (double) cf.bytes / (double) cf.nrq : 0.0);
    printf("latency_ms_p50 %.2f\n", nlat ? lat[nlat / 2] : 0.0);
    printf("latency_ms_p99 %.2f\n", nlat ? lat[nlat * 99 / 100] : 0.0);
    printf("latency_ms_max %.2f\n", nlat ? lat[nlat - 1] : 0.0);

    return (cf.bad || cf.err) ? 1 : 0;
}


static int
pl_args(pl_conf_t *cf, int argc, char **argv)
{
    int               c, rc;
    char              host[256], *colon;
    struct addrinfo   hints, *ai;

    cf->prefix = "";
    cf->push = 1;
    cf->nconns = 16;
    cf->n = 10000;
    cf->services = 10;
    cf->pods = 20;
    cf->batch = 1;

    while ((c = getopt(argc, argv, "a:P:e:c:n:k:s:p:")) != -1) {
        switch (c) {
        case 'a': cf->addr = optarg; break;
        case 'P': cf->prefix = optarg; break;
        case 'e': cf->push = strcmp(optarg, "ingest") != 0; break;
        case 'c': cf->nconns = atoi(optarg); break;
        case 'n': cf->n = strtoull(optarg, NULL, 10); break;
        case 'k': cf->batch = (uint32_t) atoi(optarg); break;
        case 's': cf->services = (uint32_t) atoi(optarg); break;
        case 'p': cf->pods = (uint32_t) atoi(optarg); break;
        default: return -1;
        }
    }

    if (cf->addr == NULL || optind >= argc || argc - optind > PL_MAX_FILES
        || cf->nconns < 1 || cf->services < 1 || cf->pods < 1
        || cf->batch < 1 || cf->batch > 256 || cf->n < cf->batch
        || (!cf->push && cf->batch != 1)
        || strlen(cf->addr) >= sizeof(host))
    {
        return -1;
    }

    strcpy(host, cf->addr);
    colon = strrchr(host, ':');
    if (colon == NULL) {
        return -1;
    }

    *colon = '\0';

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;

    rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "pload: %s: %s\n", cf->addr, gai_strerror(rc));
        return -1;
    }

    memcpy(&cf->sa, ai->ai_addr, ai->ai_addrlen);
    cf->salen = ai->ai_addrlen;
    freeaddrinfo(ai);

    return 0;
}


/* decoded and written back gzip, time 0: the server stamps arrival */

static int
pl_load(pl_conf_t *cf, const char *path)
{
    FILE            *f;
    size_t           len;
    uint8_t         *buf;
    pl_buf_t         out;
    ts_pprof_t       p;
    ts_pprof_why_t   why;

    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "pload: cannot open %s\n", path);
        return -1;
    }

    buf = pl_alloc(16 << 20);
    len = fread(buf, 1, 16 << 20, f);
    fclose(f);

    ts_pprof_init(&p, NULL, NULL);

    if (ts_pprof_parse(&p, buf, len, &why) != TS_OK) {
        fprintf(stderr, "pload: %s: %s\n", path, why.msg);
        return -1;
    }

    p.time_nanos = 0;
    memset(&out, 0, sizeof(pl_buf_t));

    if (ts_pprof_encode(&p, 6, pl_write, &out) != TS_OK) {
        fprintf(stderr, "pload: %s: cannot encode\n", path);
        return -1;
    }

    cf->prof[cf->nfiles] = out.p;
    cf->prof_len[cf->nfiles++] = out.len;

    ts_pprof_free(&p);
    free(buf);

    return 0;
}


static int
pl_write(void *data, const char *p, size_t len)
{
    pl_buf_t  *b = data;

    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL) {
            return -1;
        }
    }

    memcpy(b->p + b->len, p, len);
    b->len += len;

    return 0;
}


/* request k: profiles k * batch .. + batch */

static void
pl_build(pl_conf_t *cf, uint64_t k, pl_req_t *rq)
{
    int                           n;
    char                          svc[256][32], pod[256][32];
    char                          head[PL_HEAD_MAX], *body;
    size_t                        blen;
    uint32_t                      f, j;
    Push__V1__PushRequest         req;
    Push__V1__RawProfileSeries    ser[256], *serp[256];

    if (cf->push) {
        for (j = 0; j < cf->batch; j++) {
            pl_series(cf, k * cf->batch + j, svc[j], pod[j], &ser[j]);
            serp[j] = &ser[j];
        }

        push__v1__push_request__init(&req);
        req.series = serp;
        req.n_series = cf->batch;

        blen = push__v1__push_request__get_packed_size(&req);
        body = pl_alloc(blen);
        push__v1__push_request__pack(&req, (uint8_t *) body);

        for (j = 0; j < cf->batch; j++) {
            free(ser[j].labels[0]);
            free(ser[j].labels);
            free(ser[j].samples[0]);
            free(ser[j].samples);
        }

        n = snprintf(head, sizeof(head),
                     "POST %s/push.v1.PusherService/Push HTTP/1.1\r\n"
                     "Host: %s\r\nContent-Type: application/proto\r\n"
                     "Connect-Protocol-Version: 1\r\n"
                     "Content-Length: %zu\r\n\r\n", cf->prefix, cf->addr,
                     blen);

    } else {
        f = (uint32_t) (k % cf->nfiles);
        (void) pl_series(cf, k, svc[0], pod[0], &ser[0]);
        free(ser[0].labels[0]);
        free(ser[0].labels);
        free(ser[0].samples[0]);
        free(ser[0].samples);

        body = (char *) cf->prof[f];
        blen = cf->prof_len[f];

        n = snprintf(head, sizeof(head),
                     "POST %s/ingest?name=%s.cpu%%7Bpod%%3D%s%%7D"
                     "&format=pprof&spyName=gospy HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Content-Type: application/octet-stream\r\n"
                     "Content-Length: %zu\r\n\r\n", cf->prefix, svc[0],
                     pod[0], cf->addr, blen);
    }

    rq->len = (size_t) n + blen;
    rq->data = pl_alloc(rq->len);
    memcpy(rq->data, head, (size_t) n);
    memcpy(rq->data + n, body, blen);

    if (cf->push) {
        free(body);
    }
}


/* profile i: its labels and raw profile as one RawProfileSeries */

static void
pl_series(pl_conf_t *cf, uint64_t i, char *svc, char *pod,
    Push__V1__RawProfileSeries *ser)
{
    uint32_t               f, j;
    Push__V1__RawSample   *s;
    Types__V1__LabelPair  *l, **lp;

    f = (uint32_t) (i % cf->nfiles);
    snprintf(svc, 32, "svc-%llu",
             (unsigned long long) (i / cf->nfiles % cf->services));
    snprintf(pod, 32, "pod-%llu", (unsigned long long)
             (i / ((uint64_t) cf->nfiles * cf->services) % cf->pods));

    l = pl_alloc(3 * sizeof(Types__V1__LabelPair));
    lp = pl_alloc(3 * sizeof(Types__V1__LabelPair *));

    for (j = 0; j < 3; j++) {
        types__v1__label_pair__init(&l[j]);
        lp[j] = &l[j];
    }

    l[0].name = "__name__";
    l[0].value = "process_cpu";
    l[1].name = "service_name";
    l[1].value = svc;
    l[2].name = "pod";
    l[2].value = pod;

    s = pl_alloc(sizeof(Push__V1__RawSample));
    push__v1__raw_sample__init(s);
    s->raw_profile.data = cf->prof[f];
    s->raw_profile.len = cf->prof_len[f];
    s->id = "00000000-0000-0000-0000-000000000000";

    push__v1__raw_profile_series__init(ser);
    ser->labels = lp;
    ser->n_labels = 3;
    ser->samples = pl_alloc(sizeof(Push__V1__RawSample *));
    ser->samples[0] = s;
    ser->n_samples = 1;
}


static void *
pl_thread(void *arg)
{
    int             status;
    double          t0;
    uint64_t        i;
    pl_conn_t      *c = arg;
    pl_conf_t      *cf = c->cf;
    const pl_req_t *rq;

    for ( ;; ) {
        pthread_mutex_lock(&cf->lock);
        i = cf->next++;
        pthread_mutex_unlock(&cf->lock);

        if (i >= cf->nrq) {
            break;
        }

        rq = &cf->reqs[i % cf->nreqs];
        t0 = pl_now();

        if (c->fd == -1) {
            c->fd = pl_connect(cf);
        }

        if (c->fd == -1 || pl_exchange(c, rq, &status) != 0) {
            if (c->fd != -1) {
                close(c->fd);
                c->fd = -1;
            }

            pthread_mutex_lock(&cf->lock);
            cf->err++;
            pthread_mutex_unlock(&cf->lock);
            continue;
        }

        c->lat[c->nlat++] = (pl_now() - t0) * 1000;

        pthread_mutex_lock(&cf->lock);
        cf->bytes += rq->len;

        if (status == 200) {
            cf->ok += cf->batch;

        } else {
            cf->bad += cf->batch;

            if (!cf->printed) {
                cf->printed = 1;
                fprintf(stderr, "pload: %d: %s\n", status, c->rbuf);
            }
        }

        pthread_mutex_unlock(&cf->lock);
    }

    if (c->fd != -1) {
        close(c->fd);
    }

    return NULL;
}


static int
pl_connect(pl_conf_t *cf)
{
    int  fd, one;

    fd = socket(cf->sa.ss_family, SOCK_STREAM, 0);
    if (fd == -1) {
        return -1;
    }

    one = 1;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    if (connect(fd, (struct sockaddr *) &cf->sa, cf->salen) == -1) {
        close(fd);
        return -1;
    }

    return fd;
}


/*
 * Sends rq and reads one response: the head, then Content-Length bytes
 * (Connect answers and our 4xx always carry one).  "Connection: close"
 * closes the socket; the next request reconnects.
 */

static int
pl_exchange(pl_conn_t *c, const pl_req_t *rq, int *status)
{
    int       close_it;
    long      clen;
    char     *end, *p;
    size_t    off, have, body;
    ssize_t   n;

    for (off = 0; off < rq->len; off += (size_t) n) {
        n = send(c->fd, rq->data + off, rq->len - off, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n == -1 && errno == EINTR) {
                n = 0;
                continue;
            }

            return -1;
        }
    }

    have = 0;
    end = NULL;

    while (end == NULL) {
        if (have == PL_RBUF - 1) {
            return -1;
        }

        n = recv(c->fd, c->rbuf + have, PL_RBUF - 1 - have, 0);
        if (n <= 0) {
            if (n == -1 && errno == EINTR) {
                continue;
            }

            return -1;
        }

        have += (size_t) n;
        c->rbuf[have] = '\0';
        end = strstr(c->rbuf, "\r\n\r\n");
    }

    if (sscanf(c->rbuf, "HTTP/1.%*d %d", status) != 1) {
        return -1;
    }

    clen = 0;
    close_it = 0;

    for (p = strstr(c->rbuf, "\r\n"); p != NULL && p < end;
         p = strstr(p + 2, "\r\n"))
    {
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0) {
            clen = strtol(p + 17, NULL, 10);

        } else if (strncasecmp(p + 2, "Connection: close", 17) == 0) {
            close_it = 1;
        }
    }

    body = have - (size_t) (end + 4 - c->rbuf);

    while (body < (size_t) clen) {
        if (have == PL_RBUF - 1) {
            return -1;
        }

        n = recv(c->fd, c->rbuf + have, PL_RBUF - 1 - have, 0);
        if (n <= 0) {
            if (n == -1 && errno == EINTR) {
                continue;
            }

            return -1;
        }

        have += (size_t) n;
        body += (size_t) n;
        c->rbuf[have] = '\0';
    }

    if (close_it) {
        close(c->fd);
        c->fd = -1;
    }

    return 0;
}


static int
pl_cmp(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


static double
pl_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static void *
pl_alloc(size_t n)
{
    void  *p;

    p = calloc(1, n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "pload: out of memory\n");
        exit(1);
    }

    return p;
}
