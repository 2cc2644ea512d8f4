# tsdb_zone + tsdb_remote_write: the 40 requests a real Prometheus 2.42
# sent ingest with exactly the series and samples they hold; retries are
# idempotent; acknowledged samples survive a SIGKILLed worker and a
# restart (replayed from the WAL); bad input gets a 4xx with one line.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Test::Nginx::Tsdb;
use Test::Nginx::Tsdb::Util qw(slurp rwgen fixtures write_fixtures metric
                               @RW_V1);

my @fixtures = fixtures();
my $WRITTEN = 'tsdb_remote_write_samples_total{result="written"}';
my $DUPLICATE = 'tsdb_remote_write_samples_total{result="duplicate"}';
my $CREATED = 'tsdb_remote_write_series_created_total';
my @v1 = @RW_V1;

# counted with protoc --decode=prometheus.WriteRequest, independently of
# our decoder: 924 distinct series, 15657 samples in the 40 requests
my ($SERIES, $SAMPLES) = (924, 15657);

plan tests => 4 + 3 + 4 + 3 + 2 + 13 + 2 + 2;

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
client_max_body_size 16m;
client_body_buffer_size 1m;
tsdb_zone main:64m path=$TEST_NGINX_DATA_DIR/main retention=36500d;
CONF
    config => <<'CONF');
location = /metrics {
    tsdb_metrics;
}
location = /api/v1/write {
    tsdb_remote_write main;
}
location = /small/write {
    tsdb_remote_write main;
    tsdb_max_body_size 1k;
}
location = /limited/write {
    tsdb_remote_write main;
    tsdb_max_series_per_tenant 2;
    tsdb_tenant limited;
}
CONF


my @v2 = ('Content-Type: application/x-protobuf;'
          . 'proto=io.prometheus.write.v2.Request',
          'Content-Encoding: snappy',
          'X-Prometheus-Remote-Write-Version: 2.0.0');


$srv->start;

# 1. the real Prometheus requests
is(scalar @fixtures, 40, '40 captured requests');
is_deeply(write_fixtures($srv, '/api/v1/write'), { 204 => 40 },
          'all answered 204');
is(metric($srv, $WRITTEN), $SAMPLES,
   "$SAMPLES samples written");
is(metric($srv, $CREATED), $SERIES,
   "$SERIES series created");

# 2. a sender's retries are idempotent
is_deeply(write_fixtures($srv, '/api/v1/write'), { 204 => 40 },
          'retries answered 204');
is(metric($srv, $DUPLICATE), $SAMPLES,
   'every retried sample is a duplicate');
is(metric($srv, $CREATED), $SERIES,
   'no series created twice');

# 3. a SIGKILLed worker and a restart: everything is still there
my @pids = $srv->worker_pids;
$srv->kill_worker($pids[0], 'KILL');
$srv->restart;

my $replayed = 'tsdb zone "main": replayed \d+ wal directories, \d+ '
               . 'records, \d+ samples, \d+ metadata, 0 not appended';
like($srv->error_log, qr/$replayed/, 'the restart replayed the WAL');
is_deeply(write_fixtures($srv, '/api/v1/write'), { 204 => 40 },
          'after restart: answered 204');
is(metric($srv, $DUPLICATE), $SAMPLES,
   'after restart: every sample was already stored');
is(metric($srv, $WRITTEN) + 0, 0,
   'after restart: nothing was missing');

# 4. partial ingest: bad series rejected with a reason, the rest stored
my $t = time * 1000;
my $res = $srv->request('POST /api/v1/write', headers => \@v1,
    body => rwgen(<<"IN"));
{__name__="ok_total",job="t"} $t:1
{job="noname"} $t:1
{__name__="dup",job="a",job="b"} $t:1
{__name__="ok_total",job="t"} @{[ $t - 5000 ]}:2
{__name__="stale",job="t"} $t:stale
IN
is($res->{status}, 400, 'partial ingest answers 400');
like($res->{body},
     qr/^2 of 5 series and 3 samples rejected, the rest stored; first: .+\n\z/,
     'one line says what was rejected');
is(metric($srv, $WRITTEN), 2,
   'the valid samples were stored');

# 5. remote-write 2.0
$res = $srv->request('POST /api/v1/write', headers => \@v2,
    body => rwgen(qq({__name__="v2_total",job="t"} $t:1 @{[ $t + 1000 ]}:2\n),
                  1));
is($res->{status}, 204, 'v2 answers 204');
is($res->{headers}{'x-prometheus-remote-write-samples-written'}, 2,
   'v2 reports the samples written');

# 6. bad requests: a status and a one-line reason, nothing else lost
my @bad = (
    [ 'GET', undef, undef, 405, qr/405/ ],
    [ 'POST', [ 'Content-Type: application/json' ], 'x', 415,
      qr/^unsupported Content-Type/ ],
    [ 'POST', [ 'Content-Type: application/x-protobuf',
                'Content-Encoding: gzip' ], 'x', 415,
      qr/^unsupported Content-Encoding/ ],
    [ 'POST', \@v1, 'not snappy at all', 400, qr/snappy/i ],
    [ 'POST', [ @v1, 'X-Scope-OrgID: ../etc' ], slurp($fixtures[0]), 400,
      qr/^invalid tenant id$/ ],
);

for my $b (@bad) {
    my ($m, $h, $body, $code, $re) = @$b;
    $res = $srv->request("$m /api/v1/write", headers => $h, body => $body);
    is($res->{status}, $code, "$m with bad input answers $code");
    like($res->{body} // '', $re, "$code: the reason") if $code != 405;
}

$res = $srv->request('POST /small/write', headers => \@v1,
                     body => slurp($fixtures[0]));
is($res->{status}, 413, 'over tsdb_max_body_size: 413 before decoding');
like($res->{body}, qr/\S/, '413: the reason');

$res = $srv->request('POST /limited/write', headers => \@v1,
    body => rwgen(join '', map { qq({__name__="m",i="$_"} $t:1\n) } 1 .. 3));
is($res->{status}, 400, 'over tsdb_max_series_per_tenant: 400');
like($res->{body}, qr/series limit of 2/, 'the limit is named');

# 7. the log: client mistakes are [info], the kill is nginx's own [alert]
$srv->stop;
my @lines = grep { /\[(?:alert|emerg|crit|error)\]/ } split /\n/,
            $srv->error_log;
my @unexpected = grep { !/exited on signal 9/ } @lines;
is(scalar @unexpected, 0, 'no errors but the expected worker kill')
    or diag(join "\n", @unexpected);
like($srv->error_log, qr/\[info\].*tsdb remote write: 400/,
     'bad requests are logged at info');

# 8. the data directory belongs to the workers' user
my @st = stat($srv->data_dir . '/main/wal');
ok(@st, 'wal directory exists');
ok($> != 0 || $st[4] == scalar getpwnam('nobody'),
   'wal directory owned by the workers');
