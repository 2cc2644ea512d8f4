# Native histograms end to end: the same remote-write body (build/rwgen)
# goes to ngx_tsdb and to a real Prometheus 2.42 with native histograms
# and the remote-write receiver (p1).  What ngx_tsdb's remote read gives
# back, SAMPLES and STREAMED_XOR_CHUNKS, is decoded by build/rread-dump
# (the store's chunk iterators for STREAMED) and written to fresh
# Prometheus 2.42 servers, one per response type; they must answer
# histogram queries, instant and range, exactly as p1 does.  The
# responses must decode to the same histograms, and again after a
# checkpoint moved the chunks to LMDB and nginx restarted.  And
# ngx_tsdb's own /api/v1/query and query_range answer the same PromQL
# over the histograms (selectors, histogram_count/sum/fraction/quantile,
# rate, increase, sum by) exactly as p1, from the head and from LMDB.
#
# Why not remote_read into a Prometheus: Prometheus 2.42's remote-read
# client asks for SAMPLES and keeps only TimeSeries.samples (its
# concreteSeriesIterator has no histogram support, whatever the server
# sends: a 2.42 reading another 2.42 gets no histograms either), so the
# read-back data reach Prometheus by remote write instead.

use strict;
use warnings;

use lib 't/lib';
use JSON::PP;
use Test::More;
use Test::Nginx::Tsdb;
use Test::Nginx::Tsdb::Util qw(rwgen prometheus_flags prometheus_stop
                               prometheus_api prometheus_post uri_escape
                               @RW_V1);
use Time::HiRes qw(sleep);

my $prometheus = $Test::Nginx::Tsdb::Util::PROMETHEUS;
my $dump = $ENV{TSDB_RREAD_DUMP} || 'build/rread-dump';

plan skip_all => "$prometheus not installed" unless -x $prometheus;
plan skip_all => "$dump not built" unless -x $dump;

my $STEP = 5;           # seconds between samples
my $N = 360;            # samples per series: half an hour

# the data end ten minutes ago, at a whole multiple of the step
my $t_end = int((time - 600) / $STEP) * $STEP;
my $t_start = $t_end - $STEP * ($N - 1);

my @queries = (
    'hist_seconds',
    'histogram_count(hist_seconds)',
    'histogram_sum(hist_seconds)',
    'histogram_count(rate(hist_seconds[1m]))',
    'histogram_sum(rate(hist_seconds[1m]))',
    'histogram_quantile(0.9, hist_seconds)',
    'histogram_quantile(0.9, rate(hist_seconds[1m]))',
    'histogram_quantile(0.5, sum by (job) (rate(hist_seconds[2m])))',
    'histogram_fraction(0, 0.25, hist_seconds)',
    'histogram_fraction(-1, 1, rate(hist_seconds[1m]))',
    'rate(hist_seconds[1m])',
    'sum(increase(hist_seconds[2m]))',
    'gauge_hist',
    'histogram_quantile(0.75, gauge_hist)',
);

