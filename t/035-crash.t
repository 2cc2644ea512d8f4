# Crash safety: writes stream in while workers are SIGKILLed at random
# moments, nginx is reloaded and restarted, and checkpoints run every
# second.  Afterwards every acknowledged sample is stored (re-sending it
# is a duplicate), and no sample is stored twice (the real Prometheus
# counts, through remote_read, no more points than distinct timestamps
# sent).

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Test::Nginx::Tsdb;
use Test::Nginx::Tsdb::Util qw(rwgen metric prometheus prometheus_stop
                               prometheus_api remote_read_yml);
use Time::HiRes qw(sleep);

my $prometheus = $Test::Nginx::Tsdb::Util::PROMETHEUS;
plan skip_all => "$prometheus not installed" unless -x $prometheus;
plan tests => 7;

my ($ROUNDS, $SERIES) = (1200, 4);
my $WRITTEN = 'tsdb_remote_write_samples_total{result="written"}';

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
client_max_body_size 16m;
client_body_buffer_size 1m;
tsdb_zone main:64m path=$TEST_NGINX_DATA_DIR/main flush=1s;
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


sub body {
    my ($t, $v) = @_;
    return rwgen(join '', map { qq({__name__="crash_total",s="$_"} $t:$v\n) }
                          1 .. $SERIES);
}


my %bodies;

sub write_sample {
    my ($t, $v) = @_;
    my $res = $srv->request('POST /api/v1/write',
        headers => [ 'Content-Type: application/x-protobuf' ],
        body => $bodies{$t} // body($t, $v), timeout => 5);
    return $res->{status} // 0;
}


# a child that SIGKILLs a random worker every so often while we write
sub killer {
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    srand($$);
    for (1 .. 40) {
        sleep 0.02 + rand 0.04;
        my @w = $srv->worker_pids;
        kill 'KILL', $w[rand @w] if @w;
    }
    exit 0;
}


$srv->start;

# samples one second apart, ending a minute ago; the bodies are made
# first so that requests follow each other closely and kills land in
# the middle of some
my $t0 = (time - 60 - $ROUNDS) * 1000;
$bodies{$t0 + 1000 * $_} = body($t0 + 1000 * $_, $_) for 0 .. $ROUNDS - 1;

my (@acked, %status);
my $killer = killer();

for my $i (0 .. $ROUNDS - 1) {
    if ($i == 400) {
        $srv->reload;

        # let a checkpoint truncate the WAL before the next crashes
        for (1 .. 50) {
            last if $srv->error_log =~ /checkpoint \d+:/;
            sleep 0.1;
        }
    }
    if ($i == 800) {
        waitpid($killer, 0);
        $srv->restart;
        $killer = killer();
    }

    my $st = write_sample($t0 + 1000 * $i, $i);
    $status{$st}++;
    push @acked, $i if $st == 204;
}

waitpid($killer, 0);

ok(@acked >= $ROUNDS / 4, scalar(@acked) . " of $ROUNDS writes acknowledged"
   . ' (' . join(', ', map { "$_: $status{$_}" } sort keys %status) . ')');
like($srv->error_log, qr/exited on signal 9/, 'workers were SIGKILLed');
like($srv->error_log, qr/checkpoint \d+:/, 'checkpoints ran meanwhile');

# every acknowledged sample is stored: sending it again is a duplicate
$srv->restart;
my $w0 = metric($srv, $WRITTEN);
my $bad = 0;
for my $i (@acked) {
    $bad++ if write_sample($t0 + 1000 * $i, $i) != 204;
}
is($bad, 0, 'every acknowledged sample is accepted again');
is(metric($srv, $WRITTEN) - $w0, 0,
   'none of them was missing');

# none is stored twice: Prometheus counts the points through remote_read
my ($pid, $port) = prometheus($srv, 'prom', remote_read_yml($srv));
my $body = prometheus_api($port, '/api/v1/query?query=count_over_time'
                                 . '(crash_total%5B1h%5D)');
prometheus_stop($pid);

my @counts = $body =~ /"value":\[[\d.]+,"(\d+)"\]/g;
is(scalar @counts, $SERIES, "all $SERIES series read back");
ok(!grep({ $_ < @acked || $_ > $ROUNDS } @counts),
   'each has every acknowledged point and none twice (counts: '
   . join(', ', @counts) . ', acked ' . scalar(@acked) . ')');

$srv->stop;
