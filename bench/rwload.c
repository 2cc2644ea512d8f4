/*
 * Copyright (C) ngx_tsdb authors
 *
 * rwload: a Prometheus remote-write 1.0 load generator.
 *
 *     rwload [-a HOST:PORT] [-p PATH] [-s SERIES] [-c CONNS] [-r ROUNDS]
 *            [-W WARMUP] [-d SECONDS] [-b BATCH] [-i STEP_MS]
 *            [-t START_MS] [-H 'Name: value']... [-P PID,PID...]
 *
 * SERIES series shaped like node_exporter's (about 100 metric names,
 * job, instance, cpu, mode, env, region; counters that increase, gauges
 * that wander).  A round is one sample for every series at the next
 * timestamp (STEP_MS apart, the last round near now).  Series are cut
 * into groups of BATCH; one request carries one group's samples of one
 * round, as Prometheus sends them.  Group g always goes over connection
 * g % CONNS, each connection sends its requests one after the other, so
 * every series' samples arrive strictly in time order.
 *
 * All bodies are built (protobuf-c, snappy) before the timed phase so
 * that the generator does not compete with the server for CPU while it
 * is measured.  The first WARMUP rounds (default 1, which creates the
 * series) are sent before the clock starts.  Then the remaining rounds
 * are sent, at most for SECONDS if given, and rwload prints the samples
 * acknowledged with a 2xx per second, the latency of each request
 * (send to end of response) at p50 and p99, and non-2xx answers by
 * status.  The last line is machine-readable ("RESULT key=value ...").
 * With -P, the CPU seconds (user + system) and minor page faults of the
 * given server processes over the timed phase only, from /proc/PID/stat,
 * are printed too, per million samples acknowledged.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <snappy-c.h>

#include "prometheus_remote.pb-c.h"


#define RWLOAD_NLABELS     7
#define RWLOAD_MAX_HEADERS 16
#define RWLOAD_NCODES      600
#define RWLOAD_RBUF        65536


typedef struct {
    char                    *data;
    size_t                   len;
    uint32_t                 nsamples;
} rwload_req_t;


typedef struct {
    uint64_t                 reqs_ok;
    uint64_t                 samples_ok;
    uint64_t                 reqs_bad;
    uint64_t                 samples_bad;
    uint64_t                 reqs_err;
    uint64_t                 codes[RWLOAD_NCODES];
} rwload_stats_t;


typedef struct rwload_conf_s  rwload_conf_t;

typedef struct {
    pthread_t                tid;
    int                      id;
    int                      fd;
    rwload_conf_t           *conf;
    rwload_req_t            *reqs;
    size_t                   nreqs;
    size_t                   nwarm;
    double                  *lat;
    size_t                   nlat;
    rwload_stats_t           warm;
    rwload_stats_t           timed;
    char                     rbuf[RWLOAD_RBUF];
} rwload_conn_t;


struct rwload_conf_s {
    const char              *addr;
    const char              *path;
    const char              *headers[RWLOAD_MAX_HEADERS];
    int                      nheaders;
    size_t                   nseries;
    size_t                   nconns;
    size_t                   rounds;
    size_t                   warmup;
    size_t                   batch;
    double                   duration;
    int64_t                  step;
    int64_t                  start;
    struct sockaddr_storage  sa;
    socklen_t                salen;
    Prometheus__TimeSeries  *ts;
    Prometheus__TimeSeries **tsp;
    Prometheus__Sample      *sm;
    Prometheus__Sample     **smp;
    double                  *value;
    uint64_t                *rng;
    double                   deadline;
    double                   cpu_s;      /* in the timed phase */
    const char              *pids;       /* -P: server processes */
    double                   srv_cpu_s;  /* theirs in the timed phase */
    double                   srv_faults;
    int                      shown;
    pthread_barrier_t        barrier;
    pthread_mutex_t          lock;
};