# what 2.42 does with histograms elsewhere, checked against ngx_tsdb's
# query API only (empty results allowed): most functions and operators
# read a histogram sample's V, 0; vector-scalar operators keep its H;
# two histograms add up; a float and a histogram give nothing
my @edge = (
    'avg(hist_seconds)',
    'count(hist_seconds)',
    'max(hist_seconds)',
    'topk(1, hist_seconds)',
    'quantile(0.5, hist_seconds)',
    'count_values("v", hist_seconds)',
    'sum without (job) (hist_seconds)',
    'sum(hist_seconds) + sum(gauge_hist)',
    'avg by (job) (rate(hist_seconds[1m]))',
    'hist_seconds * 2',
    '2 * hist_seconds',
    'hist_seconds + 1',
    '-hist_seconds',
    'hist_seconds > 0',
    'hist_seconds >= 0',
    'hist_seconds > bool 0',
    '0 < hist_seconds',
    'hist_seconds + hist_seconds',
    'hist_seconds - hist_seconds',
    'hist_seconds / on(job) hist_seconds',
    'hist_seconds == bool hist_seconds',
    'vector(1) + on() group_left gauge_hist',
    'hist_seconds + ignoring(job) group_left sum(gauge_hist)',
    'hist_seconds and hist_seconds',
    'gauge_hist or hist_seconds',
    'abs(hist_seconds)',
    'clamp(hist_seconds, 0, 1)',
    'label_replace(hist_seconds, "x", "y", "", "")',
    'label_join(hist_seconds, "x", ",", "job")',
    'sort_desc(hist_seconds)',
    'timestamp(hist_seconds)',
    'absent(hist_seconds)',
    'sum_over_time(hist_seconds[1m])',
    'count_over_time(hist_seconds[1m])',
    'last_over_time(hist_seconds[1m])',
    'irate(hist_seconds[1m])',
    'changes(hist_seconds[1m])',
    'hist_seconds[1m]',
    'hist_seconds offset 1m',
    'rate(hist_seconds[1m:15s])',
    'delta(hist_seconds[2m])',
    'delta(gauge_hist[2m])',
    'increase(gauge_hist[2m])',
    'histogram_quantile(0.5, rate(gauge_hist[1m]))',
    'histogram_quantile(0, hist_seconds)',
    'histogram_quantile(1, hist_seconds)',
    'histogram_quantile(0.001, hist_seconds)',
    'histogram_fraction(-0.0001, 0.0001, hist_seconds)',
    'histogram_fraction(-10, 0, hist_seconds)',
    'histogram_fraction(0, 1e10, gauge_hist)',
);

plan tests => 11 + 5 * 2 * @queries + 2 * @edge;

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
client_max_body_size 16m;
client_body_buffer_size 1m;
tsdb_zone main:64m path=$TEST_NGINX_DATA_DIR/main flush=1s;
CONF
    config => <<'CONF');
location = /api/v1/write {
    tsdb_remote_write main;
}
location = /api/v1/read {
    tsdb_remote_read main;
}
location /api/v1/ {
    tsdb_query main;
}
CONF

my @children;

END {
    kill 'TERM', @children if @children;
}


# A deterministic data set in rwgen's format.  Counter histograms of
# three jobs, schema 0 and 1, positive and negative buckets, a bucket
# that appears midway (Prometheus recodes the chunk), a counter reset
# and a stale marker; and a gauge histogram.
sub generate {
    my $text = '';
    my $seed = 42;
    my $rnd = sub { $seed = ($seed * 1103515245 + 12345) % 2**31;
                    return $seed % $_[0] };

    for my $job (qw(a b c)) {
        my @b = (0) x 6;
        my ($zero, $sum) = (0, 0);
        my $schema = $job eq 'b' ? 1 : 0;
        $text .= qq({__name__="hist_seconds",job="$job"});

        for my $i (0 .. $N - 1) {
            my $t = ($t_start + $STEP * $i) * 1000;

            if ($job eq 'c' && $i == 200) {          # a counter reset
                @b = (0) x 6;
                ($zero, $sum) = (0, 0);
            }

            if ($job eq 'a' && $i == 250) {
                $text .= " $t:h{s=$schema,zt=0.001,sum=stale}";
                next;
            }

            for my $k (0 .. 5) {
                # bucket 5 only fills from the middle on
                next if $k == 5 && $i < $N / 2;
                $b[$k] += $rnd->(7 - $k);
            }

            $zero += $rnd->(2);
            $sum += 0.25 * $rnd->(40) - 2;

            # spans: negative buckets -1..0; positive 0..2, 4, (6)
            my $pos = $i < $N / 2 ? "0_3/1_1" : "0_3/1_1/1_1";
            my $pb = join '/', @b[0 .. 3], $i < $N / 2 ? () : $b[5];
            $text .= " $t:h{s=$schema,zt=0.001,z=$zero,sum=$sum,"
                     . "n=-1_2,nb=$b[4]/" . int($b[4] / 2)
                     . ",p=$pos,pb=$pb}";
        }

        $text .= "\n";
    }

    $text .= qq({__name__="gauge_hist",job="g"});

    for my $i (0 .. $N - 1) {
        my $t = ($t_start + $STEP * $i) * 1000;
        my @b = map { $rnd->(20) } 1 .. 4;
        $text .= " $t:h{s=0,zt=0.001,z=" . $rnd->(3) . ",sum="
                 . (0.5 * $rnd->(100)) . ",r=gauge,p=-1_4,pb="
                 . join('/', @b) . "}";
    }

    return "$text\n";
}


