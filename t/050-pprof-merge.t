# The pprof codec against the real peer: `go tool pprof -top` over
# build/pprof-merge's output (ts_pprof_parse + ts_pprof_merge +
# ts_pprof_encode) prints the same totals and the same per-function
# flat/cum lines, for every sample type, as over the original files
# given together (which Go merges with profile.Merge).  Inputs: the Go
# 1.19 fixtures of t/data/pprof/ and CPU and heap profiles a small Go
# program writes here (golang-go, stdlib only, offline).

use strict;
use warnings;

use File::Temp qw(tempdir);
use Test::More;

my $merge = $ENV{TSDB_PPROF_MERGE} || 'build/pprof-merge';
my $go = `command -v go 2>/dev/null`;
chomp $go;

my @fixture_sets = (
    [ 'fixtures cpu1+cpu2', 't/data/pprof/cpu1.pb.gz',
      't/data/pprof/cpu2.pb.gz' ],
    [ 'fixture heap1', 't/data/pprof/heap1.pb.gz' ],
);

# sets x sample types, two tests each; plus setup and the refusals
plan tests => 2 + (2 + 2 * (2 + 4)) + 1 + (3 + 2 * (2 + 4 + 2)) + 2;

ok(-x $merge || system('make', '-s', $merge) == 0, "$merge built")
    or BAIL_OUT("cannot build $merge");
ok($go ne '', 'go is installed (Debian golang-go, see .ci/deps)')
    or BAIL_OUT('go not found: apt-get install golang-go');

my $tmp = tempdir('pprof-merge-XXXXXX', TMPDIR => 1, CLEANUP => 1);
local $ENV{GOCACHE} = "$tmp/gocache";
local $ENV{GOPATH} = "$tmp/gopath";
local $ENV{HOME} = $tmp;
local $ENV{GOFLAGS} = '';
local $ENV{GOPROXY} = 'off';
local $ENV{GO111MODULE} = 'off';
local $ENV{PPROF_TMPDIR} = $tmp;

my $merged = 0;

# sample type names, from the first line after "Samples:" of -raw
sub sample_types {
    my ($file) = @_;
    my @raw = `go tool pprof -raw $file 2>/dev/null`;

    for my $i (0 .. $#raw - 1) {
        next unless $raw[$i] =~ /^Samples:/;
        return map { (split m{/})[0] } split ' ', $raw[$i + 1];
    }

    return ();
}

# the totals line and every node line of -top, complete
sub top {
    my ($index, @files) = @_;
    my @out = `go tool pprof -top -nodecount=1000000 -nodefraction=0 \\
               -edgefraction=0 -sample_index=$index @files 2>&1`;
    my ($total) = grep { /^Showing nodes accounting for/ } @out;
    my @nodes = grep { /^\s+-?[\d.]+\w*\s+[\d.]+%/ } @out;

    return ($total // "no totals in:\n@out", \@nodes);
}

sub compare {
    my ($name, @files) = @_;
    my $out = "$tmp/merged-" . $merged++ . '.pb.gz';

    is(system($merge, '-q', '-o', $out, @files), 0, "$name: merged")
        or return;

    for my $t (sample_types($files[0])) {
        my ($want_total, $want) = top($t, @files);
        my ($got_total, $got) = top($t, $out);

        is($got_total, $want_total, "$name, $t: same totals");
        is_deeply($got, $want, "$name, $t: same flat/cum per function ("
                  . scalar(@$want) . ' lines)')
            or diag("want:\n@$want\ngot:\n@$got");
    }
}

# the refusal of incompatible profiles, and of a broken file
sub refuse {
    my ($name, $pattern, @files) = @_;
    my $err = `$merge -q -o $tmp/refused.pb.gz @files 2>&1`;
    chomp $err;

    ok($? >> 8 == 1 && $err =~ $pattern, "$name: refused ($err)");
}

compare(@$_) for @fixture_sets;


# profiles written by a Go program here, twice with other work
# the Go program is the data block (gofmt's tabs)
my $prog = do { local $/; <DATA> };

open my $fh, '>', "$tmp/prog.go" or die "$tmp/prog.go: $!";
print $fh $prog;
close $fh;

my $built = system('go', 'build', '-o', "$tmp/prog", "$tmp/prog.go") == 0
            && system("$tmp/prog", "$tmp/a", 1) == 0
            && system("$tmp/prog", "$tmp/b", 3) == 0;
ok($built, 'the Go program built and wrote its profiles')
    or BAIL_OUT('go build or run failed');

compare('generated cpu a+b', "$tmp/a-cpu.pb.gz", "$tmp/b-cpu.pb.gz");
compare('generated heap a+b', "$tmp/a-heap.pb.gz", "$tmp/b-heap.pb.gz");
compare('fixtures and generated cpu', 't/data/pprof/cpu1.pb.gz',
        't/data/pprof/cpu2.pb.gz', "$tmp/a-cpu.pb.gz", "$tmp/b-cpu.pb.gz");

refuse('cpu and heap', qr/incompatible/, 't/data/pprof/cpu1.pb.gz',
       't/data/pprof/heap1.pb.gz');

open $fh, '>', "$tmp/broken.pb.gz" or die;
print $fh substr(do { local (@ARGV, $/) = 't/data/pprof/cpu1.pb.gz'; <> },
                 0, 3000);
close $fh;
refuse('a truncated gzip file', qr/gzip/, "$tmp/broken.pb.gz");

__DATA__
package main

import (
	"crypto/sha256"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"time"
)

var sink [][]byte

func hash(n int) {
	b := make([]byte, 4096)
	for i := 0; i < n; i++ {
		s := sha256.Sum256(b)
		b[i%4096] = s[0]
	}
}

func sortWork(n int) {
	x := make([]int, n)
	for i := range x {
		x[i] = (i * 7919) % n
	}
	sort.Ints(x)
}

func alloc(n, size int) {
	for i := 0; i < n; i++ {
		sink = append(sink, make([]byte, size))
	}
}

func main() {
	runtime.MemProfileRate = 4096
	seed, _ := strconv.Atoi(os.Args[2])
	cpu, _ := os.Create(os.Args[1] + "-cpu.pb.gz")
	pprof.StartCPUProfile(cpu)
	deadline := time.Now().Add(700 * time.Millisecond)
	for time.Now().Before(deadline) {
		hash(2000 * seed)
		sortWork(50000 + 10000*seed)
		alloc(100, 64*seed)
	}
	pprof.StopCPUProfile()
	cpu.Close()
	heap, _ := os.Create(os.Args[1] + "-heap.pb.gz")
	pprof.WriteHeapProfile(heap)
	heap.Close()
}