static int rwload_args(rwload_conf_t *cf, int argc, char **argv);
static int rwload_resolve(rwload_conf_t *cf);
static void rwload_make_series(rwload_conf_t *cf);
static char *rwload_strdup(const char *fmt, size_t a, size_t b);
static void *rwload_thread(void *arg);
static void rwload_encode(rwload_conn_t *c);
static double rwload_next_value(rwload_conf_t *cf, size_t i);
static int rwload_connect(rwload_conf_t *cf);
static void rwload_send(rwload_conn_t *c, rwload_req_t *rq,
    rwload_stats_t *st, int timed);
static int rwload_exchange(rwload_conn_t *c, rwload_req_t *rq,
    int *status);
static int rwload_read_response(rwload_conn_t *c, int *status);
static int rwload_body_done(rwload_conn_t *c, char *body, size_t have,
    long clen, int chunked);
static void rwload_report(rwload_conf_t *cf, rwload_conn_t *conns,
    double encode_s, double elapsed);
static int rwload_cmp(const void *a, const void *b);
static double rwload_now(void);
static double rwload_cpu(void);
static void rwload_server(const char *pids, double *cpu, double *faults);
static void *rwload_alloc(size_t n);


/* node_exporter-like metric names; every third one a gauge */

static const char  *rwload_names[] = {
    "node_cpu_seconds_total", "node_cpu_guest_seconds_total",
    "node_memory_MemFree_bytes", "node_disk_read_bytes_total",
    "node_disk_written_bytes_total", "node_load1",
    "node_disk_reads_completed_total", "node_disk_writes_completed_total",
    "node_filesystem_avail_bytes", "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total", "node_memory_Cached_bytes",
    "node_network_receive_packets_total",
    "node_network_transmit_packets_total", "node_filesystem_free_bytes",
    "node_network_receive_errs_total", "node_network_transmit_errs_total",
    "node_memory_Buffers_bytes", "node_network_receive_drop_total",
    "node_network_transmit_drop_total", "node_load5",
    "node_context_switches_total", "node_intr_total",
    "node_memory_Active_bytes", "node_forks_total",
    "node_disk_io_time_seconds_total", "node_load15",
    "node_disk_read_time_seconds_total",
    "node_disk_write_time_seconds_total", "node_memory_Inactive_bytes",
    "node_vmstat_pgfault", "node_vmstat_pgmajfault",
    "node_filesystem_files_free", "node_vmstat_pswpin",
    "node_vmstat_pswpout", "node_memory_Dirty_bytes",
    "node_netstat_Tcp_InSegs", "node_netstat_Tcp_OutSegs",
    "node_procs_running", "node_netstat_Tcp_RetransSegs",
    "node_netstat_Udp_InDatagrams", "node_procs_blocked",
    "node_netstat_Udp_OutDatagrams", "node_netstat_TcpExt_ListenDrops",
    "node_sockstat_TCP_inuse", "node_schedstat_running_seconds_total",
    "node_schedstat_waiting_seconds_total", "node_entropy_available_bits",
    "node_schedstat_timeslices_total", "node_softnet_processed_total",
    "node_filefd_allocated", "node_softnet_dropped_total",
    "node_softnet_times_squeezed_total", "node_memory_Shmem_bytes",
    "node_pressure_cpu_waiting_seconds_total",
    "node_pressure_io_waiting_seconds_total", "node_sockstat_UDP_inuse",
    "node_pressure_io_stalled_seconds_total",
    "node_pressure_memory_waiting_seconds_total",
    "node_memory_Slab_bytes", "node_pressure_memory_stalled_seconds_total",
    "node_disk_discards_completed_total", "node_hwmon_temp_celsius",
    "node_disk_discarded_sectors_total", "node_disk_flush_requests_total",
    "node_memory_SwapFree_bytes", "node_network_receive_multicast_total",
    "node_network_transmit_colls_total", "node_timex_offset_seconds",
    "node_network_receive_compressed_total",
    "node_network_transmit_compressed_total", "node_memory_Mapped_bytes",
    "node_network_receive_fifo_total", "node_network_transmit_fifo_total",
    "node_network_up", "node_network_receive_frame_total",
    "node_network_transmit_carrier_total", "node_memory_Committed_AS_bytes",
    "node_cpu_core_throttles_total", "node_cpu_package_throttles_total",
    "node_cpu_scaling_frequency_hertz", "node_nf_conntrack_stat_found",
    "node_nf_conntrack_stat_invalid", "node_nf_conntrack_entries",
    "node_nf_conntrack_stat_insert", "node_nf_conntrack_stat_drop",
    "node_thermal_zone_temp", "node_udp_queues", "node_tcp_connection_states",
    "node_textfile_scrape_error", "node_scrape_collector_duration_seconds",
    "node_scrape_collector_success", "node_time_seconds",
    "node_boot_time_seconds", "node_exporter_build_info",
    "process_cpu_seconds_total", "process_resident_memory_bytes",
    "process_open_fds", "go_gc_duration_seconds_count", "go_goroutines",
    "promhttp_metric_handler_requests_total"
};

