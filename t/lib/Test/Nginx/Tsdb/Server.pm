package Test::Nginx::Tsdb::Server;

# One nginx instance under test: its server root, its configuration, its
# life (start, reload, restart, stop) and an HTTP/1.x client to talk to it.
# The data-driven runner in Test::Nginx::Tsdb drives exactly this class, so
# a procedural test sees the same nginx the data-driven blocks see.
#
# Invariants:
# - A server owns one directory (servroot).  new() empties it unless told
#   otherwise; start(), reload() and restart() never delete anything, so
#   DATA_DIR survives a restart.
# - The master runs daemonized (its own session and process group).  Its
#   parent may be a PID 1 that does not reap, so a zombie counts as dead.
# - Processes are found through /proc (Linux only): workers are the children
#   of the master whose title is "nginx: worker process".
# - Ports come from bind(0), which hands the same free port to parallel
#   test processes (prove -j) within milliseconds.  So "pick a port, until
#   nginx has bound it" runs under an flock shared by all test processes
#   ($TMPDIR/ngx-tsdb-harness-ports.lock); restart() holds it from stop to
#   start so that its port cannot be taken in between.
# - Every server still running when the test process exits (normally, by
#   die, or by SIGINT/SIGTERM) is stopped from END.

use strict;
use warnings;

use Carp qw(croak);
use Fcntl qw(:flock O_CREAT O_RDONLY O_RDWR);
use File::Basename qw(basename dirname);
use File::Path qw(make_path remove_tree);
use File::Spec;
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Scalar::Util qw(refaddr weaken);
use Time::HiRes qw(sleep time);
use Test::More ();

our $STARTUP_TIMEOUT = $ENV{TEST_NGINX_STARTUP_TIMEOUT} || 10;
our $STOP_TIMEOUT = 10;

my %LIVE;             # refaddr => weak ref to every started server
my $MODULE_DIAG_DONE;

my @OPTIONS = qw(main_config http_config config log_level workers port
                 servroot timeout user_files binary module clean);


sub new {
    my ($class, %o) = @_;
    my $self;

    for my $k (keys %o) {
        croak "unknown option '$k'" unless grep { $_ eq $k } @OPTIONS;
    }

    $self = bless {
        main_config => '',
        http_config => '',
        config      => '',
        log_level   => 'info',
        workers     => 2,
        timeout     => 10,
        user_files  => [],
        binary      => $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx',
        %o,
        owner       => $$,
    }, $class;

    $self->{servroot} = File::Spec->rel2abs(
        $self->{servroot} // default_servroot());
    $self->{module} //= _module_from_env();
    $self->{auto_port} = !defined $self->{port};
    $self->{port} //= free_port();

    if ($o{clean} // 1) {
        $self->_stop_stale;
        remove_tree($self->{servroot});
    }

    return $self;
}


# t/servroot-<test file basename>, next to the test file, so that
# "prove -j" can run test files in parallel.
sub default_servroot {
    my $base = basename($0);
    my $dir = File::Spec->rel2abs(dirname($0));

    $base =~ s/\.t\z//;
    return "$dir/servroot-$base";
}


sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 1)
        or croak "cannot bind a free loopback port: $@";
    my $port = $s->sockport;

    close $s;
    return $port;
}


# Returns a handle holding the port lock (released when it is dropped), or
# undef when the lock file cannot be used: then we rely on the retry.
sub _port_lock {
    my $path = File::Spec->tmpdir . '/ngx-tsdb-harness-ports.lock';
    my $fh;

    # Root and other users share the file: 0666, and a read-only open
    # suffices for flock() (protected_regular may refuse O_CREAT).
    if (sysopen $fh, $path, O_RDWR | O_CREAT, 0666) {
        chmod 0666, $path if (stat $fh)[4] == $>;
    } elsif (!sysopen $fh, $path, O_RDONLY) {
        return undef;
    }

    return flock($fh, LOCK_EX) ? $fh : undef;
}


