# "make run" as README says: nginx in the foreground on 127.0.0.1:9090
# with conf-examples/quickstart.conf and state under ./var, serving the
# module's own metrics.

use strict;
use warnings;

use lib 't/lib';
use IO::Socket::INET;
use POSIX qw(setpgid WNOHANG);
use Test::More;
use Test::Nginx::Tsdb;
use Time::HiRes qw(sleep);

if (IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => 9090)) {
    plan skip_all => 'something already listens on 127.0.0.1:9090';
}

plan tests => 5;

my $log = "t/servroot-021-make-run.log";
my $pid = fork // die "fork: $!";

if ($pid == 0) {
    setpgid(0, 0);
    open STDOUT, '>', $log or die "$log: $!";
    open STDERR, '>&', \*STDOUT or die "dup: $!";
    exec 'make', '-s', 'run' or die "exec make: $!";
}

my $res;
for (1 .. 300) {
    last if waitpid($pid, WNOHANG) == $pid;
    $res = Test::Nginx::Tsdb::Server::exchange('127.0.0.1', 9090,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close"
        . "\r\n\r\n", 5, 0) if IO::Socket::INET->new(
            PeerAddr => '127.0.0.1', PeerPort => 9090);
    # both workers up: each counts itself once it has started
    last if $res && $res->{body} =~ /^tsdb_worker_processes 2$/m;
    sleep 0.2;
}

ok($res, 'make run serves on 127.0.0.1:9090');
is($res && $res->{status}, 200, '/metrics answers 200');
like($res && $res->{body}, qr/^tsdb_worker_processes 2$/m,
     'the module reports its two workers');

kill 'TERM', -$pid;
waitpid($pid, 0);

open my $fh, '<', $log or die "$log: $!";
my $out = do { local $/; <$fh> };
like($out, qr{serving on http://127\.0\.0\.1:9090/}, 'make run says where');
ok(-d 'var/tmp', 'state lives under ./var');
