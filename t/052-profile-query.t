# tsdb_profile_query against the real peers.  The Go 1.19 fixtures and
# CPU and heap profiles a Go program writes here (t/050's program) go in
# through /ingest; then:
#  1. `go tool pprof -top URL` on /pyroscope/pprof prints the same totals
#     and per-function flat/cum lines as over the original files given
#     together, for four profile types;
#  2. /pyroscope/render's flamebearer agrees with that export: numTicks
#     is its total, self summed per name is its flat per function, the
#     timeline sums to numTicks; maxNodes folds nodes into "other"
#     without losing ticks;
#  3. the querier.v1 Connect endpoints answer in protojson and in
#     protobuf (requests encoded, answers decoded by protoc, the
#     reference implementation) with the same content, and
#     SelectMergeProfile's pprof prints as /pyroscope/pprof does;
#  4. /pyroscope/labels and label-values take query=TYPE{...} with the
#     type id selecting __profile_type__ as Pyroscope's do; Connect
#     requests with Content-Encoding: gzip answer as plain ones;
#     SelectMergeProfile's max_nodes cuts the pprof as Pyroscope does:
#     same totals, the cut stacks ending in "other";
#  5. bad queries get 4xx with one-line reasons; tenants stay apart.

use strict;
use warnings;

use lib 't/lib';
use File::Temp qw(tempdir);
use IO::Compress::Gzip;
use IPC::Open3 qw(open3);
use JSON::PP;
use Symbol qw(gensym);
use Test::More;
use Test::Nginx::Tsdb;

my $go = `command -v go 2>/dev/null`;
my $protoc = `command -v protoc 2>/dev/null`;
chomp($go, $protoc);

plan tests => 2 + 4 * 2 + 4 * 5 + 4 + 17 + 12 + 6 + 3;

ok($go ne '', 'go is installed (Debian golang-go, see .ci/deps)')
    or BAIL_OUT('go not found: apt-get install golang-go');
ok($protoc ne '', 'protoc is installed (Debian protobuf-compiler)')
    or BAIL_OUT('protoc not found: apt-get install protobuf-compiler');

my $tmp = tempdir('profile-query-XXXXXX', TMPDIR => 1, CLEANUP => 1);
local $ENV{GOCACHE} = "$tmp/gocache";
local $ENV{GOPATH} = "$tmp/gopath";
local $ENV{HOME} = $tmp;
local $ENV{GOFLAGS} = '';
local $ENV{GOPROXY} = 'off';
local $ENV{GO111MODULE} = 'off';
local $ENV{PPROF_TMPDIR} = $tmp;

sub slurp {
    my ($f) = @_;
    local (@ARGV, $/) = ($f);
    return scalar <>;
}

# t/050's Go program (its data block) writes <prefix>-cpu/-heap.pb.gz
my ($prog) = slurp('t/050-pprof-merge.t') =~ /^__DATA__\n(.*)\z/ms;
open my $fh, '>', "$tmp/prog.go" or die "$tmp/prog.go: $!";
print $fh $prog;
close $fh;

system('go', 'build', '-o', "$tmp/prog", "$tmp/prog.go") == 0
    && system("$tmp/prog", "$tmp/a", 2) == 0
    && system("$tmp/prog", "$tmp/b", 1) == 0
    or BAIL_OUT('the Go program did not build or run');

my @cpu = ('t/data/pprof/cpu1.pb.gz', 't/data/pprof/cpu2.pb.gz',
           "$tmp/a-cpu.pb.gz", "$tmp/b-cpu.pb.gz");
my @heap = ('t/data/pprof/heap1.pb.gz', "$tmp/a-heap.pb.gz",
            "$tmp/b-heap.pb.gz");

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
client_max_body_size 16m;
client_body_buffer_size 1m;
tsdb_zone main:16m path=$TEST_NGINX_DATA_DIR/main thread_pool=default;
CONF
    config => <<'CONF');
location /pyroscope/ingest {
    tsdb_profile_ingest main;
}
location /pyroscope/ {
    tsdb_profile_query main;
}
location /querier.v1.QuerierService/ {
    tsdb_profile_query main;
}
CONF

$srv->start;

my $port = $srv->port;
my $base = "http://127.0.0.1:$port";
my $now = time;
my ($from, $until) = ($now - 2 * 86400, $now + 2 * 86400);

sub ingest {
    my ($query, $body, @h) = @_;
    my $res = $srv->request("POST /pyroscope/ingest?$query",
                            headers => [ @h ], body => $body);
    return $res->{status} // 0;
}