sub _module_from_env {
    my $m = $ENV{TSDB_MODULE};

    return undef unless defined $m && length $m;
    return File::Spec->rel2abs($m) if -f $m;

    Test::More::diag("TSDB_MODULE=$m does not exist; running nginx without"
                     . " load_module") unless $MODULE_DIAG_DONE++;
    return undef;
}


sub servroot   { $_[0]{servroot} }
sub port       { $_[0]{port} }
sub html_dir   { "$_[0]{servroot}/html" }
sub data_dir   { "$_[0]{servroot}/data" }
sub conf_file  { "$_[0]{servroot}/conf/nginx.conf" }
sub pid_file   { "$_[0]{servroot}/logs/nginx.pid" }
sub error_log_file { "$_[0]{servroot}/logs/error.log" }
sub stderr_file    { "$_[0]{servroot}/logs/stderr.log" }
sub access_log_file { "$_[0]{servroot}/logs/access.log" }


sub vars {
    my $self = shift;

    return (
        TEST_NGINX_SERVER_PORT => $self->{port},
        TEST_NGINX_SERVROOT    => $self->{servroot},
        TEST_NGINX_HTML_DIR    => $self->html_dir,
        TEST_NGINX_DATA_DIR    => $self->data_dir,
    );
}


# Replaces $TEST_NGINX_* (our variables first, then the environment).
# $quote escapes the values, for text that is used as a regex.
sub expand {
    my ($self, $text, $quote) = @_;
    my %v = $self->vars;

    return $text unless defined $text && !ref $text;

    $text =~ s{\$(TEST_NGINX_\w+)}{
        my $val = $v{$1} // $ENV{$1}
            // croak "\$$1 is used but the environment variable $1 is not set";
        $quote ? quotemeta($val) : $val;
    }ge;

    return $text;
}


sub config_text {
    my $self = shift;
    my $sr = $self->{servroot};
    my $load = $self->{module} ? "load_module $self->{module};\n" : '';
    my $main = $self->expand($self->{main_config});
    my $http = $self->expand($self->{http_config});
    my $conf = $self->expand($self->{config});
    my $html = $self->html_dir;

    return <<"EOC";
# generated by Test::Nginx::Tsdb for $0; do not edit
${load}daemon on;
master_process on;
worker_processes $self->{workers};
pid logs/nginx.pid;
error_log logs/error.log $self->{log_level};

$main

events {
    worker_connections 1024;
}

http {
    access_log logs/access.log;
    default_type text/plain;

    client_body_temp_path $sr/client_body_temp;
    proxy_temp_path $sr/proxy_temp;
    fastcgi_temp_path $sr/fastcgi_temp;
    uwsgi_temp_path $sr/uwsgi_temp;
    scgi_temp_path $sr/scgi_temp;

$http

    server {
        listen 127.0.0.1:$self->{port};
        server_name localhost;
        root $html;

$conf
    }
}
EOC
}


# Workers may run as "nobody" (when we are root): they must be able to
# read html/ and write data/.  The chmods override a strict umask.
sub _prepare_dirs {
    my $self = shift;
    my $sr = $self->{servroot};

    for my $d ($sr, "$sr/conf", "$sr/logs", $self->html_dir) {
        make_path($d);
        chmod 0755, $d or croak "chmod $d: $!";
    }
    make_path($self->data_dir);
    chmod 0777, $self->data_dir or croak "chmod " . $self->data_dir . ": $!";

    $self->_check_traversable if $> == 0;
}


sub _check_traversable {
    my $self = shift;
    my $d = dirname($self->{servroot});

    while ($d ne '/' && $d ne '.') {
        my $mode = (stat $d)[2];

        if (defined $mode && !($mode & 0001)) {
            Test::More::diag("warning: $d is not searchable by others; nginx"
                             . " workers (nobody) cannot reach the servroot");
            return;
        }
        $d = dirname($d);
    }
}


