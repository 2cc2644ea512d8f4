# The Prometheus HTTP API's parameter checks, answer for answer: every
# request below goes to ngx_tsdb and to the real Prometheus 2.42 (both
# empty), and the status line and the body must be identical byte for
# byte: which parameter is named, in which order the parameters are
# checked, query_range's and series' wording against the instant
# query's, and match[] parsed as 2.42's ParseMetricSelector() parses it
# (a selector and nothing else: no offset, @, range or parentheses;
# keywords and aggregator names are metric names; a second metric name
# is just another matcher).

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Test::Nginx::Tsdb;
use Test::Nginx::Tsdb::Util qw(prometheus prometheus_stop prometheus_api
                               uri_escape);

plan skip_all => 'prometheus not installed'
    unless -x $Test::Nginx::Tsdb::Util::PROMETHEUS;
plan tests => 3;

my @REQUESTS = grep { length } split /\n/, <<'REQ';
query?query=sum(
query?query=
query?time=1
query?query=up&time=abc
query?query=1&time=1e400
query?query=up&timeout=x
query?query=sum(&time=abc&timeout=x
query?query=up&timeout=
query_range?query=sum(&start=1&end=2&step=1
query_range?query=&start=1&end=2&step=1
query_range?query=up&start=x&end=2&step=1
query_range?query=up&start=1&end=x&step=1
query_range?query=up&end=2&step=1
query_range?query=up&start=1&end=2
query_range?query=up&start=1&end=2&step=x
query_range?query=up&start=1&end=2&step=0
query_range?query=up&start=1&end=2&step=-1
query_range?query=up&start=3&end=2&step=1
query_range?query=up&start=3&end=2&step=x
query_range?query=up&start=1&end=200000&step=1
query_range?query=sum(&start=1&end=200000&step=1
query_range?query=up&start=1&end=200000&step=1&timeout=x
query_range?query=sum(&start=1&end=2&step=1&timeout=x
series
series?start=1
series?match[]=up&start=abc
series?match[]=up&end=abc
series?match[]=up&timeout=x
labels?start=abc
labels?end=abc
labels?timeout=x
label/job/values?start=abc
label/job/values?end=x
label/1bad/values
query_exemplars?query=up(
query_exemplars?query=up&start=abc
query_exemplars?query=up&start=2&end=1
query_exemplars?query=up&timeout=x
REQ

# match[] values, each sent to series, labels and label/job/values
my @MATCH = (split(/\n/, <<'MATCH'), '', ' ', "# c\nup", "up\n{");
rate(up[5m])
sum(up)
{}
{a=""}
{a=~".*"}
up[5m]
up offset 5m
{a="b"} offset 5m
up @ 5
up{a="b"
up{a="b"} or up
up{a="b"}{c="d"}
up{a="b" b="c"}
up{a}
up{a="\z"}
a-b
-up
(up)
"str"
1
inf
nan
bool
on
ignoring
group_left
group_right
atan2
up{__name__="x"}
{__name__="up"}
up{}
up{a="b",}
offset
and
or
unless
by
without
start
end
sum
topk
count_values
rate
:foo
up:1
up # c
MATCH

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
tsdb_zone main:32m path=$TEST_NGINX_DATA_DIR/main;
CONF
    config => <<'CONF');
location /api/v1/ {
    tsdb_query main;
}
CONF

$srv->start;

my ($ppid, $pport) = prometheus($srv, 'prometheus', "global: {}\n");

END {
    prometheus_stop($ppid) if $ppid;
}

my @paths = map { "/api/v1/$_" } @REQUESTS;

for my $m (@MATCH) {
    push @paths, map { "/api/v1/$_?match[]=" . uri_escape($m) }
                 qw(series labels label/job/values);
}

my ($same, @bad) = (0);

for my $p (@paths) {
    my $res = $srv->request("GET $p");
    my $n = ($res->{status} // 0) . ' ' . ($res->{body} // '');
    my $raw = eval { Test::Nginx::Tsdb::Server::exchange('127.0.0.1', $pport,
                         "GET $p HTTP/1.0\r\n\r\n", 60, 0) };
    my $e = $raw ? ($raw->{status} // 0) . ' ' . ($raw->{body} // '') : '';

    if ($n eq $e) {
        $same++;
    } else {
        push @bad, "$p\n  ngx_tsdb:   $n\n  prometheus: $e";
    }
}

diag(join "\n", @bad) if @bad;
note("$same of " . scalar(@paths) . ' answers identical to Prometheus 2.42');

cmp_ok(scalar @paths, '>=', 180, 'the corpus has its requests');
is($same, scalar @paths, 'every answer identical to Prometheus 2.42');

$srv->no_errors_ok('no errors in the log');