# a query's result data in a canonical form: results sorted by labels
sub canonical {
    my ($body) = @_;
    my $json = JSON::PP->new->canonical;
    my $r = eval { $json->decode($body) };

    return "undecodable: $body" unless $r;
    return "$r->{status}: " . ($r->{error} // '')
        unless $r->{status} eq 'success';

    my $d = $r->{data};
    if (ref $d->{result} eq 'ARRAY') {
        $d->{result} = [ sort { $json->encode($a->{metric})
                                cmp $json->encode($b->{metric}) }
                         @{ $d->{result} } ];
    }

    return $json->encode($d);
}


sub compare {
    my ($p1_port, $p2_port, $what) = @_;
    my $get = sub { prometheus_api($p2_port, $_[0]) };

    compare_with($p1_port, $get, $what, \@queries, 0);
}


# the same queries answered by ngx_tsdb's own query API
sub compare_ngx {
    my ($p1_port, $what, $list, $empty_ok) = @_;
    my $get = sub { $srv->request("GET $_[0]")->{body} // '' };

    compare_with($p1_port, $get, $what, $list // \@queries, $empty_ok);
}


sub compare_with {
    my ($p1_port, $get, $what, $list, $empty_ok) = @_;
    my $at = $t_start + $STEP * int($N * 0.7) + 2;

    for my $q (@$list) {
        my $e = uri_escape($q);
        my $inst = "/api/v1/query?query=$e&time=$at";
        my $range = "/api/v1/query_range?query=$e&start=" . ($t_start + 60)
                    . "&end=$t_end&step=15";

        for my $path ($inst, $range) {
            my $a = canonical(prometheus_api($p1_port, $path));
            my $b = canonical($get->($path));
            my $kind = $path eq $inst ? 'instant' : 'range';

            ok(($empty_ok || $a =~ /"result":\[\{/) && $a eq $b,
               "$what, $kind: $q")
                or diag("prometheus:\n" . substr($a, 0, 2000)
                        . "\nngx_tsdb:\n" . substr($b, 0, 2000));
        }
    }
}


# ngx_tsdb's remote-read response of one type ("samples": a request
# without accepted_response_types, as Prometheus 2.42 sends it;
# "streamed": STREAMED_XOR_CHUNKS only), saved in servroot
sub read_back {
    my ($type, $tag) = @_;
    my $cmd = "$dump request $type '__name__=~hist_seconds|gauge_hist' "
              . ($t_start * 1000) . ' ' . ($t_end * 1000);
    my $req = `$cmd`;
    die "rread-dump request failed" if $? || !length $req;

    my $res = $srv->request('POST /api/v1/read',
        headers => [ 'Content-Type: application/x-protobuf',
                     'Content-Encoding: snappy' ],
        body => $req);
    die "remote read ($type): HTTP $res->{status}\n"
        unless $res->{status} == 200;

    my $ct = $type eq 'samples' ? 'application/x-protobuf'
             : 'application/x-streamed-protobuf; '
               . 'proto=prometheus.ChunkedReadResponse';
    die "remote read ($type): Content-Type $res->{headers}{'content-type'}"
        unless lc($res->{headers}{'content-type'} // '') eq lc $ct;

    my $file = $srv->servroot . "/read-$type-$tag";
    open my $fh, '>:raw', $file or die "$file: $!";
    print $fh $res->{body};
    close $fh;

    return $file;
}


# rread-dump's text or remote-write body for a saved response
sub dump_file {
    my ($what, $type, $file) = @_;
    my $out = `$dump $what $type < $file`;
    die "rread-dump $what $type failed" if $? || !length $out;
    return $out;
}


# a fresh Prometheus that took what was read back by remote write
sub fed_prometheus {
    my ($name, $body) = @_;
    my ($pid, $port) = prometheus_flags($srv, $name, "global: {}\n", undef,
        '--enable-feature=native-histograms',
        '--web.enable-remote-write-receiver');
    push @children, $pid;

    my $res = prometheus_post($port, '/api/v1/write', $body, @RW_V1);
    is($res->{status}, 204, "$name took what ngx_tsdb read back")
        or diag($res->{body});

    return ($pid, $port);
}


sub stop {
    my ($pid) = @_;
    prometheus_stop($pid);
    @children = grep { $_ != $pid } @children;
}


$srv->start;

my ($p1, $p1_port) = prometheus_flags($srv, 'p1', "global: {}\n", undef,
    '--enable-feature=native-histograms',
    '--web.enable-remote-write-receiver');
push @children, $p1;

my $body = rwgen(generate());

my $res = $srv->request('POST /api/v1/write', headers => \@RW_V1,
                        body => $body);
is($res->{status}, 204, 'ngx_tsdb took the histograms') or diag($res->{body});

$res = prometheus_post($p1_port, '/api/v1/write', $body, @RW_V1);
is($res->{status}, 204, 'Prometheus took the histograms')
    or diag($res->{body});

# ngx_tsdb's PromQL over the histograms in its head answers as p1 does
compare_ngx($p1_port, 'ngx_tsdb query API, head');
compare_ngx($p1_port, 'ngx_tsdb query API, head, 2.42 edges', \@edge, 1);

# from the head: both response types decode to every histogram written
my %file = map { $_ => read_back($_, 'head') } qw(samples streamed);
my $text = dump_file('decode', 'samples', $file{samples});
my $lines = () = $text =~ /\n/g;
is($lines, 4 * $N, "SAMPLES: every histogram read back ($lines)");
ok($text eq dump_file('decode', 'streamed', $file{streamed}),
   'STREAMED_XOR_CHUNKS: the same histograms');

for my $type (qw(samples streamed)) {
    my ($pid, $port) = fed_prometheus("p-$type",
        dump_file('write', $type, $file{$type}));
    compare($p1_port, $port, "head, $type");
    stop($pid);
}

# a checkpoint moves the sealed chunks to LMDB, then a restart
my $released;
for (1 .. 100) {
    ($released) = $srv->error_log
                  =~ /checkpoint\ \d+:\ \d+\ series,\ \d+\ chunks,
                      \ \d+\ metadata,\ ([1-9]\d*)\ rel/x;
    last if $released;
    sleep 0.1;
}
ok($released, 'a checkpoint released sealed chunks from the head ('
              . ($released // 0) . ')');

$srv->restart;

%file = map { $_ => read_back($_, 'persisted') } qw(samples streamed);
ok(dump_file('decode', 'samples', $file{samples}) eq $text,
   'persisted: SAMPLES reads the same histograms');
ok(dump_file('decode', 'streamed', $file{streamed}) eq $text,
   'persisted: STREAMED reads the same histograms');

compare_ngx($p1_port, 'ngx_tsdb query API, persisted');

my ($p4, $p4_port) = fed_prometheus('p-persisted',
    dump_file('write', 'streamed', $file{streamed}));
compare($p1_port, $p4_port, 'persisted, streamed');
stop($p4);
stop($p1);

$srv->stop;
my @bad = grep { /\[(?:alert|emerg|crit|error)\]/ }
          split /\n/, $srv->error_log;
is(scalar @bad, 0, 'no errors logged') or diag(join "\n", @bad);