sub _write_user_files {
    my $self = shift;
    my $files = $self->{user_files};
    my @pairs = ref $files eq 'HASH'
                ? map { [$_, $files->{$_}] } sort keys %$files
                : @$files;

    for my $p (@pairs) {
        my ($name, $content) = @$p;
        my $path = $self->html_dir . "/$name";

        croak "bad user file name '$name'" if $name =~ m{(?:^|/)\.\.(?:/|$)};
        make_path(dirname($path));
        _spew($path, $content);
        chmod 0644, $path;
        for (my $d = dirname($path); $d ne $self->html_dir; $d = dirname($d)) {
            chmod 0755, $d;
        }
    }
}


sub write_config {
    my $self = shift;

    $self->_prepare_dirs;
    _spew($self->conf_file, $self->config_text);
    chmod 0644, $self->conf_file;
}


# Starts nginx; returns undef on success, else what nginx said (stderr and
# the error log).  A port picked by us and taken by some other program
# before nginx's bind() is retried with a new port; the failed attempt's
# lines are cut from the error log so that they do not fail the block's
# log check.
sub try_start {
    my $self = shift;
    my ($err, $size);

    croak "server already running" if $self->is_running;

    for (1 .. 5) {
        $size = -s $self->error_log_file // 0;
        $err = $self->_start_once;
        return undef unless defined $err;
        last unless $self->{auto_port} && !$self->{started_once}
                    && $err =~ /Address already in use/;
        truncate $self->error_log_file, $size;
    }

    return $err;
}


sub start {
    my $self = shift;
    my $err = $self->try_start;

    croak "nginx failed to start:\n$err" if defined $err;
    return $self;
}


sub _start_once {
    my $self = shift;
    my $lock = $self->{port_lock} ? undef : _port_lock();
    my ($rc, $out, $err);

    # The port is final from here on: nginx binds it before it daemonizes,
    # that is before _run_nginx() returns and the lock is dropped.
    $self->{port} = free_port() if $self->{auto_port} && !$self->{started_once};
    $self->write_config;
    $self->_write_user_files;
    unlink $self->pid_file;

    ($rc, $out) = $self->_run_nginx('-p', "$self->{servroot}/",
                                    '-c', 'conf/nginx.conf',
                                    _has_e_flag($self->{binary})
                                        ? ('-e', 'logs/error.log') : ());
    undef $lock;
    return "$self->{binary} exited with status $rc\n$out" if $rc != 0;

    $err = $self->_wait_ready(-s $self->error_log_file // 0);
    if (defined $err) {
        $self->stop;
        return "$err\n$out" . _tail($self->error_log, 20);
    }

    $self->{started_once} = 1;
    $LIVE{refaddr $self} = $self;
    weaken $LIVE{refaddr $self};
    return undef;
}


# Runs the nginx binary in the foreground part of its start-up (it forks
# the daemon and exits); returns its exit status and its stderr.
sub _run_nginx {
    my ($self, @args) = @_;
    my $file = $self->stderr_file;
    my $pid;

    _spew($file, '');
    $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $file;
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec'; exec $self->{binary}, @args; }
        print STDERR "exec $self->{binary}: $!\n";
        POSIX::_exit(127);
    }

    my $deadline = time + $STARTUP_TIMEOUT;
    while (waitpid($pid, WNOHANG) == 0) {
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            return (-1, "timed out\n" . _slurp($file));
        }
        sleep 0.01;
    }

    return ($? >> 8 || $? & 127, _slurp($file) // '');
}