#define RWLOAD_NNAMES  (sizeof(rwload_names) / sizeof(rwload_names[0]))

static const char  *rwload_modes[] = {
    "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"
};

static const char  *rwload_regions[] = {
    "eu-west-1", "eu-central-1", "us-east-1", "us-west-2"
};


int
main(int argc, char **argv)
{
    size_t          i, ngroups;
    double          t0, cpu0, encode_s, elapsed, srv_cpu0, srv_faults0;
    rwload_conf_t   cf;
    rwload_conn_t  *conns;

    memset(&cf, 0, sizeof(cf));

    if (rwload_args(&cf, argc, argv) != 0 || rwload_resolve(&cf) != 0) {
        return 2;
    }

    ngroups = (cf.nseries + cf.batch - 1) / cf.batch;
    if (cf.nconns > ngroups) {
        cf.nconns = ngroups;
    }

    printf("rwload: %zu series, %zu rounds (%zu warm-up), batch %zu, "
           "%zu connections, %s%s\n", cf.nseries, cf.rounds, cf.warmup,
           cf.batch, cf.nconns, cf.addr, cf.path);

    t0 = rwload_now();
    rwload_make_series(&cf);

    conns = rwload_alloc(cf.nconns * sizeof(rwload_conn_t));
    pthread_barrier_init(&cf.barrier, NULL, (unsigned) cf.nconns + 1);
    pthread_mutex_init(&cf.lock, NULL);

    for (i = 0; i < cf.nconns; i++) {
        conns[i].id = (int) i;
        conns[i].conf = &cf;
        conns[i].fd = -1;
        if (pthread_create(&conns[i].tid, NULL, rwload_thread, &conns[i])
            != 0)
        {
            fprintf(stderr, "rwload: pthread_create() failed\n");
            return 1;
        }
    }

    /* 1: bodies built, 2: warm-up done */

    pthread_barrier_wait(&cf.barrier);
    encode_s = rwload_now() - t0;
    pthread_barrier_wait(&cf.barrier);

    rwload_server(cf.pids, &srv_cpu0, &srv_faults0);
    t0 = rwload_now();
    cpu0 = rwload_cpu();
    cf.deadline = cf.duration > 0 ? t0 + cf.duration : 0;
    pthread_barrier_wait(&cf.barrier);

    for (i = 0; i < cf.nconns; i++) {
        pthread_join(conns[i].tid, NULL);
    }

    elapsed = rwload_now() - t0;

    /* what the generator takes of the machine while it is measured */
    cf.cpu_s = rwload_cpu() - cpu0;
    rwload_server(cf.pids, &cf.srv_cpu_s, &cf.srv_faults);
    cf.srv_cpu_s -= srv_cpu0;
    cf.srv_faults -= srv_faults0;

    rwload_report(&cf, conns, encode_s, elapsed);

    return 0;
}


