# tsdb_profile_ingest: Pyroscope's legacy /ingest with pprof (raw and
# multipart), folded and lines bodies, against the real nginx.  What
# lands in the store is read back with build/pstore-dump: series under
# Pyroscope's profile types and labels, and a merged pprof that
# `go tool pprof -top` prints exactly as it prints the originals given
# together.  Bad bodies get 4xx with one-line reasons and change
# nothing; a restart keeps everything.

use strict;
use warnings;

use lib 't/lib';
use File::Temp qw(tempdir);
use IO::Compress::Gzip qw(gzip $GzipError);
use Test::More;
use Test::Nginx::Tsdb;

my $dump = $ENV{TSDB_PSTORE_DUMP} || 'build/pstore-dump';
my $go = `command -v go 2>/dev/null`;
chomp $go;

plan tests => 40;

ok(-x $dump || system('make', '-s', $dump) == 0, "$dump built")
    or BAIL_OUT("cannot build $dump");

my $tmp = tempdir('profile-ingest-XXXXXX', TMPDIR => 1, CLEANUP => 1);
local $ENV{GOCACHE} = "$tmp/gocache";
local $ENV{HOME} = $tmp;
local $ENV{PPROF_TMPDIR} = $tmp;

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
client_max_body_size 16m;
client_body_buffer_size 1m;
tsdb_zone main:16m path=$TEST_NGINX_DATA_DIR/main thread_pool=default
          retention=36500d;
CONF
    config => <<'CONF');
location /pyroscope/ {
    tsdb_profile_ingest main;
}
location = /metrics {
    tsdb_metrics;
}
CONF

sub slurp {
    my ($f) = @_;
    local (@ARGV, $/) = ($f);
    return scalar <>;
}

my $cpu1 = slurp('t/data/pprof/cpu1.pb.gz');
my $cpu2 = slurp('t/data/pprof/cpu2.pb.gz');
my $heap = slurp('t/data/pprof/heap1.pb.gz');

my $T0 = 1700000000;            # seconds; nanoseconds are sent too