# Waits for the pid file, the listening socket and all workers.  Gives up
# early when the master died or a worker could not be respawned (logged
# after $offset, where the daemon's own log starts).
sub _wait_ready {
    my ($self, $offset) = @_;
    my $deadline = time + $STARTUP_TIMEOUT;
    my $what;

    while (time < $deadline) {
        my $pid = _read_pid($self->pid_file);
        my $log = substr($self->error_log, $offset);

        if ($log =~ /^(.*(?:cannot be respawned|\[emerg\]).*)$/m) {
            return "nginx failed after it daemonized: $1";
        } elsif ($pid && !pid_alive($pid)) {
            return "nginx master $pid exited";
        } elsif (!$pid) {
            $what = 'no pid in ' . $self->pid_file;
        } elsif (!_listening($self->{port})) {
            $what = "nothing listens on 127.0.0.1:$self->{port}";
        } elsif (_workers_of($pid) < $self->{workers}) {
            $what = "fewer than $self->{workers} workers";
        } else {
            $self->{pid} = $pid;
            return undef;
        }
        sleep 0.02;
    }

    return "nginx did not become ready in ${STARTUP_TIMEOUT}s: $what";
}




sub is_running {
    my $self = shift;

    return $self->{pid} && pid_alive($self->{pid});
}


sub master_pid {
    my $self = shift;

    return $self->is_running ? $self->{pid} : undef;
}


# Live workers of the current generation (not those shutting down after a
# reload), sorted.
sub worker_pids {
    my $self = shift;

    return $self->{pid} ? _workers_of($self->{pid}) : ();
}


sub _workers_of {
    my $master = shift;
    my @w;

    for my $p (_children($master)) {
        my $title = _slurp("/proc/$p/cmdline") // next;

        push @w, $p if $title =~ /^nginx: worker process/
                       && $title !~ /is shutting down/;
    }

    @w = sort { $a <=> $b } @w;
    return @w;
}


# Sends $sig to one worker and waits until the master has replaced it.
# Returns the pids of the replacement workers.
sub kill_worker {
    my ($self, $pid, $sig) = @_;
    my %old = map { $_ => 1 } $self->worker_pids;
    my @now;

    $sig //= 'KILL';
    croak "$pid is not a worker of master $self->{pid}" unless $old{$pid};
    kill $sig, $pid or croak "kill $sig $pid: $!";

    # List first, then check the victim is not listed: it may die between
    # the listing and a separate liveness check.
    $self->_wait_for(sub {
        @now = $self->worker_pids;
        return @now == $self->{workers} && !grep { $_ == $pid } @now;
    }, "worker $pid to be replaced after SIG$sig");

    return grep { !$old{$_} } @now;
}


# SIGHUP with an optionally changed configuration; waits until a whole new
# generation of workers serves and the old workers are gone.  Croaks (with
# nginx's message) when the new configuration is rejected; the old
# workers then keep serving, as nginx does.
sub reload {
    my ($self, %parts) = @_;
    my @old = $self->worker_pids;
    my %old = map { $_ => 1 } @old;
    my $offset = -s $self->error_log_file // 0;
    my %was = map { $_ => $self->{$_} } keys %parts;

    croak "server not running" unless $self->is_running;
    $self->_set_parts(%parts);
    $self->write_config;
    kill 'HUP', $self->{pid} or croak "kill HUP $self->{pid}: $!";

    $self->_wait_for(sub {
        my $new = substr($self->error_log, $offset);
        my @w;

        if ($new =~ /^(.*\[emerg\].*)$/m) {
            $self->_set_parts(%was);
            $self->write_config;
            croak "nginx rejected the reload: $1";
        }
        @w = $self->worker_pids;
        return @w == $self->{workers} && !grep({ $old{$_} } @w)
               && !grep({ pid_alive($_) } @old);
    }, 'a new generation of workers after SIGHUP');

    return $self;
}


sub restart {
    my ($self, %parts) = @_;

    local $self->{port_lock} = _port_lock();
    $self->stop;
    $self->_set_parts(%parts);
    return $self->start;
}


sub _set_parts {
    my ($self, %parts) = @_;

    for my $k (keys %parts) {
        croak "cannot change '$k' here"
            unless $k =~ /^(?:main_config|http_config|config|log_level)$/;
        $self->{$k} = $parts{$k};
    }
}