static int
rwload_args(rwload_conf_t *cf, int argc, char **argv)
{
    int  ch;

    cf->addr = "127.0.0.1:9090";
    cf->path = "/api/v1/write";
    cf->nseries = 10000;
    cf->nconns = 8;
    cf->rounds = 10;
    cf->warmup = 1;
    cf->batch = 1000;
    cf->step = 15000;
    cf->start = -1;

    while ((ch = getopt(argc, argv, "a:p:s:c:r:W:d:b:i:t:H:P:")) != -1) {
        switch (ch) {
        case 'a': cf->addr = optarg; break;
        case 'p': cf->path = optarg; break;
        case 's': cf->nseries = strtoul(optarg, NULL, 10); break;
        case 'c': cf->nconns = strtoul(optarg, NULL, 10); break;
        case 'r': cf->rounds = strtoul(optarg, NULL, 10); break;
        case 'W': cf->warmup = strtoul(optarg, NULL, 10); break;
        case 'd': cf->duration = strtod(optarg, NULL); break;
        case 'b': cf->batch = strtoul(optarg, NULL, 10); break;
        case 'i': cf->step = strtoll(optarg, NULL, 10); break;
        case 't': cf->start = strtoll(optarg, NULL, 10); break;
        case 'P': cf->pids = optarg; break;

        case 'H':
            if (cf->nheaders == RWLOAD_MAX_HEADERS) {
                fprintf(stderr, "rwload: too many -H\n");
                return -1;
            }

            cf->headers[cf->nheaders++] = optarg;
            break;

        default:
            fprintf(stderr, "usage: rwload [-a HOST:PORT] [-p PATH] "
                    "[-s SERIES] [-c CONNS] [-r ROUNDS] [-W WARMUP]\n"
                    "              [-d SECONDS] [-b BATCH] [-i STEP_MS] "
                    "[-t START_MS] [-H 'Name: value']...\n"
                    "              [-P PID,PID...]\n");
            return -1;
        }
    }

    if (cf->nseries == 0 || cf->nconns == 0 || cf->batch == 0
        || cf->rounds <= cf->warmup || cf->step <= 0)
    {
        fprintf(stderr, "rwload: need SERIES, CONNS, BATCH > 0 and "
                "ROUNDS > WARMUP\n");
        return -1;
    }

    if (cf->start < 0) {
        cf->start = (int64_t) time(NULL) * 1000
                    - (int64_t) cf->rounds * cf->step;
        cf->start -= cf->start % cf->step;
    }

    return 0;
}


static int
rwload_resolve(rwload_conf_t *cf)
{
    int               rc;
    char              host[256], *colon;
    struct addrinfo   hints, *ai;

    snprintf(host, sizeof(host), "%s", cf->addr);
    colon = strrchr(host, ':');
    if (colon == NULL) {
        fprintf(stderr, "rwload: -a wants HOST:PORT\n");
        return -1;
    }

    *colon = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;

    rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "rwload: %s: %s\n", cf->addr, gai_strerror(rc));
        return -1;
    }

    memcpy(&cf->sa, ai->ai_addr, ai->ai_addrlen);
    cf->salen = ai->ai_addrlen;
    freeaddrinfo(ai);

    return 0;
}


/*
 * Series i: metric rwload_names[i % 100], then 8 cpu x mode variants,
 * then the target (instance) i / 800, as node_exporter has ~800 series
 * per target.  Labels are sorted by name, as remote-write requires.
 */