sub ingest {
    my ($query, $body, @headers) = @_;
    my $res = $srv->request("POST /pyroscope/ingest?$query",
                            headers => [ @headers ], body => $body);
    my $b = $res->{body} // '';
    chomp $b;
    return ($res->{status} // 0, $b);
}

sub multipart {
    my (%parts) = @_;
    my $bd = 'ngxtsdbBoundary7MA4YWxk';
    my $body = '';

    for my $name (sort keys %parts) {
        $body .= "--$bd\r\nContent-Disposition: form-data; name=\"$name\";"
               . " filename=\"$name.bin\"\r\n"
               . "Content-Type: application/octet-stream\r\n\r\n"
               . $parts{$name} . "\r\n";
    }

    return ($body . "--$bd--\r\n",
            [ 'Content-Type', "multipart/form-data; boundary=$bd" ]);
}

$srv->start;

# 1. pprof raw (format=pprof, seconds) and multipart (no format, ns)
my @r = ingest("name=myapp%7Benv%3Dprod%7D&format=pprof&from=$T0"
               . "&until=" . ($T0 + 10) . '&spyName=gospy', $cpu1);
is($r[0], 200, "cpu1 raw pprof: 200 ($r[1])");

my ($mp, $ct) = multipart(profile => $cpu2,
    sample_type_config => '{"cpu":{"units":"samples","display-name":'
                          . '"cpu_samples"}}');
@r = ingest('name=myapp{env=prod}&from=' . ($T0 + 10) . '000000000&until='
            . ($T0 + 20) . '000000000&spyName=gospy', $mp, $ct);
is($r[0], 200, "cpu2 multipart pprof: 200 ($r[1])");

@r = ingest("name=myapp{env=prod}&format=pprof&from=$T0&until="
            . ($T0 + 10), $heap);
is($r[0], 200, "heap1 raw pprof: 200 ($r[1])");

# 2. folded and lines, Pyroscope's app.type names
@r = ingest("name=fold.cpu{env=dev}&format=folded&from=$T0&sampleRate=100",
            "main;work;spin 30\nmain;idle 10\n");
is($r[0], 200, "folded cpu: 200 ($r[1])");

@r = ingest("name=fold.alloc_space&format=lines&from=$T0",
            "main;alloc\nmain;alloc\nmain;free\n");
is($r[0], 200, "lines alloc_space: 200 ($r[1])");

@r = ingest("name=fold&from=$T0", "a;b 5\n");
is($r[0], 200, "folded is the default format, cpu the default type");

# 3. refusals: status and reason
my $bomb;
gzip(\("\0" x (8 << 20)) => \$bomb) or die $GzipError;

my @bad = (
    [ 'a gzip bomb', "name=x&format=pprof", $bomb, [], 413,
      qr/decompressed|large|limit/i ],
    [ 'not a pprof', "name=x&format=pprof", "garbage\x00\x01", [], 400,
      qr/./ ],
    [ 'a truncated gzip', "name=x&format=pprof", substr($cpu1, 0, 2000), [],
      400, qr/gzip|compress/i ],
    [ 'no name', "format=folded", "a 1\n", [], 400, qr/name/ ],
    [ 'an unknown type suffix', "name=x.nosuch&format=folded", "a 1\n", [],
      400, qr/unknown profile type/ ],
    [ 'a bad count', "name=x.cpu&format=folded", "a;b x\n", [], 400,
      qr/line 1/ ],
    [ 'jfr', "name=x&format=jfr", "x", [], 415, qr/unsupported format/ ],
    [ 'a bad label name', "name=x%7B1bad%3Dy%7D&format=pprof", $cpu1, [],
      400, qr/invalid label/ ],
    [ 'a multipart body without profile',
      "name=x", (multipart(other => 'x'))[0],
      [ (multipart(other => 'x'))[1] ], 400, qr/profile/ ],
);

for my $b (@bad) {
    my ($name, $q, $body, $h, $status, $re) = @$b;
    @r = ingest($q, $body, @$h);
    ok($r[0] == $status && $r[1] =~ $re,
       "$name: $status, reason \"$r[1]\"")
        or diag("got $r[0] \"$r[1]\"");
}

my $res = $srv->request('GET /pyroscope/ingest?name=x');
is($res->{status}, 405, 'GET: 405');

$res = $srv->request("POST /pyroscope/other?name=x", body => "a 1\n");
is($res->{status}, 404, 'unknown endpoint: 404');

my @errs = grep { /\[(error|alert|emerg|crit)\]/ } split /\n/,
           $srv->error_log;
is(scalar @errs, 0, 'no [error]/[alert] for client mistakes')
    or diag(join "\n", @errs);
like($srv->error_log, qr/\[info\].*tsdb profile ingest: 413/,
     'refusals logged at [info]');

# 4. a restart keeps everything
$srv->stop;
$srv->start;

my $zone = $srv->data_dir . '/main';
my $series = `$dump $zone 2>&1`;
is($?, 0, 'pstore-dump lists series') or diag($series);

for my $want (
    [ 'process_cpu:cpu:nanoseconds:cpu:nanoseconds', 'myapp', 'prod', 2 ],
    [ 'process_cpu:samples:count:cpu:nanoseconds', 'myapp', 'prod', 2 ],
    [ 'memory:inuse_space:bytes:space:bytes', 'myapp', 'prod', 1 ],
    [ 'memory:alloc_objects:count:space:bytes', 'myapp', 'prod', 1 ],
    [ 'process_cpu:cpu:nanoseconds:cpu:nanoseconds', 'fold', 'dev', 1 ],
    [ 'memory:alloc_space:bytes::', 'fold', undef, 1 ],
) {
    my ($type, $svc, $env, $rows) = @$want;
    my $re = qr/__name__="\Q${\ (split ':', $type)[0]}\E",
                \ __profile_type__="\Q$type\E",
                (?:\ env="\Q@{[ $env \/\/ '' ]}\E",)?
                .*service_name="\Q$svc\E"\}\ rows=(\d+)/x;
    my @rows = map { /$re/ ? ($1) : () }
               grep { defined $env ? /env="\Q$env\E"/ : !/env=/ }
               split /\n/, $series;
    is_deeply(\@rows, [ $rows ], "$type, service_name=$svc"
              . (defined $env ? ", env=$env" : '') . ": $rows rows")
        or diag($series);
}

