# tsdb_profile_ingest: Pyroscope's Connect push API,
# POST /push.v1.PusherService/Push, against the real nginx.  Requests are
# encoded with protoc (binary) and JSON::PP (protojson), plain and with
# Content-Encoding: gzip; the profiles are the Go fixtures and profiles a
# Go program generates here with pprof labels.  What lands in the store
# is read back with build/pstore-dump: `go tool pprof -top` over the
# merged export prints what it prints over the originals; pprof labels
# become series labels.  Then the same profiles go into one service
# through both APIs, /ingest and Push, and `go tool pprof -top` on the
# HTTP URL /pyroscope/pprof prints what it prints over the originals
# given together (each as often as it was pushed).  Bad requests get
# Connect error JSON with the right status and change nothing.  Many
# requests at once (which the worker's group commit stores in shared
# transactions) are all stored, each answered 200, while a bad one
# among them, which fails only in the store, alone gets its 400.

use strict;
use warnings;

use lib 't/lib';
use File::Temp qw(tempdir);
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Select;
use IO::Socket::INET;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use Test::More;
use Test::Nginx::Tsdb;

my $dump = $ENV{TSDB_PSTORE_DUMP} || 'build/pstore-dump';
my $go = `command -v go 2>/dev/null`;
my $protoc = `command -v protoc 2>/dev/null`;
chomp($go, $protoc);

plan tests => 40 + 2 * 4 + 4;

ok(-x $dump || system('make', '-s', $dump) == 0, "$dump built")
    or BAIL_OUT("cannot build $dump");

my $tmp = tempdir('profile-push-XXXXXX', TMPDIR => 1, CLEANUP => 1);
local $ENV{GOCACHE} = "$tmp/gocache";
local $ENV{GOFLAGS} = '-mod=mod';
local $ENV{GO111MODULE} = 'off';
local $ENV{HOME} = $tmp;
local $ENV{PPROF_TMPDIR} = $tmp;

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
client_max_body_size 32m;
client_body_buffer_size 1m;
tsdb_zone main:16m path=$TEST_NGINX_DATA_DIR/main thread_pool=default
          retention=3650d;
CONF
    config => <<'CONF');
location / {
    tsdb_profile_ingest main;
}
location /pyroscope/ {
    tsdb_profile_query main;
}
CONF

sub slurp {
    my ($f) = @_;
    local (@ARGV, $/) = ($f);
    return scalar <>;
}

sub gz {
    my ($in) = @_;
    my $out;
    gzip(\$in => \$out) or die $GzipError;
    return $out;
}

sub gunz {
    my ($in) = @_;
    my $out;
    gunzip(\$in => \$out) or die $GunzipError;
    return $out;
}

# series: [ [ labels as [name, value]... ], [ raw profiles... ] ]...