static void
rwload_make_series(rwload_conf_t *cf)
{
    size_t               i, k, var, target;
    Prometheus__Label   *l, **lp;

    cf->ts = rwload_alloc(cf->nseries * sizeof(Prometheus__TimeSeries));
    cf->tsp = rwload_alloc(cf->nseries * sizeof(Prometheus__TimeSeries *));
    cf->sm = rwload_alloc(cf->nseries * sizeof(Prometheus__Sample));
    cf->smp = rwload_alloc(cf->nseries * sizeof(Prometheus__Sample *));
    cf->value = rwload_alloc(cf->nseries * sizeof(double));
    cf->rng = rwload_alloc(cf->nseries * sizeof(uint64_t));

    for (i = 0; i < cf->nseries; i++) {
        var = (i / RWLOAD_NNAMES) % 8;
        target = i / (RWLOAD_NNAMES * 8);

        l = rwload_alloc(RWLOAD_NLABELS * sizeof(Prometheus__Label));
        lp = rwload_alloc(RWLOAD_NLABELS * sizeof(Prometheus__Label *));

        for (k = 0; k < RWLOAD_NLABELS; k++) {
            prometheus__label__init(&l[k]);
            lp[k] = &l[k];
        }

        l[0].name = "__name__";
        l[0].value = (char *) rwload_names[i % RWLOAD_NNAMES];
        l[1].name = "cpu";
        l[1].value = rwload_strdup("%zu", var, 0);
        l[2].name = "env";
        l[2].value = target % 5 ? "prod" : "staging";
        l[3].name = "instance";
        l[3].value = rwload_strdup("10.%zu.%zu:9100", target / 250,
                                   target % 250 + 1);
        l[4].name = "job";
        l[4].value = "node";
        l[5].name = "mode";
        l[5].value = (char *) rwload_modes[var];
        l[6].name = "region";
        l[6].value = (char *) rwload_regions[target % 4];

        prometheus__sample__init(&cf->sm[i]);
        cf->smp[i] = &cf->sm[i];

        prometheus__time_series__init(&cf->ts[i]);
        cf->ts[i].n_labels = RWLOAD_NLABELS;
        cf->ts[i].labels = lp;
        cf->ts[i].n_samples = 1;
        cf->ts[i].samples = &cf->smp[i];
        cf->tsp[i] = &cf->ts[i];

        cf->rng[i] = 0x9e3779b97f4a7c15ull * (i + 1);
        cf->value[i] = (double) (cf->rng[i] % 100000);
    }
}


static char *
rwload_strdup(const char *fmt, size_t a, size_t b)
{
    char  buf[64], *s;

    snprintf(buf, sizeof(buf), fmt, a, b);
    s = strdup(buf);
    if (s == NULL) {
        fprintf(stderr, "rwload: out of memory\n");
        exit(1);
    }

    return s;
}


static void *
rwload_thread(void *arg)
{
    size_t          i;
    rwload_conn_t  *c;
    rwload_conf_t  *cf;

    c = arg;
    cf = c->conf;

    rwload_encode(c);
    c->fd = rwload_connect(cf);

    pthread_barrier_wait(&cf->barrier);

    for (i = 0; i < c->nwarm; i++) {
        rwload_send(c, &c->reqs[i], &c->warm, 0);
    }

    pthread_barrier_wait(&cf->barrier);
    pthread_barrier_wait(&cf->barrier);

    for (i = c->nwarm; i < c->nreqs; i++) {
        if (cf->deadline > 0 && rwload_now() > cf->deadline) {
            break;
        }

        rwload_send(c, &c->reqs[i], &c->timed, 1);
    }

    if (c->fd != -1) {
        close(c->fd);
    }

    return NULL;
}


/* every request this connection sends, round-major, built ahead */

