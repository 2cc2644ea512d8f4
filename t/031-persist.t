# Checkpoints: the head is copied into LMDB (flush=), the WAL shrinks
# once a checkpoint is durable, and after a restart with a truncated WAL
# every sample sent before is still known (retries are duplicates), so
# nothing acknowledged was lost.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Test::Nginx::Tsdb;
use Test::Nginx::Tsdb::Util qw(fixtures write_fixtures metric @RW_V1);
use Time::HiRes qw(sleep);

my $WRITTEN = 'tsdb_remote_write_samples_total{result="written"}';
my $DUPLICATE = 'tsdb_remote_write_samples_total{result="duplicate"}';

# the same counts as t/030-remote-write.t (protoc --decode)
my ($SERIES, $SAMPLES) = (924, 15657);

plan tests => 16;

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
client_max_body_size 16m;
client_body_buffer_size 1m;
tsdb_zone main:64m path=$TEST_NGINX_DATA_DIR/main retention=36500d
          flush=1s;
CONF
    config => <<'CONF');
location = /metrics {
    tsdb_metrics;
}
location = /api/v1/write {
    tsdb_remote_write main;
}
CONF

# bytes in WAL segment files, all writers
sub wal_bytes {
    my $n = 0;
    $n += -s $_ for glob $srv->data_dir . '/main/wal/*/*.wal';
    return $n;
}


sub mdb_size {
    return -s ($srv->data_dir . '/main/index/data.mdb') // 0;
}


# checkpoint lines: [ [number, series, chunks], ... ]
sub checkpoints {
    return map { [ /checkpoint (\d+): (\d+) series, (\d+) chunks/ ] }
           grep { /tsdb zone "main": checkpoint \d+/ }
           split /\n/, $srv->error_log;
}


sub wait_for {
    my ($cond, $secs) = @_;
    for (1 .. $secs * 10) {
        return 1 if $cond->();
        sleep 0.1;
    }
    return $cond->();
}


$srv->start;
my $mdb0 = mdb_size();

# 1. ingest, then a checkpoint copies every series
is_deeply(write_fixtures($srv, '/api/v1/write'), { 204 => 40 },
          'all 40 requests answered 204');
my $wal0 = wal_bytes();

# 15657 samples of 924 series: about 71 kB as the WAL packs them
ok($wal0 > 50000, "the WAL holds the samples ($wal0 bytes)");

ok(wait_for(sub { grep { $_->[1] == $SERIES } checkpoints() }, 10),
   "a checkpoint copied all $SERIES series");
my ($ck) = grep { $_->[1] == $SERIES } checkpoints();
diag("checkpoint $ck->[0]: $ck->[1] series, $ck->[2] chunks");

# 2. the WAL shrinks once checkpoints are durable; the index grows
ok(wait_for(sub { wal_bytes() < $wal0 / 10 }, 10),
   'the WAL is truncated after checkpoints');
diag('wal bytes: ' . $wal0 . ' -> ' . wal_bytes());
ok(-f $srv->data_dir . '/main/index/data.mdb', 'data.mdb exists');
my $mdb1 = mdb_size();
ok($mdb1 > $mdb0, "data.mdb grew ($mdb0 -> $mdb1 bytes)");

# 3. sealed chunks left the head, retries are still duplicates
is_deeply(write_fixtures($srv, '/api/v1/write'), { 204 => 40 },
          'retries answered 204');
is(metric($srv, $DUPLICATE), $SAMPLES,
   'every retried sample is a duplicate');

# 4. restart with the truncated WAL: nothing was lost
$srv->restart;
is_deeply(write_fixtures($srv, '/api/v1/write'), { 204 => 40 },
          'after restart: answered 204');
is(metric($srv, $DUPLICATE), $SAMPLES,
   'after restart: every sample was already stored');
is(metric($srv, $WRITTEN) + 0, 0,
   'after restart: nothing was missing');

# 5. new samples after the restart are checkpointed too
my $t = time * 1000;
my $body = `$ENV{TSDB_RWGEN} < /dev/stdin <<'IN'
{__name__="after_restart",job="t"} $t:1
IN
`;
my $res = $srv->request('POST /api/v1/write', headers => \@RW_V1,
                        body => $body);
is($res->{status}, 204, 'a new series after the restart: 204');
ok(wait_for(sub { (checkpoints())[-1][1] == 1 }, 10),
   'a checkpoint after the restart copied just the new series');
ok(mdb_size() >= $mdb1, 'data.mdb kept its data');

# 6. the log
$srv->stop;
$srv->no_errors_ok('no [error], [alert] or [emerg] in the log');
my $logged = 'checkpoint \d+: \d+ series, \d+ chunks, \d+ metadata, '
             . '\d+ released, \d+ ms';
like($srv->error_log, qr/$logged/,
     'checkpoints are logged with their size and duration');
