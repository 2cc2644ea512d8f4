# wal_fsync=always with a thread pool: concurrent writers are answered
# only after the group fsync that covers their records, which runs in
# nginx's thread pool; no request waits for more than one fsync, and
# every acknowledged sample survives SIGKILL of the whole server
# (re-sending it afterwards is a duplicate).  With thread_pool=off the
# fsync runs on the event loop, and the same holds.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Test::Nginx::Tsdb;
use Test::Nginx::Tsdb::Util qw(rwgen metric);

plan tests => 11;

my ($WRITERS, $REQUESTS, $SERIES) = (8, 25, 20);
my $WRITTEN = 'tsdb_remote_write_samples_total{result="written"}';
my $DUPS = 'tsdb_remote_write_samples_total{result="duplicate"}';
my $BASE = (time - 600) * 1000;

my $srv = Test::Nginx::Tsdb::Server->new(
    workers => 2,
    log_level => 'debug',
    http_config => <<'CONF',
client_body_buffer_size 1m;
tsdb_zone main:64m path=$TEST_NGINX_DATA_DIR/main wal_fsync=always;
CONF
    config => <<'CONF');
location = /metrics {
    tsdb_metrics;
}
location = /api/v1/write {
    tsdb_remote_write main;
}
CONF


# writer w, request k: SERIES samples at one time, distinct per request
sub body {
    my ($w, $k) = @_;
    my $t = $BASE + $k * 1000;
    return rwgen(join '', map { qq({__name__="fsync_total",w="$w",s="$_"})
                                . " $t:$k\n" } 1 .. $SERIES);
}


# every writer sends its requests one after the other, all at once
sub write_all {
    my %pids;

    for my $w (1 .. $WRITERS) {
        my $pid = fork // die "fork: $!";

        if ($pid) {
            $pids{$pid} = $w;
            next;
        }

        my $bad = 0;
        for my $k (1 .. $REQUESTS) {
            my $res = $srv->request('POST /api/v1/write',
                headers => [ 'Content-Type: application/x-protobuf' ],
                body => body($w, $k), timeout => 20);
            $bad++ unless ($res->{status} // 0) == 204;
        }
        exit($bad > 255 ? 255 : $bad);
    }

    my $bad = 0;
    while ((my $pid = wait) > 0) {
        $bad += $? >> 8;
    }
    return $bad;
}


$srv->start;

my $total = $WRITERS * $REQUESTS * $SERIES;

is(write_all(), 0, "$WRITERS concurrent writers: every request got 204");
is(metric($srv, $WRITTEN), $total, "all $total samples written");

my @fsyncs = $srv->error_log =~ /wal fsync thread/g;
ok(@fsyncs > 0, 'fsyncs ran in the thread pool');
ok(@fsyncs <= $WRITERS * $REQUESTS,
   'no request needed more than one fsync');
diag(sprintf '%d requests, %d fsyncs (%.2f requests per fsync)',
     $WRITERS * $REQUESTS, scalar @fsyncs,
     $WRITERS * $REQUESTS / (@fsyncs || 1));

# the whole server dies at once: only what reached the disk is left
my $master = $srv->{pid};
kill 'KILL', $srv->worker_pids, $master;
sleep 1;
$srv->{pid} = undef;

$srv->start;

is(write_all(), 0, 'after SIGKILL and a restart, re-sending gets 204');
is(metric($srv, $DUPS), $total, 'every acknowledged sample was there');
is(metric($srv, $WRITTEN) // 0, 0, 'nothing was missing');

# without threads: the event loop fsyncs before each answer
$BASE += 3600 * 1000;
$srv->restart(http_config => <<'CONF');
client_body_buffer_size 1m;
tsdb_zone main:64m path=$TEST_NGINX_DATA_DIR/main wal_fsync=always
          thread_pool=off;
CONF
my $before = () = $srv->error_log =~ /wal fsync thread/g;

is(write_all(), 0, 'thread_pool=off: every request got 204');
is(metric($srv, $WRITTEN), $total, "thread_pool=off: $total written");
is(scalar(() = $srv->error_log =~ /wal fsync thread/g), $before,
   'thread_pool=off: no fsync in a thread');

$srv->no_errors_ok('no errors in the log');
