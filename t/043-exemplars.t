# Exemplars: remote write 1.0 and 2.0 requests carrying exemplars (built
# with build/rwgen) are stored in the zone's ring and served by
# /api/v1/query_exemplars byte for byte as the real Prometheus 2.42
# (--enable-feature=exemplar-storage) answers for the same writes: the
# selectors of any PromQL expression, start/end, an out-of-order
# exemplar dropped, an exact duplicate accepted once, errors.  The 2.0
# header counts what was stored.  They survive a SIGKILL of the whole
# server (WAL replay) and, once a checkpoint copied them into the index,
# a restart without any WAL at all.

use strict;
use warnings;

use lib 't/lib';
use File::Path qw(remove_tree);
use Test::More;
use Test::Nginx::Tsdb;
use Test::Nginx::Tsdb::Util qw(rwgen prometheus_flags prometheus_stop
                               prometheus_api prometheus_post uri_escape
                               @RW_V1);
use Time::HiRes qw(sleep);

plan skip_all => 'prometheus not installed'
    unless -x $Test::Nginx::Tsdb::Util::PROMETHEUS;
plan tests => 31;

my @RW_V2 = ('Content-Type: application/x-protobuf;'
             . 'proto=io.prometheus.write.v2.Request',
             'Content-Encoding: snappy',
             'X-Prometheus-Remote-Write-Version: 2.0.0');

# times with milliseconds, in the last hour (Prometheus's head takes them)
my $now = int(time() / 60) * 60000 - 600000;
my ($t1, $t2, $t3) = ($now + 123, $now + 60450, $now + 120007);

# The zzz exemplar is older than ccc, sent after it: Prometheus drops it.
my $DATA = join "\n",
    qq({__name__="http_requests_total",job="api",code="200"})
    . qq( $t1:10 $t2:20 $t3:30 \@{trace_id="aaa"}$t1:1)
    . qq( \@{trace_id="bbb",span_id="s1"}$t2:2 \@{trace_id="ccc"}$t3:0.5)
    . qq( \@{trace_id="zzz"}$t1:9),
    qq({__name__="http_requests_total",job="api",code="500"} $t1:1)
    . qq( \@{trace_id="ddd"}$t1:1e-7),
    qq({__name__="latency_bucket",job="api",le="0.1"} $t1:5 $t2:6)
    . qq( \@{trace_id="eee"}$t2:0.05),
    qq({__name__="other",job="web"} $t1:1 \@{empty="",trace_id="fff"}$t1:3),
    qq({__name__="plain",job="web"} $t1:1), '';

my $STORED = 6;
my $DUPS = 4;           # the newest of each series

my @QUERIES = (
    'http_requests_total',
    'rate(http_requests_total{code="200"}[5m])',
    'sum by (job) (rate(latency_bucket[5m])) / on(job) group_left other',
    '{job=~"api|web"}',
    'max_over_time(other[10m:1m]) or plain',
    'nothing_here',
    '1 + 1',
);

my @RANGES = ('', '&start=' . ($t2 / 1000) . '&end=' . ($t3 / 1000),
              '&start=' . ($t3 / 1000 + 1));

my @BAD = ('query=foo{', 'query=up&start=10&end=5', 'query=up&start=x');

sub conf {
    my ($extra) = @_;
    $extra //= '';
    return <<"CONF";
client_body_buffer_size 1m;
tsdb_zone main:64m path=\$TEST_NGINX_DATA_DIR/main $extra;
CONF
}

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => conf('flush=1h'),
    config => <<'CONF');
location = /api/v1/write {
    tsdb_remote_write main;
}
location /api/v1/ {
    tsdb_query main;
}
CONF

my ($ppid, $pport);

END {
    prometheus_stop($ppid) if $ppid;
}

sub paths {
    my @p;

    for my $q (@QUERIES) {
        push @p, map { '/api/v1/query_exemplars?query=' . uri_escape($q) . $_ }
                 @RANGES;
    }

    push @p, map { "/api/v1/query_exemplars?$_" } @BAD;
    push @p, '/api/v1/query_exemplars';

    return @p;
}

# Prometheus's answers, once
my %expect;