# QUIT (graceful), then TERM, then KILL to the whole process group.
sub stop {
    my $self = shift;
    my $pid = $self->{pid} // _read_pid($self->pid_file);

    delete $LIVE{refaddr $self};
    $self->{pid} = undef;
    return $self unless $pid && pid_alive($pid);

    for my $step (['QUIT', $STOP_TIMEOUT], ['TERM', 5], ['KILL', 5]) {
        my ($sig, $wait) = @$step;

        kill $sig, $sig eq 'KILL' ? -$pid : $pid;
        return $self if _wait_gone($pid, $wait);
        Test::More::diag("nginx master $pid survived SIG$sig");
    }

    croak "cannot stop nginx master $pid";
}


# A server left running by an aborted earlier run in the same servroot.
sub _stop_stale {
    my $self = shift;
    my $pid = _read_pid($self->pid_file);
    my $title;

    return unless $pid && pid_alive($pid);
    $title = _slurp("/proc/$pid/cmdline") // '';
    return unless $title =~ /^nginx: master process/
                  && index($title, $self->{servroot}) >= 0;

    $self->{pid} = $pid;
    $self->stop;
}


sub DESTROY {
    my $self = shift;

    local ($@, $!, $?);
    eval { $self->stop } if $self->{owner} == $$ && $self->{pid};
}


sub error_log {
    my $self = shift;

    return _slurp($self->error_log_file) // '';
}


sub stderr {
    my $self = shift;

    return _slurp($self->stderr_file) // '';
}


# The error log's [error], [alert], [crit] and [emerg] lines, except those
# matching one of allow => [...] (strings are substrings, qr// regexes).
sub error_lines {
    my ($self, %o) = @_;
    my @allow = @{ $o{allow} || [] };

    return grep { /\[(?:error|alert|crit|emerg)\]/
                  && !matches_any($_, \@allow) }
           split /\n/, $self->error_log;
}