static void
rwload_encode(rwload_conn_t *c)
{
    int                        hlen;
    char                       head[4096], extra[2048];
    size_t                     r, g, i, n, first, ngroups, mine, cap, clen;
    size_t                     plen, xlen;
    uint8_t                   *pb, *z;
    rwload_req_t              *rq;
    rwload_conf_t             *cf;
    Prometheus__WriteRequest   req = PROMETHEUS__WRITE_REQUEST__INIT;

    cf = c->conf;
    ngroups = (cf->nseries + cf->batch - 1) / cf->batch;
    mine = (ngroups - (size_t) c->id + cf->nconns - 1) / cf->nconns;

    c->nreqs = mine * cf->rounds;
    c->nwarm = mine * cf->warmup;
    c->reqs = rwload_alloc(c->nreqs * sizeof(rwload_req_t) + 1);
    c->lat = rwload_alloc(c->nreqs * sizeof(double) + 1);

    xlen = 0;
    extra[0] = '\0';
    for (i = 0; i < (size_t) cf->nheaders; i++) {
        xlen += snprintf(extra + xlen, sizeof(extra) - xlen, "%s\r\n",
                         cf->headers[i]);
        if (xlen >= sizeof(extra)) {
            fprintf(stderr, "rwload: -H headers too long\n");
            exit(2);
        }
    }

    cap = 0;
    pb = NULL;
    z = NULL;
    rq = c->reqs;

    for (r = 0; r < cf->rounds; r++) {
        for (g = (size_t) c->id; g < ngroups; g += cf->nconns) {
            first = g * cf->batch;
            n = cf->nseries - first < cf->batch ? cf->nseries - first
                                                : cf->batch;

            for (i = first; i < first + n; i++) {
                cf->sm[i].timestamp = cf->start + (int64_t) r * cf->step;
                cf->sm[i].value = rwload_next_value(cf, i);
            }

            req.n_timeseries = n;
            req.timeseries = &cf->tsp[first];

            plen = prometheus__write_request__get_packed_size(&req);
            if (snappy_max_compressed_length(plen) > cap) {
                cap = snappy_max_compressed_length(plen) * 2;
                free(pb);
                free(z);
                pb = rwload_alloc(cap);
                z = rwload_alloc(cap);
            }

            prometheus__write_request__pack(&req, pb);

            clen = cap;
            if (snappy_compress((char *) pb, plen, (char *) z, &clen)
                != SNAPPY_OK)
            {
                fprintf(stderr, "rwload: snappy_compress() failed\n");
                exit(1);
            }

            hlen = snprintf(head, sizeof(head),
                            "POST %s HTTP/1.1\r\n"
                            "Host: %s\r\n"
                            "User-Agent: rwload\r\n"
                            "Content-Type: application/x-protobuf\r\n"
                            "Content-Encoding: snappy\r\n"
                            "X-Prometheus-Remote-Write-Version: 0.1.0\r\n"
                            "Content-Length: %zu\r\n"
                            "%s\r\n", cf->path, cf->addr, clen, extra);

            rq->len = (size_t) hlen + clen;
            rq->data = rwload_alloc(rq->len);
            rq->nsamples = (uint32_t) n;
            memcpy(rq->data, head, hlen);
            memcpy(rq->data + hlen, z, clen);
            rq++;
        }
    }

    free(pb);
    free(z);
}


/* names ending in _total are counters, the others gauges */

static double
rwload_next_value(rwload_conf_t *cf, size_t i)
{
    size_t     len;
    uint64_t   x;
    const char *name;

    x = cf->rng[i];
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    cf->rng[i] = x;

    name = rwload_names[i % RWLOAD_NNAMES];
    len = strlen(name);

    if (len > 6 && strcmp(name + len - 6, "_total") == 0) {
        cf->value[i] += (double) (x % 1000);

    } else {
        cf->value[i] += (double) (x % 201) - 100.0;
    }

    return cf->value[i];
}


static int
rwload_connect(rwload_conf_t *cf)
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


static void
rwload_send(rwload_conn_t *c, rwload_req_t *rq, rwload_stats_t *st,
    int timed)
{
    int     status;
    double  t0, t1;

    t0 = rwload_now();

    if (c->fd == -1) {
        c->fd = rwload_connect(c->conf);
    }

    if (c->fd == -1 || rwload_exchange(c, rq, &status) != 0) {
        if (c->fd != -1) {
            close(c->fd);
            c->fd = -1;
        }

        st->reqs_err++;
        return;
    }

    t1 = rwload_now();

    if (timed) {
        c->lat[c->nlat++] = (t1 - t0) * 1000;
    }

    if (status >= 200 && status < 300) {
        st->reqs_ok++;
        st->samples_ok += rq->nsamples;
        return;
    }

    st->reqs_bad++;
    st->samples_bad += rq->nsamples;
    st->codes[status > 0 && status < RWLOAD_NCODES ? status : 0]++;
}


static int
rwload_exchange(rwload_conn_t *c, rwload_req_t *rq, int *status)
{
    size_t   off;
    ssize_t  n;

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

    return rwload_read_response(c, status);
}


/*
 * One response: the head, then a Content-Length or chunked body (error
 * bodies are short; the first non-2xx one is printed).  A response with
 * "Connection: close" closes the socket; the next request reconnects.
 */

