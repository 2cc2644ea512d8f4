# The Prometheus HTTP API (tsdb_query): every endpoint answers with
# Prometheus's JSON shapes, under /api/v1/ and /prometheus/api/v1/ alike,
# GET and POST (form), with Prometheus's error shapes and codes; and the
# real promtool (Debian 2.42) runs "query instant", "range", "series" and
# "labels" against it.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Test::Nginx::Tsdb;
use Test::Nginx::Tsdb::Util qw(rwgen slurp);
use JSON::PP;

my $PROMTOOL = '/usr/bin/promtool';
plan skip_all => "$PROMTOOL not installed" unless -x $PROMTOOL;
plan tests => 35;

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
client_body_buffer_size 1m;
tsdb_zone main:64m path=$TEST_NGINX_DATA_DIR/main;
CONF
    config => <<'CONF');
location = /api/v1/write {
    tsdb_remote_write main;
}
location /api/v1/ {
    tsdb_query main;
}
location /prometheus/api/v1/ {
    tsdb_query main;
    tsdb_query_max_samples 10;
}
CONF

$srv->start;

# three series of a counter, 8 samples 15 s apart, ending 15 s ago
my $T0 = (int(time / 15) * 15 - 120) * 1000;
my $body = rwgen(join '', map {
    my $i = $_;
    qq({__name__="req_total",job="api",i="$i"} )
    . join(' ', map { ($T0 + $_ * 15000) . ':' . ($_ * $i) } 0 .. 7) . "\n"
} 1 .. 3);

is($srv->request('POST /api/v1/write',
                 headers => [ 'Content-Type: application/x-protobuf' ],
                 body => $body)->{status}, 204, 'written');
is($srv->request('POST /api/v1/write',
                 headers => [ 'Content-Type: application/x-protobuf' ],
                 body => slurp('t/data/rw/req0005.snappy'))->{status},
   204, 'metadata written');

my $json = JSON::PP->new->canonical;