# One assertion: error_lines(%o) is empty; prints the lines otherwise.
sub no_errors_ok {
    my ($self, $name, %o) = @_;
    my @bad = $self->error_lines(%o);

    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::ok(!@bad, $name)
        or Test::More::diag(join "\n",
                            'unexpected lines in ' . $self->error_log_file,
                            @bad[0 .. _min(19, $#bad)],
                            @bad > 20 ? '...' : ());
    return !@bad;
}


sub matches_any {
    my ($text, $pats) = @_;

    for my $p (@$pats) {
        return 1 if ref $p eq 'Regexp' ? $text =~ $p : index($text, $p) >= 0;
    }
    return 0;
}


# ---- HTTP client -------------------------------------------------------

# $req is "METHOD URI [PROTOCOL]" optionally followed by body lines (a
# --- request section).  Options: headers (string of lines, array of lines
# or [name, value] pairs, or hash), body (overrides the body lines), raw
# (bytes sent as they are), timeout (seconds).  Never dies: a failure is
# returned as { error => ... } with an undefined status.
sub request {
    my ($self, $req, %o) = @_;
    my $timeout = $o{timeout} // $self->{timeout};
    my ($raw, $method, $res);

    $res = eval {
        if (defined $o{raw}) {
            $raw = $o{raw};
            ($method) = $raw =~ /^\s*(\S+)/;
        } else {
            ($raw, $method) = build_request($req, $o{headers}, $o{body});
        }
        exchange('127.0.0.1', $self->{port}, $raw, $timeout,
                 ($method // '') eq 'HEAD');
    };
    return $res if $res;

    chomp(my $e = $@);
    return { error => $e, status => undef, headers => {}, header_list => [],
             body => undef };
}


sub build_request {
    my ($req, $headers, $body) = @_;
    my ($line, $rest) = split /\n/, $req // '', 2;
    my ($method, $uri, $proto, $extra) = split ' ', $line // '';
    my @h = normalize_headers($headers);
    my %has = map { lc($_->[0]) => 1 } @h;
    my @out;

    die "bad request line '" . ($line // '') . "'\n"
        if !defined $method || defined $extra;
    $uri //= '/';
    $proto //= 'HTTP/1.1';

    if (!defined $body) {
        $body = $rest // '';
        $body =~ s/^\s+|\s+$//g;
    }
    $body = _bytes($body);

    @out = ("$method $uri $proto");
    push @out, 'Host: localhost' unless $has{host};
    push @out, 'Connection: close' unless $has{connection};
    push @out, map { "$_->[0]: $_->[1]" } @h;
    push @out, 'Content-Length: ' . length($body)
        if !$has{'content-length'} && !$has{'transfer-encoding'}
           && (length $body || $method =~ /^(?:POST|PUT|PATCH)$/);

    return (join("\r\n", @out) . "\r\n\r\n" . $body, $method);
}


sub normalize_headers {
    my $h = shift;
    my @lines;

    return () unless defined $h;
    return map { [$_, $h->{$_}] } sort keys %$h if ref $h eq 'HASH';
    @lines = ref $h eq 'ARRAY' ? @$h : split /\n/, $h;

    return map {
        ref $_ eq 'ARRAY' ? $_ : do {
            my ($k, $v) = /^\s*([^:\s]+)\s*:\s*(.*?)\s*$/
                or die "bad header line '$_'\n";
            [$k, $v];
        }
    } grep { ref $_ || /\S/ && !/^\s*#/ } @lines;
}


sub _bytes {
    my $s = shift;

    if ($s =~ /[^\x00-\xff]/) {
        utf8::encode($s);
    } else {
        utf8::downgrade($s);
    }
    return $s;
}


# Sends $raw on a new connection and reads one response.
sub exchange {
    my ($host, $port, $raw, $timeout, $is_head) = @_;
    my $deadline = time + $timeout;
    my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
                                     Proto => 'tcp', Timeout => $timeout)
        or die "connect to $host:$port failed: $@\n";
    my $sel = IO::Select->new($sock);
    my ($buf, $need, $eof, $off) = ('', 0, 0, 0);

    local $SIG{PIPE} = 'IGNORE';
    $sock->blocking(0);

    # Write until done; the server may answer early and close (413...).
    while ($off < length $raw) {
        $sel->can_write(_remaining($deadline, $timeout, \$buf)) or next;
        my $n = syswrite($sock, $raw, 65536, $off);
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            last;
        }
        $off += $n;
    }

    # With "Connection: close", wait for the close as Test::Nginx does:
    # nginx runs the log phase before it closes, so what a request
    # counted there is visible to the next request.
    my $done;

    while (1) {
        return $done if $done && $eof;
        if (!$done && ($eof || length $buf >= $need)) {
            my ($res, $more) = parse_response($buf, $eof, $is_head);
            if ($res) {
                return $res if $eof
                    || lc($res->{headers}{connection} // '') ne 'close';
                $done = $res;
            }
            $need = $more // 0;
        }
        $sel->can_read(_remaining($deadline, $timeout, \$buf)) or next;
        my $n = sysread($sock, $buf, 65536, length $buf);
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            die "read failed: $!\n" unless $!{ECONNRESET};
            $n = 0;
        }
        $eof = 1 if $n == 0;
    }
}


sub _remaining {
    my ($deadline, $timeout, $buf) = @_;
    my $left = $deadline - time;

    return $left if $left > 0;
    die "timeout after ${timeout}s; received " . length($$buf) . " bytes"
        . (length $$buf ? ": " . _preview($$buf) : '') . "\n";
}


# Returns ($response) when $buf holds a whole response, else (undef, $n):
# nothing can be decided before $buf has $n bytes.  Dies on malformed or
# truncated (at $eof) responses.
sub parse_response {
    my ($buf, $eof, $is_head) = @_;

    while (1) {
        my $end = index($buf, "\r\n\r\n");
        my (@lines, $rest, $status_line, %h, @list, $res);

        if ($end < 0) {
            die "connection closed in the response header: "
                . _preview($buf) . "\n" if $eof;
            return (undef, length($buf) + 1);
        }

        @lines = split /\r\n/, substr($buf, 0, $end);
        $rest = substr($buf, $end + 4);
        $status_line = shift @lines;
        $res = {};
        @$res{qw(protocol status reason)} =
            $status_line =~ m{^(HTTP/\d\.\d) (\d{3})(?: (.*))?$}
            or die "bad status line '$status_line'\n";

        for (@lines) {
            my ($k, $v) = /^([^:\s]+):[ \t]*(.*?)[ \t]*$/
                or die "bad response header line '$_'\n";
            my $lk = lc $k;

            push @list, [$k, $v];
            $h{$lk} = exists $h{$lk} ? "$h{$lk}, $v" : $v;
        }

        if ($res->{status} =~ /^1/) {        # 100 Continue and friends
            $buf = $rest;
            next;
        }

        $res->{status} += 0;
        $res->{reason} //= '';
        $res->{headers} = \%h;
        $res->{header_list} = \@list;
        $res->{raw_headers} = substr($buf, 0, $end + 4);

        return _parse_body($res, $rest, $eof, $is_head, $end + 4);
    }
}


sub _parse_body {
    my ($res, $rest, $eof, $is_head, $hlen) = @_;
    my $h = $res->{headers};
    my ($body, $need);

    if ($is_head || $res->{status} == 204 || $res->{status} == 304) {
        $body = '';
    } elsif (($h->{'transfer-encoding'} // '') =~ /chunked/i) {
        ($body, $need) = dechunk($rest, $eof);
        return (undef, $hlen + $need) unless defined $body;
    } elsif (defined $h->{'content-length'}) {
        my $len = $h->{'content-length'};

        if (length $rest < $len) {
            die "connection closed after " . length($rest)
                . " of $len body bytes\n" if $eof;
            return (undef, $hlen + $len);
        }
        $body = substr($rest, 0, $len);
    } else {
        return (undef, $hlen + length($rest) + 1) unless $eof;
        $body = $rest;
    }

    $res->{body} = $body;
    return ($res);
}


# Decodes a chunked body; (undef, $n) when $n bytes are needed first.
sub dechunk {
    my ($s, $eof) = @_;
    my ($pos, $out) = (0, '');

    while (1) {
        my $le = index($s, "\r\n", $pos);
        my $size;

        if ($le < 0) {
            die "connection closed in a chunk header\n" if $eof;
            return (undef, length($s) + 1);
        }
        substr($s, $pos, $le - $pos) =~ /^([0-9a-fA-F]+)/
            or die "bad chunk size line '"
                   . substr($s, $pos, $le - $pos) . "'\n";
        $size = hex $1;
        $pos = $le + 2;

        if ($size == 0) {
            # Trailer lines, then an empty line.
            my $end = index($s, "\r\n\r\n", $pos - 2);

            return ($out) if $end >= 0;
            die "connection closed in the chunked trailer\n" if $eof;
            return (undef, length($s) + 1);
        }

        if (length $s < $pos + $size + 2) {
            die "connection closed in a chunk\n" if $eof;
            return (undef, $pos + $size + 2);
        }
        $out .= substr($s, $pos, $size);
        $pos += $size + 2;
    }
}


# ---- processes and files -----------------------------------------------

sub _proc_stat {
    my $pid = shift;
    my $st = _slurp("/proc/$pid/stat") // return;
    my $i = rindex($st, ')');

    # a process that is going away may leave an empty file
    return if $i < 0 || $i + 2 > length $st;

    my @f = split ' ', substr($st, $i + 2);

    return { state => $f[0], ppid => $f[1] };
}


sub pid_alive {
    my $pid = shift;
    my $st = _proc_stat($pid) // return 0;

    return $st->{state} ne 'Z' && $st->{state} ne 'X';
}


sub _children {
    my $ppid = shift;
    my @kids;

    opendir my $d, '/proc' or croak "opendir /proc: $!";
    for my $p (grep { /^\d+$/ } readdir $d) {
        my $st = _proc_stat($p) // next;

        push @kids, $p if $st->{ppid} == $ppid && $st->{state} ne 'Z';
    }

    return @kids;
}


# A socket on 127.0.0.1:$port in the LISTEN state.  Read from /proc, so
# that probing does not leave a connection behind in nginx's logs.
sub _listening {
    my $port = shift;
    my $want = sprintf '0100007F:%04X', $port;
    my $tcp = _slurp('/proc/net/tcp');

    return $tcp =~ /^\s*\d+:\s+\Q$want\E\s+\S+\s+0A\s/m if defined $tcp;

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp');
    return defined $s;
}


sub _wait_gone {
    my ($pid, $timeout) = @_;
    my $deadline = time + $timeout;

    while (pid_alive($pid)) {
        return 0 if time > $deadline;
        sleep 0.02;
    }
    return 1;
}


sub _wait_for {
    my ($self, $cond, $what) = @_;
    my $deadline = time + $STARTUP_TIMEOUT;

    until ($cond->()) {
        croak "timed out after ${STARTUP_TIMEOUT}s waiting for $what"
            if time > $deadline;
        sleep 0.02;
    }
}


my %E_FLAG;

# "-e" (the start-up error log) exists since nginx 1.19.5.
sub _has_e_flag {
    my $bin = shift;

    return $E_FLAG{$bin} //= do {
        my ($v) = (nginx_version($bin) // '0') =~ /^(\d+\.\d+\.\d+)/;
        version_cmp($v // '0.0.0', '1.19.5') >= 0 ? 1 : 0;
    };
}


my %VERSION;

sub nginx_version {
    my $bin = shift // $ENV{TEST_NGINX_BINARY} // '/usr/sbin/nginx';

    return $VERSION{$bin} //= do {
        my $out = `'$bin' -v 2>&1`;
        $out =~ m{nginx/(\S+)} ? $1 : undef;
    };
}


sub version_cmp {
    my ($x, $y) = @_;
    my @x = split /\./, $x;
    my @y = split /\./, $y;

    while (@x || @y) {
        my $c = (shift(@x) // 0) <=> (shift(@y) // 0);
        return $c if $c;
    }
    return 0;
}


sub _read_pid {
    my $s = _slurp(shift) // return undef;

    return $s =~ /^(\d+)/ ? $1 : undef;
}


sub _slurp {
    my $file = shift;
    my $fh;

    open $fh, '<:raw', $file or return undef;
    local $/;
    return scalar(<$fh>) // '';
}


sub _spew {
    my ($file, $content) = @_;

    open my $fh, '>:raw', $file or croak "cannot write $file: $!";
    print {$fh} $content // '' or croak "cannot write $file: $!";
    close $fh or croak "cannot write $file: $!";
}


sub _tail {
    my ($text, $n) = @_;
    my @l = split /\n/, $text;

    return '' unless @l;
    return join("\n", 'error.log (tail):', @l[_max(0, $#l - $n + 1) .. $#l])
           . "\n";
}


sub _preview {
    my $s = substr(shift, 0, 200);

    $s =~ s/([^\x20-\x7e])/sprintf '\\x%02x', ord $1/ge;
    return "\"$s\"";
}


sub _min { $_[0] < $_[1] ? $_[0] : $_[1] }
sub _max { $_[0] > $_[1] ? $_[0] : $_[1] }


sub stop_all {
    for my $s (values %LIVE) {
        eval { $s->stop } if $s && $s->{owner} == $$;
    }
}


# Ctrl-C reaches prove and us, not the daemonized nginx: stop it here.
for my $sig (qw(INT TERM)) {
    $SIG{$sig} = sub { stop_all(); exit 128 + ($sig eq 'INT' ? 2 : 15) }
        if !defined $SIG{$sig} || $SIG{$sig} eq 'DEFAULT' || $SIG{$sig} eq '';
}

END {
    local $?;
    stop_all();
}

1;