sub mismatches {
    my ($tenant, $exp) = @_;
    my @bad;

    $exp //= \%expect;

    for my $p (paths()) {
        my $res = $srv->request("GET $p",
                                headers => [ "X-Scope-OrgID: $tenant" ]);
        my $n = ($res->{status} // 0) . ' ' . ($res->{body} // '');

        push @bad, "$p\n  ngx_tsdb:   $n\n  prometheus: $exp->{$p}"
            if $n ne $exp->{$p};
    }

    diag(join "\n", @bad) if @bad;
    return scalar @bad;
}

sub wait_for {
    my ($cond, $secs) = @_;
    for (1 .. $secs * 10) {
        return 1 if $cond->();
        sleep 0.1;
    }
    return 0;
}

$srv->start;
($ppid, $pport) = prometheus_flags($srv, 'prometheus', "global: {}\n", undef,
                                   '--web.enable-remote-write-receiver',
                                   '--enable-feature=exemplar-storage');

my $v1 = rwgen($DATA);
my $v2 = rwgen($DATA, 1);

my $res = prometheus_post($pport, '/api/v1/write', $v1, @RW_V1);
is($res->{status}, 204, 'Prometheus took the 1.0 request');

# every answer of the Prometheus on $port
sub answers {
    my ($port) = @_;
    my %a;

    for my $p (paths()) {
        my ($raw) = Test::Nginx::Tsdb::Server::build_request("GET $p");
        my $r = Test::Nginx::Tsdb::Server::exchange('127.0.0.1', $port,
                                                    $raw, 60, 0);
        $a{$p} = ($r->{status} // 0) . ' ' . ($r->{body} // '');
    }

    return %a;
}

%expect = answers($pport);

like($expect{(paths())[0]}, qr/^200 .*"trace_id":"aaa"/,
     'Prometheus has the exemplars');

# 1.0 for tenant "one", twice (the retry changes nothing)
$res = $srv->request('POST /api/v1/write', body => $v1,
                     headers => [ @RW_V1, 'X-Scope-OrgID: one' ]);
is($res->{status}, 204, '1.0 request: 204');
$res = $srv->request('POST /api/v1/write', body => $v1,
                     headers => [ @RW_V1, 'X-Scope-OrgID: one' ]);
is($res->{status}, 204, '1.0 retry: 204');
is(mismatches('one'), 0, '1.0: every query_exemplars answer is '
                         . "Prometheus's, byte for byte");

# 2.0 for tenant "two": the header counts what was stored
$res = $srv->request('POST /api/v1/write', body => $v2,
                     headers => [ @RW_V2, 'X-Scope-OrgID: two' ]);
is($res->{status}, 204, '2.0 request: 204');
is($res->{headers}{'x-prometheus-remote-write-exemplars-written'}, $STORED,
   "2.0: $STORED exemplars written (the out-of-order one is not)");
$res = $srv->request('POST /api/v1/write', body => $v2,
                     headers => [ @RW_V2, 'X-Scope-OrgID: two' ]);
is($res->{status}, 204, '2.0 retry: 204');
is($res->{headers}{'x-prometheus-remote-write-exemplars-written'}, $DUPS,
   "2.0 retry: the $DUPS newest exemplars are duplicates, accepted");
is(mismatches('two'), 0, '2.0: every answer is Prometheus\'s');

# tenants are apart; POST form works as GET
$res = $srv->request('GET /api/v1/query_exemplars?query=http_requests_total',
                     headers => [ 'X-Scope-OrgID: three' ]);
is($res->{body}, '{"status":"success","data":[]}',
   'another tenant sees none');
$res = $srv->request('POST /api/v1/query_exemplars',
                     headers => [ 'X-Scope-OrgID: one', 'Content-Type: '
                                  . 'application/x-www-form-urlencoded' ],
                     body => 'query=other');
like($res->{body}, qr/"seriesLabels":\{"__name__":"other","job":"web"\},
                      "exemplars":\[\{"labels":\{"trace_id":"fff"\},
                      "value":"3","timestamp":/x,
     'POST form: the exemplar, its empty label dropped');

# the whole server is SIGKILLed: the WAL brings everything back
my $master = $srv->{pid};
my @workers = $srv->worker_pids;
kill 'KILL', $master, @workers;
sleep 1;
$srv->{pid} = undef;
$srv->start;

like($srv->error_log, qr/replayed 20 exemplars, 12 stored/,
     'the WAL replay found the exemplars');
is(mismatches('one'), 0, 'after SIGKILL and restart: tenant one as before');
is(mismatches('two'), 0, 'after SIGKILL and restart: tenant two as before');

# a retry after the restart is still a duplicate
$res = $srv->request('POST /api/v1/write', body => $v2,
                     headers => [ @RW_V2, 'X-Scope-OrgID: two' ]);
is($res->{headers}{'x-prometheus-remote-write-exemplars-written'}, $DUPS,
   'after the replay, a retry is only duplicates');

# a checkpoint copies the ring into the index
sub copied {
    return () = $srv->error_log =~ /checkpoint \d+: \d+ exemplars copied/g;
}

sub loaded {
    return () = $srv->error_log =~ /loaded 12 exemplars from the index,/g;
}

$srv->restart(http_config => conf('flush=1s'));
ok(wait_for(sub { copied() >= 1 }, 20), 'a checkpoint copied the exemplars');

# the WAL is gone altogether: the index alone brings them back
$srv->stop;
remove_tree($srv->data_dir . '/main/wal');
$srv->start;

ok(wait_for(sub { loaded() == 1 }, 10),
   'start-up loaded the 12 exemplars from the index');
is(mismatches('one'), 0, 'from the index: tenant one as before');
is(mismatches('two'), 0, 'from the index: tenant two as before');

# the next checkpoint writes its own copy and drops the old one
my $before = copied();
ok(wait_for(sub { copied() > $before }, 20), 'the next checkpoint ran');
$srv->stop;
remove_tree($srv->data_dir . '/main/wal');
$srv->start;
ok(wait_for(sub { loaded() == 2 }, 10),
   'after that checkpoint: the same 12 from the index, none twice');
is(mismatches('two'), 0, 'and the same answers');

# limits are checked by nginx -t
$srv->stop;
my $bad = Test::Nginx::Tsdb::Server->new(
    servroot => $srv->servroot . '-bad',
    http_config => conf('max_exemplars=abc'),
    config => 'location / { return 204; }');
eval { $bad->start };
like($@ . $bad->error_log . $bad->stderr,
     qr/invalid parameter "max_exemplars=abc"/, 'max_exemplars=abc rejected');
$bad = Test::Nginx::Tsdb::Server->new(
    servroot => $srv->servroot . '-bad',
    http_config => conf('max_exemplars=10000000'),
    config => 'location / { return 204; }');
eval { $bad->start };
my $too = 'max_exemplars=10000000 needs \d+ bytes, more than a quarter '
          . 'of tsdb zone "main"';
like($@ . $bad->error_log . $bad->stderr, qr/$too/,
     'max_exemplars too large for the zone rejected');

# max_exemplars=0 turns them off: nothing stored, nothing counted
$srv->restart(http_config => conf('max_exemplars=0'));
$res = $srv->request('POST /api/v1/write', body => $v2,
                     headers => [ @RW_V2, 'X-Scope-OrgID: four' ]);
is($res->{status}, 204, 'max_exemplars=0: the samples are still taken');
is($res->{headers}{'x-prometheus-remote-write-exemplars-written'}, 0,
   'max_exemplars=0: no exemplar written');
$res = $srv->request('GET /api/v1/query_exemplars?query=other',
                     headers => [ 'X-Scope-OrgID: four' ]);
is($res->{body}, '{"status":"success","data":[]}',
   'max_exemplars=0: none to query');

# a full ring overwrites its oldest exemplars as Prometheus's does
my ($ppid3, $pport3) = prometheus_flags($srv, 'prometheus3',
    "global: {}\nstorage:\n  exemplars:\n    max_exemplars: 3\n", undef,
    '--web.enable-remote-write-receiver',
    '--enable-feature=exemplar-storage');
$res = prometheus_post($pport3, '/api/v1/write', $v1, @RW_V1);
my %expect3 = answers($pport3);
prometheus_stop($ppid3);

like($expect3{'/api/v1/query_exemplars?query=%7Bjob%3D~%22api%7Cweb%22%7D'},
     qr/^200 (?!.*"aaa").*"ddd".*"eee".*"fff"/,
     'Prometheus with max_exemplars 3 kept the last 3');
$srv->restart(http_config => conf('max_exemplars=3'));
$res = $srv->request('POST /api/v1/write', body => $v1,
                     headers => [ @RW_V1, 'X-Scope-OrgID: five' ]);
is(mismatches('five', \%expect3), 0,
   'max_exemplars=3: the same 3 survive, the same answers');

unlike($srv->error_log, qr/\[(?:error|alert|crit|emerg)\]/,
       'no [error] or worse in the log');
