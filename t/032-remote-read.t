# tsdb_remote_read with the real Prometheus 2.42 as the client: the 40
# captured requests are written through tsdb_remote_write, then a
# Prometheus with remote_read answers the series and query APIs from
# ngx_tsdb, per tenant.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Test::Nginx::Tsdb;
use Test::Nginx::Tsdb::Util qw(write_fixtures prometheus prometheus_stop
                               prometheus_api remote_read_yml);

my $prometheus = $Test::Nginx::Tsdb::Util::PROMETHEUS;
plan skip_all => "$prometheus not installed" unless -x $prometheus;
plan tests => 12;

# the fixtures' first and last sample times (ms), checked below
my ($FIRST, $LAST) = (1795376413745, 1795376447150);

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
client_max_body_size 16m;
client_body_buffer_size 1m;
tsdb_zone main:64m path=$TEST_NGINX_DATA_DIR/main retention=36500d;
CONF
    config => <<'CONF');
location = /api/v1/write {
    tsdb_remote_write main;
}
location = /api/v1/read {
    tsdb_remote_read main;
}
location = /other/api/v1/read {
    tsdb_remote_read main;
    tsdb_tenant other-tenant;
}
CONF


# a Prometheus whose only storage is ngx_tsdb through remote_read
# (2.42 does not send remote_read "headers": tenants come from the URL)
sub start_prometheus {
    my ($name, $prefix) = @_;
    return prometheus($srv, $name, remote_read_yml($srv, $prefix));
}


$srv->start;

is_deeply(write_fixtures($srv, '/api/v1/write'), { 204 => 40 },
          'the 40 captured requests are written');

my ($pid, $port) = start_prometheus('prom');
my $start = int($FIRST / 1000) - 60;
my $end = int($LAST / 1000) + 60;

my $body = prometheus_api($port,
                          "/api/v1/series?match%5B%5D=%7B__name__%3D~%22.%2B"
                          . "%22%7D&start=$start&end=$end");
my @series = $body =~ /"__name__"/g;
is(scalar @series, 924, 'the series API sees all 924 series');

my $t = sprintf '%.3f', $FIRST / 1000;
$body = prometheus_api($port, "/api/v1/query?query=up&time=$t");
like($body, qr/"__name__":"up".*"instance":"127\.0\.0\.1:19092".*
               "value":\[$t,"1"\]/x, 'an instant query reads a sample');

$body = prometheus_api($port,
                       "/api/v1/query?query=count(%7B__name__%3D~%22.%2B%22%7D)"
                       . "&time=$t");
like($body, qr/"value":\[$t,"373"\]/, 'the first request\'s 373 series');

# a range query over the whole capture: every step answered
$body = prometheus_api($port,
                       "/api/v1/query_range?query=prometheus_tsdb_head_series"
                       . "&start=$start&end=$end&step=5");
my @points = $body =~ /\[\d+(?:\.\d+)?,"\d+"\]/g;
ok(@points > 5, 'a range query returns points (' . scalar @points . ')');
like($body, qr/"resultType":"matrix"/, 'as a matrix');

# value bits survive: the captured NaN samples come back as NaN
$body = prometheus_api($port, "/api/v1/query?query=go_gc_duration_seconds"
                            . "%7Bquantile%3D%221%22%7D&time=$t");
like($body, qr/"result":\[\{/, 'a summary quantile series reads back');

prometheus_stop($pid);

# another tenant sees nothing
($pid, $port) = start_prometheus('other', '/other');
$body = prometheus_api($port,
                       "/api/v1/series?match%5B%5D=%7B__name__%3D~%22.%2B"
                       . "%22%7D&start=$start&end=$end");
is($body =~ /"data":\[\]/ ? 1 : 0, 1, 'another tenant sees no series');
prometheus_stop($pid);

# bad requests get a status and a reason
my $res = $srv->request('POST /api/v1/read',
    headers => [ 'Content-Type: application/x-protobuf',
                 'Content-Encoding: snappy' ],
    body => 'not a read request');
is($res->{status}, 400, 'a body that is not snappy: 400');
like($res->{body}, qr/\S/, 'with a reason');

$res = $srv->request('GET /api/v1/read');
is($res->{status}, 405, 'GET: 405');

$srv->stop;
my @bad = grep { /\[(?:alert|emerg|crit|error)\]/ }
          split /\n/, $srv->error_log;
is(scalar @bad, 0, 'no errors logged') or diag(join "\n", @bad);
