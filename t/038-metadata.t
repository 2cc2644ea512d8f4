# Metric metadata from remote write: the real Prometheus request that
# carries 448 metric families (t/data/rw/req0005) goes into the zone's
# table and the WAL; a restart replays it from the WAL; a checkpoint
# copies it into the LMDB index (read back with mdb_dump), and once
# copied an unchanged family is not copied again.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Test::Nginx::Tsdb;
use Test::Nginx::Tsdb::Util qw(slurp);
use Time::HiRes qw(sleep);

my $MDB_DUMP = '/usr/bin/mdb_dump';
plan skip_all => "$MDB_DUMP not installed (lmdb-utils)" unless -x $MDB_DUMP;
plan tests => 9;

my $FAMILIES = 448;
my @V1 = ('Content-Type: application/x-protobuf',
          'Content-Encoding: snappy');

sub conf {
    my ($flush) = @_;
    return <<"CONF";
client_body_buffer_size 1m;
tsdb_zone main:64m path=\$TEST_NGINX_DATA_DIR/main flush=$flush;
CONF
}

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => conf('1h'),
    config => <<'CONF');
location = /api/v1/write {
    tsdb_remote_write main;
}
CONF

sub send_metadata {
    return $srv->request('POST /api/v1/write', headers => \@V1,
                         body => slurp('t/data/rw/req0005.snappy'))
               ->{status} // 0;
}

sub checkpoints {
    return map { /checkpoint \d+: \d+ series, \d+ chunks, (\d+) metadata/ }
           grep { /tsdb zone "main": checkpoint \d+/ }
           split /\n/, $srv->error_log;
}

sub wait_for {
    my ($cond, $secs) = @_;
    for (1 .. $secs * 10) {
        return 1 if $cond->();
        sleep 0.1;
    }
    return 0;
}

# mdb_dump -p prints each key and value as a line of printable text
sub stored {
    my $dir = $srv->data_dir . '/main/index';
    my @lines = `$MDB_DUMP -p -s metadata $dir 2>&1`;
    return grep { /^ / } @lines;
}

$srv->start;

is(send_metadata(), 204, 'a metadata-only request: 204');

# no checkpoint yet (flush=1h): the restart replays the WAL
$srv->restart;
my $replayed = 'replayed \d+ wal directories, \d+ records, \d+ samples, '
               . "$FAMILIES metadata, 0 not appended";
like($srv->error_log, qr/$replayed/,
     "the restart replayed $FAMILIES metadata entries from the WAL");

$srv->restart(http_config => conf('1s'));
ok(wait_for(sub { grep { $_ == $FAMILIES } checkpoints() }, 15),
   "a checkpoint copied the $FAMILIES replayed entries");

my @kv = stored();
is(scalar @kv, 2 * $FAMILIES, "LMDB holds $FAMILIES metadata entries");
ok((grep { /node_cpu_seconds_total/ } @kv),
   'node_cpu_seconds_total is among them');
ok((grep { /Seconds the CPUs spent in each mode/ } @kv),
   'with its help text');

# the same again: answered, logged, but not copied again
my $n = () = checkpoints();
is(send_metadata(), 204, 'the same metadata again: 204');
sleep 2.5;
my @after = checkpoints();
is(scalar(grep { $_ > 0 } @after[$n .. $#after]), 0,
   'unchanged entries are not copied again');

$srv->no_errors_ok('no errors in the log');
