# tsdb_remote_read with the real Prometheus 2.42 as the client: the 40
# captured requests are written through tsdb_remote_write, then a
# Prometheus with remote_read answers the series and query APIs from
# ngx_tsdb, per tenant.

use strict;
use warnings;

use lib 't/lib';
use File::Path qw(make_path);
use Test::More;
use Test::Nginx::Tsdb;
use Time::HiRes qw(sleep);

my $prometheus = '/usr/bin/prometheus';
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


sub slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or die "$f: $!";
    local $/;
    return scalar <$fh>;
}


# a Prometheus whose only storage is ngx_tsdb through remote_read
# (2.42 does not send remote_read "headers": tenants come from the URL)
sub start_prometheus {
    my ($name, $prefix) = @_;
    my $dir = $srv->servroot . "/$name";
    my $port = Test::Nginx::Tsdb::Server::free_port();

    make_path("$dir/data");
    open my $fh, '>', "$dir/prometheus.yml" or die "$dir: $!";
    print $fh "global: {}\nremote_read:\n"
            . "  - url: http://127.0.0.1:" . $srv->port
            . ($prefix // '') . "/api/v1/read\n"
            . "    read_recent: true\n";
    close $fh;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', "$dir/log" or die;
        open STDERR, '>&', \*STDOUT or die;
        exec $prometheus, "--config.file=$dir/prometheus.yml",
             "--storage.tsdb.path=$dir/data",
             "--web.listen-address=127.0.0.1:$port" or die "exec: $!";
    }

    for (1 .. 100) {
        my $res = Test::Nginx::Tsdb::Server::exchange('127.0.0.1', $port,
            "GET /-/ready HTTP/1.0\r\n\r\n", 5, 0) if IO::Socket::INET->new(
                PeerAddr => '127.0.0.1', PeerPort => $port);
        return ($pid, $port) if $res && $res->{status} == 200;
        sleep 0.2;
    }

    kill 'TERM', $pid;
    die "prometheus did not start, see $dir/log";
}


sub api {
    my ($port, $path) = @_;
    my $res = Test::Nginx::Tsdb::Server::exchange('127.0.0.1', $port,
        "GET $path HTTP/1.0\r\n\r\n", 30, 0);
    return $res->{body};
}


$srv->start;

my %codes;
for my $f (sort glob 't/data/rw/req*.snappy') {
    my $res = $srv->request('POST /api/v1/write',
        headers => [ 'Content-Type: application/x-protobuf',
                     'Content-Encoding: snappy' ],
        body => slurp($f));
    $codes{$res->{status}}++;
}
is_deeply(\%codes, { 204 => 40 }, 'the 40 captured requests are written');

my ($pid, $port) = start_prometheus('prom');
my $start = int($FIRST / 1000) - 60;
my $end = int($LAST / 1000) + 60;

my $body = api($port, "/api/v1/series?match%5B%5D=%7B__name__%3D~%22.%2B"
                      . "%22%7D&start=$start&end=$end");
my @series = $body =~ /"__name__"/g;
is(scalar @series, 924, 'the series API sees all 924 series');

my $t = sprintf '%.3f', $FIRST / 1000;
$body = api($port, "/api/v1/query?query=up&time=$t");
like($body, qr/"__name__":"up".*"instance":"127\.0\.0\.1:19092".*
               "value":\[$t,"1"\]/x, 'an instant query reads a sample');

$body = api($port, "/api/v1/query?query=count(%7B__name__%3D~%22.%2B%22%7D)"
                   . "&time=$t");
like($body, qr/"value":\[$t,"373"\]/, 'the first request\'s 373 series');

# a range query over the whole capture: every step answered
$body = api($port, "/api/v1/query_range?query=prometheus_tsdb_head_series"
                   . "&start=$start&end=$end&step=5");
my @points = $body =~ /\[\d+(?:\.\d+)?,"\d+"\]/g;
ok(@points > 5, 'a range query returns points (' . scalar @points . ')');
like($body, qr/"resultType":"matrix"/, 'as a matrix');

# value bits survive: the captured NaN samples come back as NaN
$body = api($port, "/api/v1/query?query=go_gc_duration_seconds"
                   . "%7Bquantile%3D%221%22%7D&time=$t");
like($body, qr/"result":\[\{/, 'a summary quantile series reads back');

kill 'TERM', $pid;
waitpid($pid, 0);

# another tenant sees nothing
($pid, $port) = start_prometheus('other', '/other');
$body = api($port, "/api/v1/series?match%5B%5D=%7B__name__%3D~%22.%2B"
                   . "%22%7D&start=$start&end=$end");
is($body =~ /"data":\[\]/ ? 1 : 0, 1, 'another tenant sees no series');
kill 'TERM', $pid;
waitpid($pid, 0);

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