static int
rwload_read_response(rwload_conn_t *c, int *status)
{
    int       chunked, close_it;
    long      clen;
    char     *end, *p;
    size_t    have;
    ssize_t   n;

    have = 0;
    end = NULL;

    while (end == NULL) {
        if (have == RWLOAD_RBUF - 1) {
            return -1;
        }

        n = recv(c->fd, c->rbuf + have, RWLOAD_RBUF - 1 - have, 0);
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

    *end = '\0';
    clen = 0;
    chunked = 0;
    close_it = 0;

    for (p = strstr(c->rbuf, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0) {
            clen = strtol(p + 17, NULL, 10);

        } else if (strncasecmp(p + 2, "Transfer-Encoding: chunked", 26)
                   == 0)
        {
            chunked = 1;

        } else if (strncasecmp(p + 2, "Connection: close", 17) == 0) {
            close_it = 1;
        }
    }

    if (rwload_body_done(c, end + 4, have - (size_t) (end + 4 - c->rbuf),
                         clen, chunked)
        != 0)
    {
        return -1;
    }

    if (close_it) {
        close(c->fd);
        c->fd = -1;
    }

    return 0;
}


static int
rwload_body_done(rwload_conn_t *c, char *body, size_t have, long clen,
    int chunked)
{
    size_t          room;
    ssize_t         n;
    rwload_conf_t  *cf;

    room = (size_t) (c->rbuf + RWLOAD_RBUF - 1 - body);

    for ( ;; ) {
        body[have] = '\0';

        if (chunked ? strstr(body, "0\r\n\r\n") != NULL
                    : have >= (size_t) clen)
        {
            break;
        }

        if (have == room) {
            return -1;
        }

        n = recv(c->fd, body + have, room - have, 0);
        if (n <= 0) {
            return -1;
        }

        have += (size_t) n;
    }

    cf = c->conf;

    if (strncmp(c->rbuf + 9, "2", 1) != 0) {
        pthread_mutex_lock(&cf->lock);
        if (!cf->shown) {
            cf->shown = 1;
            fprintf(stderr, "rwload: first non-2xx answer: %s\n%.300s\n",
                    c->rbuf, body);
        }
        pthread_mutex_unlock(&cf->lock);
    }

    return 0;
}


static void
rwload_report(rwload_conf_t *cf, rwload_conn_t *conns, double encode_s,
    double elapsed)
{
    size_t          i, k, n, nlat, nreqs;
    double         *lat, p50, p99;
    uint64_t        bytes;
    rwload_stats_t  w, t;

    memset(&w, 0, sizeof(w));
    memset(&t, 0, sizeof(t));
    nlat = 0;
    nreqs = 0;
    bytes = 0;

    for (i = 0; i < cf->nconns; i++) {
        nlat += conns[i].nlat;
        nreqs += conns[i].nreqs;
        for (k = 0; k < conns[i].nreqs; k++) {
            bytes += conns[i].reqs[k].len;
        }

        w.reqs_ok += conns[i].warm.reqs_ok;
        w.samples_ok += conns[i].warm.samples_ok;
        w.reqs_bad += conns[i].warm.reqs_bad;
        w.reqs_err += conns[i].warm.reqs_err;
        t.reqs_ok += conns[i].timed.reqs_ok;
        t.samples_ok += conns[i].timed.samples_ok;
        t.reqs_bad += conns[i].timed.reqs_bad;
        t.samples_bad += conns[i].timed.samples_bad;
        t.reqs_err += conns[i].timed.reqs_err;

        for (k = 0; k < RWLOAD_NCODES; k++) {
            t.codes[k] += conns[i].timed.codes[k] + conns[i].warm.codes[k];
        }
    }

    lat = rwload_alloc(nlat * sizeof(double) + 1);
    n = 0;
    for (i = 0; i < cf->nconns; i++) {
        memcpy(lat + n, conns[i].lat, conns[i].nlat * sizeof(double));
        n += conns[i].nlat;
    }

    qsort(lat, nlat, sizeof(double), rwload_cmp);
    p50 = nlat ? lat[nlat / 2] : 0;
    p99 = nlat ? lat[nlat * 99 / 100 < nlat ? nlat * 99 / 100 : nlat - 1]
               : 0;

    printf("rwload: built %zu bodies, %.1f MB on the wire, in %.2f s\n",
           nreqs, bytes / 1e6, encode_s);
    printf("rwload: warm-up: %llu requests 2xx, %llu non-2xx, "
           "%llu failed\n", (unsigned long long) w.reqs_ok,
           (unsigned long long) w.reqs_bad, (unsigned long long) w.reqs_err);
    printf("rwload: timed: %.2f s, %llu requests 2xx, %llu non-2xx, "
           "%llu failed, generator CPU %.2f s\n", elapsed,
           (unsigned long long) t.reqs_ok, (unsigned long long) t.reqs_bad,
           (unsigned long long) t.reqs_err, cf->cpu_s);

    for (k = 0; k < RWLOAD_NCODES; k++) {
        if (t.codes[k]) {
            printf("rwload: status %zu: %llu requests\n", k,
                   (unsigned long long) t.codes[k]);
        }
    }

    if (cf->pids) {
        printf("rwload: server, timed phase: %.2f CPU s, %.0f minor faults;"
               " per million samples: %.3f CPU s, %.0f faults\n",
               cf->srv_cpu_s, cf->srv_faults,
               t.samples_ok ? cf->srv_cpu_s / (t.samples_ok / 1e6) : 0,
               t.samples_ok ? cf->srv_faults / (t.samples_ok / 1e6) : 0);
    }

    printf("RESULT samples_ok=%llu samples_bad=%llu elapsed=%.3f "
           "samples_per_s=%.0f p50_ms=%.2f p99_ms=%.2f req_ok=%llu "
           "req_non2xx=%llu req_failed=%llu warm_samples_ok=%llu "
           "warm_non2xx=%llu client_cpu_s=%.2f server_cpu_s=%.3f "
           "server_faults=%.0f\n",
           (unsigned long long) t.samples_ok,
           (unsigned long long) t.samples_bad, elapsed,
           elapsed > 0 ? t.samples_ok / elapsed : 0, p50, p99,
           (unsigned long long) t.reqs_ok, (unsigned long long) t.reqs_bad,
           (unsigned long long) t.reqs_err,
           (unsigned long long) w.samples_ok,
           (unsigned long long) w.reqs_bad, cf->cpu_s, cf->srv_cpu_s,
           cf->srv_faults);
}


/* user + system CPU seconds of the whole process, all threads */
static double
rwload_cpu(void)
{
    struct rusage  ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0;
    }

    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
           + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}


