# A torn WAL tail, as a crash in the middle of a write leaves it, is cut
# off at start-up with a log line naming the file and the offset, and
# everything before it is replayed.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Test::Nginx::Tsdb;
use Test::Nginx::Tsdb::Util qw(write_fixtures metric);

plan tests => 6;

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
client_max_body_size 16m;
client_body_buffer_size 1m;
tsdb_zone main:64m path=$TEST_NGINX_DATA_DIR/main retention=36500d
          flush=1h;
CONF
    config => <<'CONF');
location = /metrics {
    tsdb_metrics;
}
location = /api/v1/write {
    tsdb_remote_write main;
}
CONF


$srv->start;
is_deeply(write_fixtures($srv, '/api/v1/write'), { 204 => 40 },
          'the 40 captured requests written');
$srv->stop;

# half a record at the end of the newest segment: a torn write
my @segs = sort { -M $a <=> -M $b }
           glob $srv->data_dir . '/main/wal/*/*.wal';
ok(@segs, 'the WAL has segments');
my $seg = $segs[0];
my $size = -s $seg;
open my $fh, '>>:raw', $seg or die "$seg: $!";
print $fh "\x02\x00\xff\xff\x00\x00torn";
close $fh;

$srv->start;
like($srv->error_log,
     qr/tsdb wal: .* in "\Q$seg\E" at offset $size, \d+ bytes truncated/,
     'the torn tail is reported with file and offset');
is(-s $seg, $size, 'and cut off');

is_deeply(write_fixtures($srv, '/api/v1/write'), { 204 => 40 },
          'after the repair: 204');
is(metric($srv, 'tsdb_remote_write_samples_total{result="written"}'),
   0,
   'every sample before the tear was replayed');