sub api {
    my ($uri, %o) = @_;
    my $res = $srv->request(($o{form} ? 'POST ' : 'GET ') . $uri,
        $o{form} ? (headers => [ 'Content-Type: '
                                 . 'application/x-www-form-urlencoded' ],
                    body => $o{form})
                 : ());
    my $data = eval { $json->decode($res->{body} // '') };
    return ($res->{status} // 0, $data, $res);
}

my $t = $T0 / 1000 + 105;

my ($st, $d, $res) = api("/api/v1/query?query=sum(req_total)&time=$t");
is($st, 200, 'query: 200');
like($res->{headers}{'content-type'} // '', qr{^application/json},
     'query: JSON');
is($json->encode($d->{data}),
   '{"result":[{"metric":{},"value":[' . $t . ',"42"]}],'
   . '"resultType":"vector"}', 'query: sum at the last sample');

($st, $d) = api('/prometheus/api/v1/query',
                form => "query=req_total%7Bi%3D%222%22%7D&time=$t");
is($st, 200, 'POST form under /prometheus/api/v1/: 200');
is($d->{data}{result}[0]{value}[1], '14', 'POST form: the selected series');

($st, $d) = api('/api/v1/query_range?query=rate(req_total%5B1m%5D)'
                . '&start=' . ($T0 / 1000 + 60) . "&end=$t&step=15s");
is($st, 200, 'query_range: 200');
is($d->{data}{resultType}, 'matrix', 'query_range: a matrix');
is(scalar @{ $d->{data}{result} }, 3, 'query_range: three series');
is_deeply([ map { $_->{metric}{i} } @{ $d->{data}{result} } ], [ 1, 2, 3 ],
          'query_range: sorted by labels, __name__ dropped by rate()');
is($d->{data}{result}[2]{values}[0][1], '0.2',
   'query_range: rate of the third series');

($st, $d) = api('/api/v1/series?match[]=req_total%7Bi!%3D%221%22%7D');
is($st, 200, 'series: 200');
is($json->encode($d->{data}),
   '[{"__name__":"req_total","i":"2","job":"api"},'
   . '{"__name__":"req_total","i":"3","job":"api"}]', 'series: the two');

($st, $d) = api('/api/v1/labels');
is_deeply($d->{data}, [ '__name__', 'i', 'job' ], 'labels');

($st, $d) = api('/api/v1/label/i/values');
is_deeply($d->{data}, [ 1, 2, 3 ], 'label values');

($st, $d) = api('/api/v1/label/__name__/values?match[]=req_total');
is_deeply($d->{data}, [ 'req_total' ], 'label values with match[]');

($st, $d) = api('/api/v1/metadata?metric=go_goroutines');
is_deeply($d->{data}, { go_goroutines => [ { type => 'gauge',
          help => 'Number of goroutines that currently exist.',
          unit => '' } ] }, 'metadata of one metric');

($st, $d) = api('/api/v1/metadata?limit=3');
is(scalar keys %{ $d->{data} }, 3, 'metadata: limit');

($st, $d) = api('/api/v1/status/tsdb?limit=2');
is($json->encode($d->{data}{headStats}),
   '{"chunkCount":3,"maxTime":' . ($T0 + 7 * 15000) . ',"minTime":' . $T0
   . ',"numLabelPairs":5,"numSeries":3}', 'status/tsdb: head stats');
is($json->encode($d->{data}{seriesCountByLabelValuePair}),
   '[{"name":"__name__=req_total","value":3},{"name":"job=api","value":3}]',
   'status/tsdb: series by label pair, the top 2');
is($json->encode([ $d->{data}{labelValueCountByLabelName},
                   $d->{data}{memoryInBytesByLabelName} ]),
   '[[{"name":"i","value":3},{"name":"__name__","value":1}],'
   . '[{"name":"__name__","value":9},{"name":"i","value":3}]]',
   'status/tsdb: values and bytes by label name');

($st, $d) = api('/api/v1/status/buildinfo');
is($d->{data}{version}, '2.42.0', 'buildinfo: the API level');

# errors
($st, $d) = api('/api/v1/query?query=sum(');
is($st, 400, 'a parse error: 400');
is($d->{errorType}, 'bad_data', 'a parse error: bad_data');
like($d->{error}, qr/^invalid parameter "query": 1:5: parse error: /,
     'a parse error: Prometheus\'s message');

($st, $d) = api('/api/v1/query_range?query=up&start=10&end=5&step=1');
is("$st $d->{errorType}", '400 bad_data', 'end before start: bad_data');

($st, $d) = api('/api/v1/series');
is($d->{error}, 'no match[] parameter provided', 'series without match[]');

($st, $d) = api("/prometheus/api/v1/query?query=req_total%5B5m%5D&time=$t");
is("$st $d->{errorType}", '422 execution',
   'tsdb_query_max_samples: an execution error');

($st, $d) = api('/api/v1/nothing');
is($st, 404, 'an unknown endpoint: 404');

# the real promtool
my $url = 'http://127.0.0.1:' . $srv->port;
my $q = q('sum by (job) (req_total)');
my $out = `$PROMTOOL query instant --time=$t $url $q 2>&1`;
like($out, qr/^\{job="api"\} => 42 @\[\Q$t\E\]$/m, 'promtool query instant');

my ($t1, $t2) = ($t - 30, $t - 15);
$q = q('req_total{i="1"}');
$out = `$PROMTOOL query range --start=$t1 --end=$t --step=15s $url $q 2>&1`;
like($out, qr/5 @\[\Q$t1\E\]\n6 @\[\Q$t2\E\]\n7 @\[\Q$t\E\]/,
     'promtool query range');

$out = `$PROMTOOL query series --match='req_total{i="3"}' $url 2>&1`;
like($out, qr/^\{__name__="req_total", i="3", job="api"\}$/m,
     'promtool query series');

$out = `$PROMTOOL query labels $url i 2>&1`;
is($out, "1\n2\n3\n", 'promtool query labels');

$srv->no_errors_ok('no errors in the log');
