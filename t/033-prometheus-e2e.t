# End to end with the real peers: a Prometheus 2.42 scrapes a real
# node_exporter and itself every second with remote_write to ngx_tsdb;
# then a second Prometheus with remote_read from ngx_tsdb must answer
# instant and range queries exactly as the first one does from its own
# storage.

use strict;
use warnings;

use lib 't/lib';
use IO::Socket::INET;
use Test::More;
use Test::Nginx::Tsdb;
use Test::Nginx::Tsdb::Util qw(metric prometheus prometheus_stop
                               prometheus_api remote_read_yml uri_escape);
use Time::HiRes qw(sleep time);

my $prometheus = $Test::Nginx::Tsdb::Util::PROMETHEUS;
my $exporter = '/usr/bin/prometheus-node-exporter';

plan skip_all => 'prometheus or prometheus-node-exporter not installed'
    unless -x $prometheus && -x $exporter;

my @queries = (
    'up',
    'count({__name__=~".+"})',
    'node_load1',
    'prometheus_tsdb_head_samples_appended_total',
    'sum by (job) (rate(scrape_samples_scraped[5s]))',
    'node_cpu_seconds_total{mode="idle"}',
    'histogram_quantile(0.9, sum by (le) '
        . '(prometheus_http_request_duration_seconds_bucket))',
);

plan tests => 3 + 2 * @queries + 2;

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
client_max_body_size 16m;
client_body_buffer_size 1m;
tsdb_zone main:64m path=$TEST_NGINX_DATA_DIR/main;
CONF
    config => <<'CONF');
location = /metrics {
    tsdb_metrics;
}
location = /api/v1/write {
    tsdb_remote_write main;
}
location = /api/v1/read {
    tsdb_remote_read main;
}
CONF

my @children;


sub spawn {
    my ($log, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', $log or die "$log: $!";
        open STDERR, '>&', \*STDOUT or die;
        exec @cmd or die "exec $cmd[0]: $!";
    }
    push @children, $pid;
    return $pid;
}


sub wait_http {
    my ($port, $path) = @_;
    for (1 .. 150) {
        if (IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port))
        {
            my $res = eval { Test::Nginx::Tsdb::Server::exchange(
                '127.0.0.1', $port, "GET $path HTTP/1.0\r\n\r\n", 5, 0) };
            return 1 if $res && $res->{status} == 200;
        }
        sleep 0.2;
    }
    return 0;
}


# starts a Prometheus, remembered for the END block
sub start {
    my ($name, $yml, $port) = @_;
    my ($pid, $p) = prometheus($srv, $name, $yml, $port);
    push @children, $pid;
    return ($pid, $p);
}


sub stop {
    my ($pid) = @_;
    prometheus_stop($pid);
    @children = grep { $_ != $pid } @children;
}


# the results of a query with its series in a fixed order
sub canonical {
    my ($json) = @_;
    my ($status) = $json =~ /"status":"(\w+)"/;
    my @results = $json =~ /(\{"metric":\{[^}]*\},"values?":[^}]*\})/g;
    return join "\n", ($status // 'none'), sort @results;
}


END {
    kill 'TERM', @children if @children;
}

$srv->start;

my $exporter_port = Test::Nginx::Tsdb::Server::free_port();
spawn($srv->servroot . '/node_exporter.log', $exporter,
      "--web.listen-address=127.0.0.1:$exporter_port");
ok(wait_http($exporter_port, '/metrics'), 'node_exporter runs');

my $nginx = '127.0.0.1:' . $srv->port;
my ($p1, $p1_port, $p2_port);
my $scrape_yml = sub {
    my ($self_port) = @_;
    return <<"YML";
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$self_port']
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:$exporter_port']
remote_write:
  - url: http://$nginx/api/v1/write
    queue_config:
      batch_send_deadline: 1s
      max_shards: 2
YML
};

$p1_port = Test::Nginx::Tsdb::Server::free_port();
ok(eval { ($p1) = start('p1', $scrape_yml->($p1_port), $p1_port); 1 },
   'the scraping Prometheus runs') or diag($@);

my $t0 = time;
sleep 20;
my $t1 = time;

# the first Prometheus stops, flushing its remote-write queue, and comes
# back without scraping or remote_write, to answer from its own storage
stop($p1);
sleep 1;

my $p2;
ok(eval {
       ($p1) = start('p1', "global: {}\n", $p1_port);
       ($p2, $p2_port) = start('p2', remote_read_yml($srv));
       1;
   }, 'both Prometheus servers answer') or diag($@);

# whole seconds well inside the run, away from its first and last scrape
my $start = int($t0) + 4;
my $end = int($t1) - 4;
my $at = int(($start + $end) / 2);

for my $q (@queries) {
    my $e = uri_escape($q);
    my $inst = "/api/v1/query?query=$e&time=$at";
    my $range = "/api/v1/query_range?query=$e&start=$start&end=$end&step=3";

    my ($a, $b) = (canonical(prometheus_api($p1_port, $inst)),
                   canonical(prometheus_api($p2_port, $inst)));
    ok($a =~ /^success\n\{/ && $a eq $b, "instant: $q")
        or diag("prometheus:\n$a\nngx_tsdb:\n$b");

    ($a, $b) = (canonical(prometheus_api($p1_port, $range)),
                canonical(prometheus_api($p2_port, $range)));
    ok($a =~ /^success\n\{/ && $a eq $b, "range: $q")
        or diag("prometheus:\n$a\nngx_tsdb:\n$b");
}

stop($p2);
stop($p1);

# what Prometheus sent was stored, none of it refused
my $written = metric($srv,
    'tsdb_remote_write_samples_total{result="written"}');
my $rejected = metric($srv,
    'tsdb_remote_write_samples_total{result="rejected"}');
ok($written > 1000 && !$rejected,
   "samples written: $written, rejected: $rejected");

$srv->stop;
my @bad = grep { /\[(?:alert|emerg|crit|error)\]/ }
          split /\n/, $srv->error_log;
is(scalar @bad, 0, 'no errors logged') or diag(join "\n", @bad);