like($series, qr/pyroscope_spy="gospy"/, 'pyroscope_spy kept');
unlike($series, qr/__name__="memory".*env="dev"/, 'labels not mixed up');

# 5. go tool pprof -top over the store's merge equals over the originals
SKIP: {
    skip 'go not installed', 6 if $go eq '';

    sub top {
        my ($index, @files) = @_;
        my @out = `go tool pprof -top -nodecount=1000000 -nodefraction=0 \\
                   -edgefraction=0 -sample_index=$index @files 2>&1`;
        my ($total) = grep { /^Showing nodes accounting for/ } @out;
        my @nodes = grep { /^\s+-?[\d.]+\w*\s+[\d.]+%/ } @out;
        return ($total // "no totals in:\n@out", \@nodes);
    }

    for my $case (
        [ 'process_cpu:cpu:nanoseconds:cpu:nanoseconds', 'cpu',
          't/data/pprof/cpu1.pb.gz', 't/data/pprof/cpu2.pb.gz' ],
        [ 'process_cpu:samples:count:cpu:nanoseconds', 'samples',
          't/data/pprof/cpu1.pb.gz', 't/data/pprof/cpu2.pb.gz' ],
        [ 'memory:inuse_space:bytes:space:bytes', 'inuse_space',
          't/data/pprof/heap1.pb.gz' ],
    ) {
        my ($type, $index, @files) = @$case;
        my $out = "$tmp/$index.pb.gz";
        my $msg = `$dump -o $out $zone $type service_name=myapp env=prod 2>&1`;
        my ($want_total, $want) = top($index, @files);
        my ($got_total, $got) = top(0, $out);

        is($got_total, $want_total, "$type: same totals") or diag($msg);
        is_deeply($got, $want, "$type: same flat/cum per function ("
                  . scalar(@$want) . ' lines)')
            or diag("want:\n@$want\ngot:\n@$got");
    }
}

# 6. another tenant sees nothing
$series = `$dump -t other $zone 2>&1`;
unlike($series, qr/service_name/, 'tenant "other" has no series');

@r = ingest("name=myapp&format=pprof&from=$T0", $cpu1,
            [ 'X-Scope-OrgID', 'other' ]);
is($r[0], 200, 'tenant "other" ingests');
$series = `$dump -t other $zone 2>&1`;
is(scalar(() = $series =~ /rows=1/g), 2, 'tenant "other" has its 2 series');

# 7. the same profile again stores only its rows (symbols once): the
# row bytes per copy, against the 10 kB gzip pprof
sub row_bytes {
    my $n = 0;
    $n += $_ for `$dump $zone` =~ / rows=\d+ bytes=(\d+)/g;
    return $n;
}

my $rows0 = row_bytes();
for (1 .. 20) {
    ingest("name=myapp{env=prod}&format=pprof&from=" . ($T0 + 100 + $_),
           $cpu1);
}
my $per = (row_bytes() - $rows0) / 20;
ok($per > 0 && $per < length($cpu1) / 4, "20 more copies of cpu1 store"
   . " $per row bytes each (pprof: " . length($cpu1) . ' bytes)');

is(scalar(grep { /\[(error|alert|emerg|crit)\]/ } split /\n/,
          $srv->error_log), 0, 'no [error]/[alert] in the end');