# every profile in, half of them as multipart as pyroscope-go sends
my $bd = 'pqueryBoundary';
my $n = 0;
my $stored = 0;

for my $f (@cpu, @heap) {
    my $q = "name=myapp%7Benv%3Dprod%7D&from=$now&spyName=gospy";

    if ($n++ % 2) {
        $stored += ingest($q, "--$bd\r\nContent-Disposition: form-data;"
                              . " name=\"profile\"; filename=\"p\"\r\n\r\n"
                              . slurp($f) . "\r\n--$bd--\r\n",
                          [ 'Content-Type',
                            "multipart/form-data; boundary=$bd" ]) == 200;
    } else {
        $stored += ingest("$q&format=pprof", slurp($f)) == 200;
    }
}

# another service and another tenant, which no query below may mix in
$stored += ingest("name=fold.cpu&format=folded&from=$now",
                  "main;spin 70\nmain;idle 30\n") == 200;
$stored += ingest("name=myapp&format=pprof&from=$now", slurp($cpu[0]),
                  [ 'X-Scope-OrgID', 'other' ]) == 200;

BAIL_OUT("only $stored of 9 profiles stored") unless $stored == 9;


# 1. go tool pprof on the export against the originals

sub pprof_top {
    my ($opts, @src) = @_;
    my @out = `go tool pprof -top -nodecount=1000000 -nodefraction=0 \\
               -edgefraction=0 $opts @src 2>&1`;
    my ($total) = grep { /^Showing nodes accounting for/ } @out;
    my @nodes = grep { /^\s*-?[\d.]+\w*\s+[\d.]+%/ } @out;

    return ($total // "no totals in:\n@out", \@nodes);
}

sub q_esc {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

my @cases = (
    [ 'process_cpu:cpu:nanoseconds:cpu:nanoseconds', 'cpu', 'ns', @cpu ],
    [ 'process_cpu:samples:count:cpu:nanoseconds', 'samples', '', @cpu ],
    [ 'memory:inuse_space:bytes:space:bytes', 'inuse_space', 'B', @heap ],
    [ 'memory:alloc_objects:count:space:bytes', 'alloc_objects', '',
      @heap ],
);

my %query;

for my $c (@cases) {
    my ($type, $index, $unit, @files) = @$c;
    my $sel = q_esc("$type\{service_name=\"myapp\"}");
    my $url = "$base/pyroscope/pprof?query=$sel&from=$from&until=$until";
    $query{$type} = "query=$sel&from=$from&until=$until";

    my ($want_total, $want) = pprof_top("-sample_index=$index", @files);
    my ($got_total, $got) = pprof_top('', "'$url'");

    is($got_total, $want_total, "$type: go tool pprof on the URL, same"
       . " totals");
    is_deeply($got, $want, "$type: same flat/cum per function ("
              . scalar(@$want) . ' lines)')
        or diag("want:\n@$want\ngot:\n@$got");
}


# 2. the flamebearer against the export

# flat per function and the total, as integers (-unit)
sub flat {
    my ($unit, $src) = @_;
    my $u = $unit ? "-unit=$unit" : '';
    my @out = `go tool pprof -top -nodecount=1000000 -nodefraction=0 $u \\
               '$src' 2>&1`;
    my ($total) = map { /of (\d+)\w* total/ ? $1 : () } @out;
    my %flat;

    for (@out) {
        next unless /^\s*(\d+)[a-zA-Z]*\s+[\d.]+%\s+[\d.]+%\s+\d+[a-zA-Z]*
                     \s+[\d.]+%\s+(.+?)\s*$/x;
        my ($v, $name) = ($1, $2);
        $name =~ s/ \(inline\)$//;
        $flat{$name} += $v if $v > 0;
    }

    return ($total, \%flat);
}

# self per name, node count, and whether children lie inside parents
sub flame_self {
    my ($fb) = @_;
    my (%self, @prev, $nodes, $inside);
    $inside = 1;

    for my $l (@{ $fb->{levels} }) {
        my ($x, @cur) = (0);

        for (my $i = 0; $i < @$l; $i += 4) {
            my ($dx, $total, $s, $name) = @$l[$i .. $i + 3];
            $x += $dx;
            push @cur, [ $x, $total ];
            $self{ $fb->{names}[$name] } += $s if $s;
            $nodes++;

            if (@prev) {
                my ($p) = grep { $_->[0] <= $x } reverse @prev;
                $inside = 0 unless $p && $x + $total <= $p->[0] + $p->[1];
            }

            $x += $total;
        }

        @prev = @cur;
    }

    return (\%self, $nodes, $inside);
}

my %ticks;
my %render;

for my $c (@cases) {
    my ($type, $index, $unit) = @$c;
    my $res = $srv->request("GET /pyroscope/render?$query{$type}");
    my $j = eval { decode_json($res->{body}) } // {};
    my $fb = $j->{flamebearer} // {};
    my ($total, $flat) = flat($unit, "$base/pyroscope/pprof?$query{$type}");
    my ($self) = flame_self($fb);
    my $tl = 0;

    $tl += $_ for @{ $j->{timeline}{samples} // [] };
    delete $self->{other};
    $ticks{$type} = $fb->{numTicks};
    $render{$type} = $fb;

    is($res->{status}, 200, "$type: render 200");
    is($fb->{numTicks}, $total, "$type: numTicks $total is the pprof total");
    is_deeply($self, $flat, "$type: self per name is flat per function ("
              . scalar(keys %$flat) . ' functions)');
    is($tl, $fb->{numTicks}, "$type: the timeline sums to numTicks"
       . " (step $j->{timeline}{durationDelta} s)");
    is($j->{metadata}{format} . ' ' . $j->{metadata}{spyName},
       'single gospy', "$type: metadata format and spyName");
}

{
    my $type = $cases[0][0];
    my $res = $srv->request("GET /pyroscope/render?$query{$type}"
                            . '&maxNodes=12');
    my $fb = (eval { decode_json($res->{body}) } // {})->{flamebearer};
    my ($self, $nodes, $inside) = flame_self($fb);
    my ($all, $all_nodes) = flame_self($render{$type});
    my $sum = 0;

    $sum += $_ for values %$self;

    ok(exists $self->{other} && $nodes < $all_nodes,
       "maxNodes=12: $nodes nodes instead of $all_nodes, with \"other\"");
    is($fb->{numTicks}, $ticks{$type}, 'maxNodes=12: the same numTicks');
    is($sum, $fb->{numTicks}, 'maxNodes=12: self values sum to numTicks');
    ok($inside, 'maxNodes=12: every node lies within its parent');
}


# 3. Connect, JSON and proto

sub run_protoc {
    my ($mode, $msg, $in) = @_;
    my $err = gensym;
    my $pid = open3(my $w, my $r, $err, $protoc, "--$mode=$msg", '-Iproto',
                    'proto/pyroscope_querier.proto',
                    'proto/pyroscope_types.proto');
    binmode $_ for $w, $r;
    print $w $in;
    close $w;
    my $out = do { local $/; <$r> };
    waitpid $pid, 0;
    return $out;
}

sub connect_call {
    my ($method, $req_type, $text, $json, @h) = @_;
    my $u = "POST /querier.v1.QuerierService/$method";
    my $rj = $srv->request($u, body => $json,
                           headers => [ [ 'Content-Type', 'application/json' ],
                                        @h ]);
    my $rp = $srv->request($u, body => run_protoc('encode', $req_type, $text),
                           headers => [ [ 'Content-Type',
                                          'application/proto' ], @h ]);
    return ($rj, $rp);
}

my $ms = ($now - 2 * 86400) * 1000;
my $me = ($now + 2 * 86400) * 1000;
my ($rj, $rp, $j, $t, $res, $err, @names);

($rj, $rp) = connect_call('ProfileTypes', 'querier.v1.ProfileTypesRequest',
                          "start: $ms end: $me",
                          qq({"start":"$ms","end":"$me"}));
$j = eval { decode_json($rj->{body}) } // {};
my @ids = map { $_->{ID} } @{ $j->{profileTypes} // [] };
$t = run_protoc('decode', 'querier.v1.ProfileTypesResponse', $rp->{body});
my @pids = $t =~ /ID: "([^"]+)"/g;
my $legacy = decode_json($srv->request('GET /pyroscope/label-values?'
                         . "label=__name__&from=$from&until=$until")->{body});

ok(@ids == 6 && (grep { $_ eq $cases[2][0] } @ids),
   'ProfileTypes JSON: ' . scalar(@ids) . ' types');
is_deeply(\@pids, \@ids, 'ProfileTypes proto: the same ids');
is_deeply($legacy, \@ids, 'label-values?label=__name__: the same ids');

($rj, $rp) = connect_call('LabelValues', 'types.v1.LabelValuesRequest',
                          qq(name: "service_name" start: $ms end: $me),
                          qq({"name":"service_name","start":"$ms",)
                          . qq("end":"$me"}));
$j = eval { decode_json($rj->{body}) } // {};
@names = run_protoc('decode', 'types.v1.LabelValuesResponse', $rp->{body})
         =~ /names: "([^"]+)"/g;
is_deeply($j->{names}, [ 'fold', 'myapp' ], 'LabelValues JSON');
is_deeply(\@names, [ 'fold', 'myapp' ], 'LabelValues proto');

($rj, $rp) = connect_call('LabelNames', 'types.v1.LabelNamesRequest',
                          qq(matchers: '{service_name="myapp"}'),
                          q({"matchers":["{service_name=\"myapp\"}"]}));
$j = eval { decode_json($rj->{body}) } // {};
@names = run_protoc('decode', 'types.v1.LabelNamesResponse', $rp->{body})
         =~ /names: "([^"]+)"/g;