/* the sum of user + system seconds and minor faults of processes pids */

static void
rwload_server(const char *pids, double *cpu, double *faults)
{
    char                path[64], buf[1024], *p, *q, *end;
    long                pid;
    FILE               *f;
    size_t              n;
    unsigned long long  minflt, utime, stime;

    *cpu = 0;
    *faults = 0;

    for (p = (char *) pids; p && *p; p = *end ? end + 1 : end) {
        pid = strtol(p, &end, 10);
        if (end == p) {
            break;
        }

        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }

        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';

        /* fields after the command, which is in parentheses */

        q = strrchr(buf, ')');
        if (q == NULL
            || sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %llu %*u %*u %*u "
                      "%llu %llu", &minflt, &utime, &stime) != 3)
        {
            continue;
        }

        *cpu += (double) (utime + stime) / sysconf(_SC_CLK_TCK);
        *faults += (double) minflt;
    }
}


static int
rwload_cmp(const void *a, const void *b)
{
    double  x, y;

    x = *(const double *) a;
    y = *(const double *) b;

    return (x > y) - (x < y);
}


static double
rwload_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static void *
rwload_alloc(size_t n)
{
    void  *p;

    p = calloc(1, n);
    if (p == NULL) {
        fprintf(stderr, "rwload: out of memory\n");
        exit(1);
    }

    return p;
}
