# Retention for profiles (tsdb_zone retention=): against the real nginx
# with retention=10s and a checkpoint every 500ms,
#  1. /ingest and Push refuse a profile older than retention with 400
#     and a one-line reason (Connect error JSON for Push), storing
#     nothing;
#  2. a profile stored now is merged by /pyroscope/render, then, once
#     older than retention, a checkpoint's retention step deletes its
#     row: render finds nothing and the log says so; a profile dated
#     later keeps its total.

use strict;
use warnings;

use lib 't/lib';
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use Test::More;
use Test::Nginx::Tsdb;

plan tests => 9;

my $dump = $ENV{TSDB_PSTORE_DUMP} || 'build/pstore-dump';

ok(-x $dump || system('make', '-s', $dump) == 0, "$dump built")
    or BAIL_OUT("cannot build $dump");

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
client_max_body_size 16m;
tsdb_zone main:16m path=$TEST_NGINX_DATA_DIR/main thread_pool=default
          retention=10s flush=500ms;
CONF
    config => <<'CONF');
location / {
    tsdb_profile_ingest main;
}
location /pyroscope/ {
    tsdb_profile_query main;
}
CONF

$srv->start;

my $zone = $srv->data_dir . '/main';
my $type = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds';

sub slurp {
    my ($f) = @_;
    local (@ARGV, $/) = ($f);
    return scalar <>;
}

sub ticks {
    my ($svc) = @_;
    my $now = time;
    my $q = "$type\{service_name=\"$svc\"}";
    $q =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge;
    my $res = $srv->request("GET /pyroscope/render?query=$q"
                            . '&from=' . ($now - 86400)
                            . '&until=' . ($now + 2 * 86400));
    my $j = eval { decode_json($res->{body}) } // {};
    return $j->{flamebearer}{numTicks} // -1;
}

# 1. too old: refused by both APIs
my $old = time - 3600;
my $res = $srv->request("POST /ingest?name=old.cpu&format=folded&from=$old",
                        body => "main;spin 100\n");
ok($res->{status} == 400
   && $res->{body} =~ /^[^\n]*older than the zone's retention[^\n]*\n?$/,
   "/ingest of a profile an hour old: 400 ($res->{status} $res->{body})");

# the Go fixture is dated when it was recorded, long before now - 10s
my $cpu1 = slurp('/work/shared/fixtures/pprof/go-1.19/cpu1.pb.gz');
$res = $srv->request('POST /push.v1.PusherService/Push',
    headers => [ [ 'Content-Type', 'application/json' ] ],
    body => encode_json({ series => [ {
        labels => [ { name => '__name__', value => 'process_cpu' },
                    { name => 'service_name', value => 'old' } ],
        samples => [ { rawProfile => encode_base64($cpu1, '') } ] } ] }));
my $e = eval { decode_json($res->{body}) } // {};
ok($res->{status} == 400 && ($e->{code} // '') eq 'invalid_argument'
   && ($e->{message} // '') =~ /older than the zone's retention/,
   "Push of an old profile: 400 invalid_argument ($res->{body})");

is(ticks('old'), 0, 'nothing of the refused profiles was stored');

# 2. stored now, gone once older than retention; a later one stays
my $now = time;
$res = $srv->request("POST /ingest?name=young.cpu&format=folded&from=$now",
                     body => "main;spin 70\nmain;idle 30\n");
is($res->{status}, 200, 'a profile of now: 200');
$res = $srv->request('POST /ingest?name=later.cpu&format=folded&from='
                     . ($now + 86400), body => "main;spin 50\n");
is($res->{status}, 200, 'a profile dated a day later: 200');

my $t0 = ticks('young');
is($t0, 1e9, 'render merges it: 100 samples at 100 Hz, 1e9 ns');

# wait for a retention step after the row got older than 10s (polled,
# with a deadline far beyond the 10s + 500ms it needs)
my $ticks = $t0;

for (1 .. 240) {
    $ticks = ticks('young');
    last if $ticks == 0;
    select(undef, undef, undef, 0.25);
}

ok($ticks == 0 && $srv->error_log =~ /retention deleted \d+ profile rows/,
   "retention deleted its row: render finds nothing ($ticks)")
    or diag($srv->error_log);
is(ticks('later'), 5e8, 'the later profile keeps its total, 5e8 ns');
