# Data that checkpoints moved out of the head into LMDB is still read
# back, merged with what the head holds: 3 series of 400 samples (more
# than three full chunks each) are written, a checkpoint releases the
# sealed chunks from the head, and the real Prometheus reads every
# sample back through remote_read, before and after a restart.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Test::Nginx::Tsdb;
use Test::Nginx::Tsdb::Util qw(rwgen prometheus prometheus_stop
                               prometheus_api remote_read_yml);
use Time::HiRes qw(sleep);

my $prometheus = $Test::Nginx::Tsdb::Util::PROMETHEUS;
plan skip_all => "$prometheus not installed" unless -x $prometheus;
plan tests => 8;

my $N = 400;
my $prom_runs = 0;

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
client_max_body_size 16m;
client_body_buffer_size 1m;
tsdb_zone main:64m path=$TEST_NGINX_DATA_DIR/main flush=1s;
CONF
    config => <<'CONF');
location = /api/v1/write {
    tsdb_remote_write main;
}
location = /api/v1/read {
    tsdb_remote_read main;
}
CONF


# a fresh Prometheus each time, so nothing is read from its own storage
sub count_samples {
    my ($pid, $port) = prometheus($srv, 'prom-' . ++$prom_runs,
                                  remote_read_yml($srv));
    my $body = prometheus_api($port, '/api/v1/query?query=count_over_time'
                                     . '(persisted_total%5B1h%5D)');
    prometheus_stop($pid);

    return join ' ', sort $body =~ /"value":\[[\d.]+,"(\d+)"\]/g;
}


$srv->start;

# samples up to a minute ago, one a second, sent in 4 requests per series
my $t0 = (time - 60 - $N) * 1000;
my %codes;
for my $part (0 .. 3) {
    my $text = '';
    for my $s (1 .. 3) {
        $text .= qq({__name__="persisted_total",s="$s"});
        for my $i ($part * $N / 4 .. ($part + 1) * $N / 4 - 1) {
            $text .= ' ' . ($t0 + 1000 * $i) . ":$i";
        }
        $text .= "\n";
    }
    my $res = $srv->request('POST /api/v1/write',
        headers => [ 'Content-Type: application/x-protobuf' ],
        body => rwgen($text));
    $codes{$res->{status}}++;
}
is_deeply(\%codes, { 204 => 4 }, 'written');

my $released;
for (1 .. 100) {
    ($released) = $srv->error_log
                  =~ /checkpoint\ \d+:\ \d+\ series,\ \d+\ chunks,
                      \ \d+\ metadata,\ ([1-9]\d*)\ rel/x;
    last if $released;
    sleep 0.1;
}
ok($released, 'a checkpoint released sealed chunks from the head ('
              . ($released // 0) . ')');

is(count_samples(), "$N $N $N", "all $N samples of each series read back");

# after a restart the head is rebuilt from what the WAL still has
$srv->restart;
is(count_samples(), "$N $N $N", 'and again after a restart');

my $res = $srv->request('POST /api/v1/write',
    headers => [ 'Content-Type: application/x-protobuf' ],
    body => rwgen(qq({__name__="persisted_total",s="1"} )
                  . ($t0 + 1000 * ($N - 1)) . ":" . ($N - 1) . "\n"));
is($res->{status}, 204, 'a retry of the last sample after restart: 204');

$res = $srv->request('POST /api/v1/write',
    headers => [ 'Content-Type: application/x-protobuf' ],
    body => rwgen(qq({__name__="persisted_total",s="1"} )
                  . ($t0 + 1000 * $N) . ":$N\n"));
is($res->{status}, 204, 'the next sample: 204');
is(count_samples(), "$N $N " . ($N + 1), 'it is read back too');

$srv->stop;
my @bad = grep { /\[(?:alert|emerg|crit|error)\]/ }
          split /\n/, $srv->error_log;
is(scalar @bad, 0, 'no errors logged') or diag(join "\n", @bad);