sub push_json {
    my (@series) = @_;
    return JSON::PP->new->canonical->encode({ series => [ map { {
        labels => [ map { { name => $_->[0], value => $_->[1] } }
                    @{ $_->[0] } ],
        samples => [ map { { rawProfile => encode_base64($_, ''),
                             ID => sprintf('%08x', $_ =~ tr/\0//) } }
                     @{ $_->[1] } ],
    } } @series ] });
}

sub pb_str {
    my ($s) = @_;
    return '"' . join('', map { sprintf('\\%03o', ord) } split //, $s) . '"';
}

sub push_proto {
    my (@series) = @_;
    my $text = '';

    for my $s (@series) {
        $text .= "series {\n";
        $text .= '  labels { name: ' . pb_str($_->[0]) . ' value: '
                 . pb_str($_->[1]) . " }\n" for @{ $s->[0] };
        $text .= '  samples { raw_profile: ' . pb_str($_)
                 . " ID: \"x\" }\n" for @{ $s->[1] };
        $text .= "}\n";
    }

    open(my $fh, '>', "$tmp/req.txt") or die;
    print $fh $text;
    close $fh;

    my $bin = `protoc -Iproto --encode=push.v1.PushRequest \\
               proto/pyroscope_push.proto < $tmp/req.txt`;
    die "protoc failed" if $?;
    return $bin;
}

sub ppush {
    my ($type, $body, @headers) = @_;
    my $res = $srv->request('POST /push.v1.PusherService/Push',
        headers => [ [ 'Content-Type', $type ], @headers ], body => $body);
    return ($res->{status} // 0, $res->{body} // '',
            $res->{headers}{'content-type'} // '');
}

sub labels {
    my ($svc, $env) = @_;
    return [ [ '__name__', 'process_cpu' ], [ 'service_name', $svc ],
             [ 'env', $env ] ];
}

my $cpu1 = slurp('/work/shared/fixtures/pprof/go-1.19/cpu1.pb.gz');
my $cpu2 = slurp('/work/shared/fixtures/pprof/go-1.19/cpu2.pb.gz');
my $heap = slurp('/work/shared/fixtures/pprof/go-1.19/heap1.pb.gz');

# profiles generated here: CPU time under two pprof label sets and
# none, and the allocations
my ($gencpu, $genheap) = ("$tmp/gen-cpu.pb.gz", "$tmp/gen-heap.pb.gz");

SKIP: {
    skip 'go not installed', 1 if $go eq '';

    open(my $fh, '>', "$tmp/gen.go") or die;
    print $fh <<'GO';
package main

import (
    "context"
    "os"
    "runtime/pprof"
    "time"
)

var sink []byte

func spin(d time.Duration) int {
    x := 0
    for end := time.Now().Add(d); time.Now().Before(end); {
        for i := 0; i < 100000; i++ {
            x += i * i
        }
        sink = make([]byte, 1024)
    }
    return x
}

func main() {
    f, _ := os.Create(os.Args[1])
    pprof.StartCPUProfile(f)
    pprof.Do(context.Background(), pprof.Labels("handler", "/a"),
        func(context.Context) { spin(400 * time.Millisecond) })
    pprof.Do(context.Background(), pprof.Labels("handler", "/b"),
        func(context.Context) { spin(300 * time.Millisecond) })
    spin(200 * time.Millisecond)
    pprof.StopCPUProfile()
    f.Close()
    h, _ := os.Create(os.Args[2])
    pprof.Lookup("allocs").WriteTo(h, 0)
    h.Close()
}
GO
    close $fh;

    my $out = `cd $tmp && go run gen.go $gencpu $genheap 2>&1`;
    ok($? == 0 && -s $gencpu && -s $genheap, 'go generated profiles')
        or diag($out);
}

$srv->start;

my $zone = $srv->data_dir . '/main';

# 1. accepted: proto and JSON, plain and gzip bodies, gzip and plain
# raw profiles
SKIP: {
    skip 'protoc not installed', 4 if $protoc eq '';

    my @r = ppush('application/proto',
                 push_proto([ labels('myapp', 'prod'), [ $cpu1 ] ]));
    ok($r[0] == 200 && $r[1] eq '' && $r[2] eq 'application/proto',
       "proto, gzip pprof: 200, empty PushResponse ($r[0] $r[1])");

    @r = ppush('application/proto',
              gz(push_proto([ labels('myapp', 'prod'), [ gunz($cpu2) ] ])),
              [ 'Content-Encoding', 'gzip' ]);
    is($r[0], 200, "proto gzip body, plain pprof: 200 ($r[1])");

    @r = ppush('application/proto', push_proto(
        [ [ [ '__name__', 'memory' ], [ 'service_name', 'myapp' ],
            [ 'env', 'prod' ] ], [ $heap ] ]));
    is($r[0], 200, "proto, heap pprof: 200 ($r[1])");

    @r = ppush('application/proto', push_proto());
    like($r[1], qr/^\{"code":"invalid_argument","message":"[^\n]+"\}\n$/,
         "proto without series: Connect error ($r[0] $r[1])");
}

my @r;

SKIP: {
    skip 'go not installed', 3 if $go eq '' || !-s $gencpu;

    @r = ppush('application/json', push_json(
        [ labels('goapp', 'test'), [ slurp($gencpu) ] ]));
    ok($r[0] == 200 && $r[1] eq '{}' && $r[2] eq 'application/json',
       "JSON, Go CPU profile: 200 {} ($r[0] $r[1])");

    @r = ppush('application/json; charset=utf-8', gz(push_json(
        [ [ [ '__name__', 'memory' ], [ 'service_name', 'goapp' ],
            [ '__delta__', 'false' ] ], [ gunz(slurp($genheap)) ] ])),
        [ 'Content-Encoding', 'gzip' ]);
    is($r[0], 200, "JSON gzip body, plain Go heap profile: 200 ($r[1])");

    @r = ppush('application/json', push_json(
        [ labels('twice', 'x'), [ $cpu1, $cpu2 ] ],
        [ labels('twice', 'y'), [ $cpu1 ] ]));
    is($r[0], 200, "JSON, 2 series with 3 profiles: 200 ($r[1])");
}

my $series = `$dump $zone 2>&1`;
is($?, 0, 'pstore-dump lists series') or diag($series);

sub rows {
    my ($type, @want) = @_;
    my $n = 0;

    LINE: for (split /\n/, $series) {
        next unless /__profile_type__="\Q$type\E"/;
        for my $w (@want) {
            next LINE unless /\b\Q$w\E/;
        }
        $n += /rows=(\d+)/ ? $1 : 0;
    }

    return $n;
}

is(rows('process_cpu:cpu:nanoseconds:cpu:nanoseconds',
        'service_name="myapp"'), 2,
   'a Go CPU pprof pushed as process_cpu/myapp: type'
   . ' process_cpu:cpu:nanoseconds:cpu:nanoseconds, 2 rows');
is(rows('process_cpu:samples:count:cpu:nanoseconds',
        'service_name="myapp"', 'env="prod"'), 2,
   'and process_cpu:samples:count:cpu:nanoseconds, 2 rows');
is(rows('memory:inuse_space:bytes:space:bytes', 'service_name="myapp"'), 1,
   'heap under memory:inuse_space:bytes:space:bytes');
is(rows('process_cpu:cpu:nanoseconds:cpu:nanoseconds',
        'service_name="twice"'), 3, 'a request with 3 profiles: 3 rows');
unlike($series, qr/__delta__/, 'reserved labels other than __name__ dropped');

# 2. pprof labels split the Go profile into series; nothing is lost
SKIP: {
    skip 'go not installed', 4 if $go eq '' || !-s $gencpu;

    ok(rows('process_cpu:cpu:nanoseconds:cpu:nanoseconds',
            'handler="/a"', 'service_name="goapp"') == 1
       && rows('process_cpu:cpu:nanoseconds:cpu:nanoseconds',
               'handler="/b"', 'service_name="goapp"') == 1,
       'pprof labels handler=/a and /b became series labels')
        or diag($series);
    is(rows('memory:alloc_space:bytes:space:bytes', 'service_name="goapp"'),
       1, 'the Go heap profile under memory:alloc_space');

    # the three series add up to the whole profile
    my $t = 'process_cpu:cpu:nanoseconds:cpu:nanoseconds';
    my %total;

    for my $sel ('handler=/a', 'handler=/b', 'handler=', '') {
        my $f = "$tmp/split.pb.gz";
        unlink $f;
        my $msg = `$dump -o $f $zone $t service_name=goapp $sel 2>&1`;
        my $top = `go tool pprof -top -unit=ns -sample_index=0 $f 2>&1`;
        $total{$sel} = $top =~ /of (\d+)ns total/ ? $1 : 0;
        diag("$sel: $msg$top") unless $total{$sel};
    }

    ok($total{'handler=/a'} > 0 && $total{'handler=/b'} > 0,
       "handler=/a ($total{'handler=/a'} ns) and handler=/b"
       . " ($total{'handler=/b'} ns) select their series");
    is($total{'handler=/a'} + $total{'handler=/b'} + $total{'handler='},
       $total{''}, 'the split series add up to the whole profile');
}

# 3. go tool pprof -top over the store's merge equals the originals'
SKIP: {
    skip 'go not installed', 8 if $go eq '';

    sub top {
        my ($index, @files) = @_;
        my @out = `go tool pprof -top -nodecount=1000000 -nodefraction=0 \\
                   -edgefraction=0 -sample_index=$index @files 2>&1`;
        my ($total) = grep { /^Showing nodes accounting for/ } @out;
        my @nodes = grep { /^\s+-?[\d.]+\w*\s+[\d.]+%/ } @out;
        return ($total // "no totals in:\n@out", \@nodes);
    }

    my $fx = '/work/shared/fixtures/pprof/go-1.19';

    for my $case (
        [ 'process_cpu:cpu:nanoseconds:cpu:nanoseconds', 'cpu', 'myapp',
          "$fx/cpu1.pb.gz", "$fx/cpu2.pb.gz" ],
        [ 'memory:inuse_space:bytes:space:bytes', 'inuse_space', 'myapp',
          "$fx/heap1.pb.gz" ],
        [ 'process_cpu:cpu:nanoseconds:cpu:nanoseconds', 'cpu', 'goapp',
          $gencpu ],
        [ 'memory:alloc_space:bytes:space:bytes', 'alloc_space', 'goapp',
          $genheap ],
    ) {
        my ($type, $index, $svc, @files) = @$case;
        my $out = "$tmp/$svc-$index.pb.gz";
        my $msg = `$dump -o $out $zone $type service_name=$svc 2>&1`;
        my ($want_total, $want) = top($index, @files);
        my ($got_total, $got) = top(0, $out);

        is($got_total, $want_total, "$svc $type: same totals")
            or diag($msg);
        is_deeply($got, $want, "$svc $type: same flat/cum per function ("
                  . scalar(@$want) . ' lines)')
            or diag("want:\n@$want\ngot:\n@$got");
    }
}

# 5. both ingest APIs into one service, read back over HTTP: go tool
# pprof on /pyroscope/pprof equals go tool pprof over the originals,
# each given as often as it was pushed
SKIP: {
    skip 'go or protoc not installed', 2 * 4
        if $go eq '' || $protoc eq '' || !-s $gencpu;

    my $fx = '/work/shared/fixtures/pprof/go-1.19';
    my $now = time;
    my $ok = 1;

    sub ingest {
        my ($q, $body) = @_;
        my $res = $srv->request("POST /ingest?$q", body => $body);
        return $res->{status} // 0;
    }

    my $cpu_q = "name=both%7Benv%3De2e%7D&format=pprof&from=$now";
    my $mem = [ [ '__name__', 'memory' ], [ 'service_name', 'both' ],
                [ 'env', 'e2e' ] ];

    # CPU: cpu1 by /ingest, cpu2 by Push (protobuf), the Go profile by
    # both (/ingest, then Push in protojson); heap: heap1 by Push, the
    # Go allocations by /ingest
    $ok &&= ingest($cpu_q, $cpu1) == 200;
    $ok &&= (ppush('application/proto',
                   push_proto([ labels('both', 'e2e'), [ $cpu2 ] ])))[0]
            == 200;
    $ok &&= ingest($cpu_q, slurp($gencpu)) == 200;
    $ok &&= (ppush('application/json',
                   push_json([ labels('both', 'e2e'),
                               [ slurp($gencpu) ] ])))[0] == 200;
    $ok &&= (ppush('application/proto',
                   push_proto([ $mem, [ $heap ] ])))[0] == 200;
    $ok &&= ingest("name=both%7Benv%3De2e%7D&format=pprof&from=$now",
                   slurp($genheap)) == 200;
    BAIL_OUT('a profile of section 5 was refused') unless $ok;

    my $port = $srv->port;
    my ($from, $until) = ($now - 3650 * 86400, $now + 86400);

    for my $case (
        [ 'process_cpu:cpu:nanoseconds:cpu:nanoseconds', 'cpu',
          "$fx/cpu1.pb.gz", "$fx/cpu2.pb.gz", $gencpu, $gencpu ],
        [ 'process_cpu:samples:count:cpu:nanoseconds', 'samples',
          "$fx/cpu1.pb.gz", "$fx/cpu2.pb.gz", $gencpu, $gencpu ],
        [ 'memory:inuse_space:bytes:space:bytes', 'inuse_space',
          "$fx/heap1.pb.gz", $genheap ],
        [ 'memory:alloc_objects:count:space:bytes', 'alloc_objects',
          "$fx/heap1.pb.gz", $genheap ],
    ) {
        my ($type, $index, @files) = @$case;
        my $sel = "$type\{service_name=\"both\"}";
        $sel =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge;
        my $url = "'http://127.0.0.1:$port/pyroscope/pprof?query=$sel"
                  . "&from=$from&until=$until'";
        my ($want_total, $want) = top($index, @files);
        my ($got_total, $got) = top(0, $url);

        is($got_total, $want_total, "both APIs, $type: go tool pprof on"
           . " /pyroscope/pprof, same totals");
        is_deeply($got, $want, "both APIs, $type: same flat/cum per"
                  . ' function (' . scalar(@$want) . ' lines)')
            or diag("want:\n@$want\ngot:\n@$got");
    }
}

# 6. group commit: 40 requests written at once on 40 connections, one
# of them with a sample label name the store refuses (not a decoding
# error: it passes every check before the transaction)
SKIP: {
    skip 'protoc not installed', 4 if $protoc eq '';

    open(my $fh, '>', "$tmp/badlabel.txt") or die;
    print $fh <<'PB';
sample_type { type: 1 unit: 2 }
sample { location_id: 1 value: 7 label { key: 3 str: 4 } }
location { id: 1 line { function_id: 1 } }
function { id: 1 name: 5 }
string_table: [ "", "samples", "count", "bad-name", "x", "main" ]
PB
    close $fh;
    my $badprof = `protoc -Iproto --encode=perftools.profiles.Profile \\
                   proto/profile.proto < $tmp/badlabel.txt`;
    die 'protoc failed' if $?;

    my $n = 40;
    my $port = $srv->port;
    my (@socks, %resp);

    for my $i (0 .. $n - 1) {
        my $body = $i == 17
            ? push_json([ labels('group', 'bad'), [ $badprof ] ])
            : push_json([ labels('group', "e$i"), [ $cpu1 ] ]);
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
            or die "connect: $!";
        $s->autoflush(1);
        print $s "POST /push.v1.PusherService/Push HTTP/1.1\r\n"
                 . "Host: localhost\r\nConnection: close\r\n"
                 . "Content-Type: application/json\r\n"
                 . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
        push @socks, $s;
    }

    my $sel = IO::Select->new(@socks);
    my %idx = map { ($socks[$_] => $_) } 0 .. $#socks;
    my $deadline = time + 60;

    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read(1)) {
            my $got = sysread($s, my $buf, 65536);
            if ($got) {
                $resp{$idx{$s}} .= $buf;
            } else {
                $sel->remove($s);
                close $s;
            }
        }
    }

    my @status = map { ($resp{$_} // '') =~ m{^HTTP/1\.1 (\d+)} ? $1 : 0 }
                 0 .. $n - 1;
    my @ok = grep { $_ != 17 && $status[$_] == 200 } 0 .. $n - 1;

    is(scalar(@ok), $n - 1, "$n requests at once: the 39 good ones 200"
       . " (@status)");
    ok($status[17] == 400 && ($resp{17} // '')
       =~ /"code":"invalid_argument","message":"[^"]*sample label/,
       'the bad one among them alone: 400 invalid_argument on its label')
        or diag($resp{17});

    $series = `$dump $zone 2>&1`;
    is(rows('process_cpu:cpu:nanoseconds:cpu:nanoseconds',
            'service_name="group"'), $n - 1,
       'every good profile stored once, one row each');
    is(rows('process_cpu:samples:count:cpu:nanoseconds',
            'service_name="group"'), $n - 1, 'and its other sample type');
}

# 4. refusals: Connect error JSON, one line, the right status; nothing
# stored
my $bomb = gz("\0" x (20 << 20));
my $inner = gz("\0" x (8 << 20));
my $good = push_json([ labels('bad', 'x'), [ $cpu1 ] ]);

my @bad = (
    [ 'garbage as proto', 'application/proto', "\x0a\xff\xff\xff", [],
      400, 'invalid_argument', qr/protobuf/ ],
    [ 'bad JSON', 'application/json', '{"series":[{"labels":[}', [],
      400, 'invalid_argument', qr/JSON at byte/ ],
    [ 'bad base64', 'application/json',
      '{"series":[{"labels":[{"name":"__name__","value":"x"}],'
      . '"samples":[{"rawProfile":"!!!"}]}]}', [], 400,
      'invalid_argument', qr/base64/ ],
    [ 'a gzip bomb body', 'application/json', $bomb,
      [ [ 'Content-Encoding', 'gzip' ] ], 413, 'invalid_argument',
      qr/limit/ ],
    [ 'a gzip bomb profile', 'application/json',
      push_json([ labels('bad', 'x'), [ $inner ] ]), [], 413,
      'invalid_argument', qr/decompress|large|limit/i ],
    [ 'a truncated gzip body', 'application/json', substr(gz($good), 0, 50),
      [ [ 'Content-Encoding', 'gzip' ] ], 400, 'invalid_argument',
      qr/gzip|stream|truncated/i ],
    [ 'an unsupported content type', 'text/plain', $good, [], 415,
      'unimplemented', qr/Content-Type/ ],
    [ 'an unsupported encoding', 'application/json', $good,
      [ [ 'Content-Encoding', 'br' ] ], 415, 'unimplemented',
      qr/Content-Encoding/ ],
    [ 'no service_name', 'application/json',
      push_json([ [ [ '__name__', 'process_cpu' ] ], [ $cpu1 ] ]), [], 400,
      'invalid_argument', qr/service_name/ ],
    [ 'a bad profile among good ones', 'application/json',
      push_json([ labels('bad', 'x'), [ $cpu1, 'not a profile' ] ]), [], 400,
      'invalid_argument', qr/./ ],
);

my $before = `$dump $zone 2>&1`;

for my $b (@bad) {
    my ($name, $type, $body, $h, $status, $code, $re) = @$b;
    @r = ppush($type, $body, @$h);
    my $e = eval { decode_json($r[1]) } // {};
    ok($r[0] == $status && ($e->{code} // '') eq $code
       && ($e->{message} // '') =~ $re && $r[1] =~ /^[^\n]*\n$/
       && $r[2] eq 'application/json',
       "$name: $status $code \"" . ($e->{message} // '') . '"')
        or diag("got $r[0] $r[2] $r[1]");
}

is(`$dump $zone 2>&1`, $before, 'refused requests stored nothing');

my $res = $srv->request('POST /push.v1.PusherService/Other',
                        headers => [ [ 'Content-Type', 'application/json' ] ],
                        body => '{}');
is($res->{status}, 404, 'unknown method: 404');

$srv->no_errors_ok('no [error]/[alert] for client mistakes');