is_deeply($j->{names}, [ qw(__name__ __profile_type__ env pyroscope_spy
                            service_name) ], 'LabelNames JSON, matchers');
is_deeply(\@names, $j->{names}, 'LabelNames proto');

my $cputype = $cases[0][0];
($rj, $rp) = connect_call('SelectMergeStacktraces',
    'querier.v1.SelectMergeStacktracesRequest',
    qq(profile_typeID: "$cputype" label_selector: '{service_name="myapp"}')
    . " start: $ms end: $me",
    qq({"profileTypeID":"$cputype","labelSelector":)
    . qq("{service_name=\\"myapp\\"}","start":"$ms","end":"$me"}));
$j = (eval { decode_json($rj->{body}) } // {})->{flamegraph} // {};
is($j->{total}, $ticks{$cputype}, 'SelectMergeStacktraces JSON: total'
   . ' is the render numTicks');
is_deeply([ map { [ map { 0 + $_ } @{ $_->{values} } ] } @{ $j->{levels} } ],
          $render{$cputype}{levels},
          'SelectMergeStacktraces JSON: the render levels');
$t = run_protoc('decode', 'querier.v1.SelectMergeStacktracesResponse',
                $rp->{body});
@names = map { s/\\(.)/$1/gr } $t =~ /^\s*names: "((?:[^"\\]|\\.)*)"/mg;
is_deeply(\@names, $render{$cputype}{names},
          'SelectMergeStacktraces proto: the render names');
