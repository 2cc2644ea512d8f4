# Own metrics stay monotonic and exact across a SIGKILLed worker and a
# reload, and promtool accepts them at every step.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Test::Nginx::Tsdb;

# 15 scrapes of 4 assertions each, and 12 more
plan tests => 15 * 4 + 12;

my $srv = Test::Nginx::Tsdb::Server->new(config => <<'CONF');
location = /metrics {
    tsdb_metrics;
}
location = /other {
    return 204;
}
CONF

my $scrapes = 0;
my %last;

# Each scrape sees every earlier scrape counted exactly once: the one in
# progress is counted in its own log phase, after the body is rendered.
sub scrape {
    my ($step, $inexact) = @_;

    my $res = $srv->request('GET /metrics');
    is($res->{status}, 200, "$step: scrape answers 200");

    my %v;
    for (split /\n/, $res->{body}) {
        next if /^#/;
        my ($k, $val) = /^(\S+) (\S+)$/ or next;
        $v{$k} = $val;
    }

    my $k = 'tsdb_http_requests_total{handler="metrics",code="200"}';
    if ($inexact) {
        cmp_ok($v{$k}, '>=', $scrapes, "$step: at least $scrapes counted");
        $scrapes = $v{$k};
    } else {
        is($v{$k} // 0, $scrapes, "$step: $scrapes earlier scrapes counted");
    }
    $scrapes++;

    my @back = grep { /_total|_count|_bucket|_sum/
                      && ($v{$_} // 0) < $last{$_} } sort keys %last;
    ok(!@back, "$step: no counter went back")
        or diag(map { "$_: $last{$_} -> " . ($v{$_} // 'gone') } @back);
    %last = %v;

    open my $p, '|-', 'promtool check metrics >/dev/null 2>&1'
        or die "promtool: $!";
    print $p $res->{body};
    ok(close($p), "$step: promtool check metrics passes");

    return \%v;
}

$srv->start;

scrape('start') for 1 .. 3;
my $v = scrape('start');
is($v->{tsdb_worker_processes}, 2, 'two workers report');
is($v->{tsdb_worker_starts_total}, 2, 'two workers started');

my @pids = $srv->worker_pids;
is(scalar @pids, 2, 'two worker pids');

# a SIGKILLed worker: its successor adopts its slot and counters
$srv->kill_worker($pids[0], 'KILL');

scrape('after kill') for 1 .. 3;
$v = scrape('after kill');
is($v->{tsdb_worker_processes}, 2, 'after kill: two workers report');
is($v->{tsdb_worker_starts_total}, 3, 'after kill: the respawn counted');

# reload: the zone is handed to the new cycle, counters continue
$srv->reload;

scrape('after reload') for 1 .. 3;
$v = scrape('after reload');
is($v->{tsdb_worker_processes}, 2, 'after reload: two workers report');
is($v->{tsdb_worker_starts_total}, 5, 'after reload: new workers counted');

# other locations and 204s are not counted as tsdb requests
my $res = $srv->request('GET /other');
is($res->{status}, 204, 'other location answers');
$v = scrape('other');
ok(!grep(/code="204"/, keys %$v), 'other locations are not counted');

# concurrent scrapes while a worker is killed: totals never go back (a
# scrape cut off by the kill may or may not have been counted)
my $pid = fork;
die "fork: $!" unless defined $pid;
if ($pid == 0) {
    for (1 .. 200) {
        eval { $srv->request('GET /metrics') };
    }
    exit 0;
}

@pids = $srv->worker_pids;
$srv->kill_worker($pids[1], 'KILL');
waitpid($pid, 0);

$v = scrape('after concurrent kill', 1);
$v = scrape('after concurrent kill, settled');
is($v->{tsdb_worker_starts_total}, 6, 'second respawn counted');

my $log = $srv->error_log;
my @bad = grep { !/exited on signal 9/ }
          grep { /\[(?:alert|emerg|crit|error)\]/ } split /\n/, $log;
is(scalar @bad, 0, 'no errors but the expected worker kills')
    or diag(join "\n", @bad);
like($log, qr/worker process \d+ exited on signal 9/,
     'the kills are in the log');

$srv->stop;