is(($t =~ /^\s*total: (\d+)/m)[0], $ticks{$cputype},
   'SelectMergeStacktraces proto: total');

($rj, $rp) = connect_call('SelectSeries', 'querier.v1.SelectSeriesRequest',
    qq(profile_typeID: "$cputype" label_selector: "{}" start: $ms)
    . qq( end: $me step: 60 group_by: "service_name"),
    qq({"profileTypeID":"$cputype","labelSelector":"{}","start":"$ms",)
    . qq("end":"$me","step":60,"groupBy":["service_name"]}));
$j = eval { decode_json($rj->{body}) } // {};
my %sum;
for my $s (@{ $j->{series} // [] }) {
    $sum{ $s->{labels}[0]{value} } += $_->{value} for @{ $s->{points} };
}
is_deeply(\%sum, { myapp => $ticks{$cputype}, fold => 1e9 },
          'SelectSeries JSON: per service, points sum to the totals');
$t = run_protoc('decode', 'querier.v1.SelectSeriesResponse', $rp->{body});
my @v = $t =~ /value: ([\d.e+]+)/g;
my $vs = 0;
$vs += $_ for @v;
is($vs, $ticks{$cputype} + 1e9, 'SelectSeries proto: the same sum');

my $mp = qq(profile_typeID: "$cputype" label_selector: '{env="prod"}')
         . " start: $ms end: $me";
($rj, $rp) = connect_call('SelectMergeProfile',
    'querier.v1.SelectMergeProfileRequest', $mp,
    qq({"profileTypeID":"$cputype","labelSelector":"{env=\\"prod\\"}",)
    . qq("start":"$ms","end":"$me"}));
open $fh, '>', "$tmp/smp.pb" or die;
binmode $fh;
print $fh $rp->{body};
close $fh;
my ($want_total, $want) = pprof_top('', "'$base/pyroscope/pprof?"
                                        . "$query{$cputype}'");
my ($got_total, $got) = pprof_top('', "$tmp/smp.pb");
is($got_total, $want_total, 'SelectMergeProfile proto: go tool pprof'
   . ' totals as /pyroscope/pprof');
is_deeply($got, $want, 'SelectMergeProfile proto: the same lines');
$j = eval { decode_json($rj->{body}) } // {};
my $js = 0;
$js += $_->{value}[0] for @{ $j->{sample} // [] };
is($js, $ticks{$cputype}, 'SelectMergeProfile JSON: samples sum to the'
   . ' total');
like($rp->{headers}{'content-type'} . ' ' . $rj->{headers}{'content-type'},
     qr{^application/proto application/json}, 'Connect content types');

# max_nodes 8: the cut profile, as go tool pprof prints it
($rj, $rp) = connect_call('SelectMergeProfile',
    'querier.v1.SelectMergeProfileRequest', "$mp max_nodes: 8",
    qq({"profileTypeID":"$cputype","labelSelector":"{env=\\"prod\\"}",)
    . qq("start":"$ms","end":"$me","maxNodes":"8"}));
open $fh, '>', "$tmp/smp8.pb" or die;
binmode $fh;
print $fh $rp->{body};
close $fh;
my ($cut_total, $cut) = pprof_top('', "$tmp/smp8.pb");
is($cut_total, $want_total, 'SelectMergeProfile max_nodes 8: go tool pprof'
   . ' totals unchanged');
ok(@$cut < @$want && (grep { /\sother$/ } @$cut),
   'max_nodes 8: ' . scalar(@$cut) . ' of ' . scalar(@$want) . ' function'
   . ' lines, the cut stacks ending in "other"')
    or diag("@$cut");
$j = eval { decode_json($rj->{body}) } // {};
$js = 0;
$js += $_->{value}[0] for @{ $j->{sample} // [] };
is($js, $ticks{$cputype}, 'max_nodes 8, JSON: samples still sum to the'
   . ' total');


# 4. labels and label-values with a profile type query; gzip requests

sub legacy_list {
    my ($what, $q) = @_;
    my $res = $srv->request("GET /pyroscope/$what&query=" . q_esc($q)
                            . "&from=$from&until=$until");
    return eval { decode_json($res->{body}) } // [ "$res->{status}"
                                                   . " $res->{body}" ];
}

my $memtype = $cases[2][0];
is_deeply(legacy_list('label-values?label=service_name', "$memtype\{}"),
          [ 'myapp' ], 'label-values?query=memory type: only myapp (fold'
          . ' has CPU profiles only)');
is_deeply(legacy_list('label-values?label=service_name', "$cputype\{}"),
          [ 'fold', 'myapp' ], 'label-values?query=CPU type: both');
is_deeply(legacy_list('labels?x=1', "$cputype\{service_name=\"fold\"}"),
          [ qw(__name__ __profile_type__ pyroscope_spy service_name) ],
          'labels?query=TYPE{service_name="fold"}: fold\'s names, no env');

my $smsj = qq({"profileTypeID":"$cputype","labelSelector":)
           . qq("{service_name=\\"myapp\\"}","start":"$ms","end":"$me"});
my $smsp = run_protoc('encode', 'querier.v1.SelectMergeStacktracesRequest',
    qq(profile_typeID: "$cputype" label_selector: '{service_name="myapp"}')
    . " start: $ms end: $me");
my ($gzj, $gzp);
IO::Compress::Gzip::gzip(\$smsj => \$gzj) or die;
IO::Compress::Gzip::gzip(\$smsp => \$gzp) or die;
my $u = 'POST /querier.v1.QuerierService/SelectMergeStacktraces';

$res = $srv->request($u, body => $gzj, headers => [
    [ 'Content-Type', 'application/json' ], [ 'Content-Encoding', 'gzip' ] ]);
$j = (eval { decode_json($res->{body}) } // {})->{flamegraph} // {};
is($j->{total}, $ticks{$cputype}, 'a gzip JSON Connect request: the total'
   . " of the plain one ($res->{status})");
$res = $srv->request($u, body => $gzp, headers => [
    [ 'Content-Type', 'application/proto' ], [ 'Content-Encoding', 'gzip' ] ]);
$t = run_protoc('decode', 'querier.v1.SelectMergeStacktracesResponse',
                $res->{body});
is(($t =~ /^\s*total: (\d+)/m)[0], $ticks{$cputype},
   "a gzip proto Connect request: the same total ($res->{status})");
$res = $srv->request($u, body => substr($gzj, 0, 20), headers => [
    [ 'Content-Type', 'application/json' ], [ 'Content-Encoding', 'gzip' ] ]);
$err = eval { decode_json($res->{body}) } // {};
my $res2 = $srv->request($u, body => $smsj, headers => [
    [ 'Content-Type', 'application/json' ], [ 'Content-Encoding', 'br' ] ]);
my $err2 = eval { decode_json($res2->{body}) } // {};
ok($res->{status} == 400 && ($err->{code} // '') eq 'invalid_argument'
   && $res2->{status} == 415 && ($err2->{code} // '') eq 'unimplemented',
   'a truncated gzip body: 400 invalid_argument ("'
   . ($err->{message} // '') . '"); br: 415 unimplemented ("'
   . ($err2->{message} // '') . '")');


# 5. refusals and tenants

my @bad = (
    [ 'render without query', 'GET /pyroscope/render?from=now-1h', 400,
      qr/^'query' is required$/ ],
    [ 'a selector that does not parse',
      'GET /pyroscope/render?query=' . q_esc('x:y:z:a:b{service_name=}'),
      400, qr/^failed to parse selector: / ],
    [ 'no profile type', 'GET /pyroscope/render?query='
      . q_esc('{service_name="myapp"}'), 400,
      qr/must contain a profile-type selection/ ],
    [ 'a bad from', 'GET /pyroscope/pprof?query=a:b:c:d:e&from=yesterday',
      400, qr/^invalid "from": "yesterday"$/ ],
    [ 'label-values without label', 'GET /pyroscope/label-values', 400,
      qr/^label parameter is required$/ ],
    [ 'an unknown endpoint', 'GET /pyroscope/nothing', 404, qr/unknown/ ],
);

for my $b (@bad) {
    my ($name, $req, $status, $re) = @$b;
    my $res = $srv->request($req);
    my $body = $res->{body} // '';
    chomp $body;
    ok(($res->{status} // 0) == $status && $body =~ $re,
       "$name: $status \"$body\"");
}

$res = $srv->request('POST /querier.v1.QuerierService/SelectSeries',
    body => q|{"profileTypeID":"a:b:c:d:e","labelSelector":"{x=~\"(\"}",|
            . q|"start":"1","end":"2","step":1}|,
    headers => [ [ 'Content-Type', 'application/json' ] ]);
$err = eval { decode_json($res->{body}) } // {};
ok($res->{status} == 400 && $err->{code} eq 'invalid_argument'
   && $err->{message} =~ /selector/,
   "Connect, a bad regex: 400 invalid_argument ($err->{message})");

$res = $srv->request('POST /querier.v1.QuerierService/ProfileTypes',
    body => '{"start":', headers => [ [ 'Content-Type',
                                        'application/json' ] ]);
$err = eval { decode_json($res->{body}) } // {};
ok($res->{status} == 400 && ($err->{message} // '') =~ /invalid JSON/,
   "Connect, truncated JSON: 400 ($err->{message})");

$res = $srv->request('POST /querier.v1.QuerierService/SelectMergeProfile',
    body => qq({"profileTypeID":"$cases[0][0]","labelSelector":"{}",)
            . q("stackTraceSelector":{"callSite":[{"name":"main"}]}}),
    headers => [ [ 'Content-Type', 'application/json' ] ]);
$err = eval { decode_json($res->{body}) } // {};
ok($res->{status} == 501 && $err->{code} eq 'unimplemented',
   "Connect, a stack trace selector: 501 unimplemented, not ignored"
   . " ($err->{message})");

# the other tenant sees its one profile and nothing else
($rj) = connect_call('ProfileTypes', 'querier.v1.ProfileTypesRequest', '',
                     '{}', [ 'X-Scope-OrgID', 'other' ]);
$j = eval { decode_json($rj->{body}) } // {};
is(scalar @{ $j->{profileTypes} // [] }, 2, 'tenant "other": 2 types');

$res = $srv->request("GET /pyroscope/render?$query{$cputype}",
                     headers => [ [ 'X-Scope-OrgID', 'other' ] ]);
my ($one) = flat('ns', $cpu[0]);
is((eval { decode_json($res->{body}) } // {})->{flamebearer}{numTicks},
   $one, 'tenant "other": numTicks of cpu1 alone');

$srv->no_errors_ok('no [error]/[alert] in the log');
