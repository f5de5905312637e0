#!/usr/bin/env python3
"""Slow and hostile clients against a release plugd, while a normal client measures latency.

    python3 stress/hostile.py                      # defaults: 1000 slow + 200 stalled + 200 non-reading, ~100 s
    python3 stress/hostile.py --short-timeouts     # plugd with 2 s header / 3 s body / 3 s idle / 3 s send timeouts, ~45 s
    python3 stress/hostile.py --slow 200 --stall 50 --noread 50 --attack 10   # a quick variant

Attackers (all on 127.0.0.1, bounded in count and time):
  * slow:   each sends one byte of a request head every 2 s (slowloris); cut by the server, it reconnects.
  * stall:  sends a POST head with Content-Length 65536 and 1000 body bytes, then nothing; reconnects when cut.
  * noread: requests a 16 MiB static file and never reads, so the server's send buffer fills.
Meanwhile a normal client sends GET /plaintext every 20 ms, alternating a keep-alive connection and a fresh
one, and records each latency.

Phases: attack (--attack seconds), then abandon (attackers stop sending but keep their sockets open: only the
server's own timeouts can free them; bounded by the longest timeout + --grace), then the clients close
everything. Pass: normal-client p99 < 100 ms and no failed normal request during the attack; fd and thread counts
back to their starting values after the abandon phase and again after the close.

By default the script builds and starts `target/release/plugd` with the example plugins (its own temporary
plugin and static folders) and stops it by PID at the end. `--port P --pid N` uses a running server instead
(it must serve /plaintext and /static/big.bin, and the script does not stop it). Exit status 0 on pass, 1 on fail.
"""

import argparse
import multiprocessing
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIG_FILE_BYTES = 16 * 1024 * 1024
SLOW_HEAD = b"GET /plaintext HTTP/1.1\r\nHost: slow\r\nUser-Agent: slowloris\r\nAccept: */*\r\n\r\n"
STALL_HEAD = b"POST /echo HTTP/1.1\r\nHost: stall\r\nContent-Length: 65536\r\n\r\n" + b"x" * 1000
NOREAD_REQ = b"GET /static/big.bin HTTP/1.1\r\nHost: noread\r\n\r\n"
#: A hard bound on the whole run, whatever the arguments say.
HARD_LIMIT_S = 600


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_kinds(pid):
    """How many of the process's descriptors are sockets, and how many regular files (served files)."""
    sockets = files = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            sockets += 1
        elif target.startswith("/") and not target.startswith("/dev/"):
            files += 1
    return sockets, files


def status_field(pid, name):
    """An integer field of /proc/PID/status (`Threads`, `VmRSS` in KiB)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return -1


def thread_count(pid):
    return status_field(pid, "Threads")


def rss_kib(pid):
    return status_field(pid, "VmRSS")


def server_send_queue(port):
    """Bytes queued in the kernel on the server's side of its connections (tx_queue of /proc/net/tcp)."""
    total = sockets = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local_port = int(fields[1].rsplit(":", 1)[1], 16)
                    tx = int(fields[4].split(":")[0], 16)
                    if local_port == port and tx > 0:
                        total += tx
                        sockets += 1
        except FileNotFoundError:
            pass
    return sockets, total


def start_plugd(args, workdir):
    if not args.no_build:
        log("building release plugd and the example plugins")
        subprocess.run(
            ["cargo", "build", "--release", "-q", "-p", "plugd", "-p", "hello", "-p", "echo", "-p", "counter"],
            cwd=ROOT,
            check=True,
        )
    release = args.release_dir
    plugins = os.path.join(workdir, "plugins")
    static = os.path.join(workdir, "static")
    os.makedirs(plugins)
    shutil.copytree(os.path.join(ROOT, "static"), static)
    for name in ("hello", "echo", "counter"):
        shutil.copy(os.path.join(release, f"lib{name}.so"), plugins)
    with open(os.path.join(static, "big.bin"), "wb") as f:
        f.write(os.urandom(1024 * 1024) * (BIG_FILE_BYTES // (1024 * 1024)))
    cmd = [
        os.path.join(release, "plugd"),
        "--host", "127.0.0.1", "--port", "0",
        "--plugin-dir", plugins, "--static-dir", static,
    ]
    if args.short_timeouts:
        cmd += ["--header-timeout", "2", "--body-timeout", "3", "--idle-timeout", "3", "--send-timeout", "3"]
    cmd += args.plugd_arg
    logfile = open(os.path.join(workdir, "plugd.log"), "wb")
    env = dict(os.environ, RUST_LOG=args.rust_log, RUST_LOG_STYLE="never")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logfile, stderr=logfile, env=env)
    log(f"started plugd pid {proc.pid}: {' '.join(cmd[1:])}")
    deadline = time.time() + 20
    while time.time() < deadline:
        with open(logfile.name, "rb") as f:
            m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", f.read())
        if m:
            return proc, int(m.group(1)), logfile.name
        if proc.poll() is not None:
            sys.exit(f"plugd exited with {proc.returncode} before listening; see {logfile.name}")
        time.sleep(0.05)
    proc.kill()
    sys.exit("plugd did not start listening within 20 s")


class Attack:
    """Every hostile connection, driven from one thread with non-blocking sockets."""

    def __init__(self, port, slow, stall, noread):
        self.port = port
        self.targets = {"slow": slow, "stall": stall, "noread": noread}
        self.sel = selectors.DefaultSelector()
        # socket -> [kind, bytes sent of its script, time of next send]
        self.conns = {}
        self.feeding = True  # attack phase: send and reconnect; abandon phase: neither
        self.stop = False
        self.opened = {k: 0 for k in self.targets}
        self.cut = {k: 0 for k in self.targets}  # closed by the server
        self.connect_errors = 0

    def open(self, kind, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if kind == "noread":
            # A small receive window makes the server's side fill after a few hundred KiB.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        try:
            s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            self.connect_errors += 1
            s.close()
            return
        # Spread the slow clients' bytes over the 2 s period.
        first = now + (len(self.conns) % 200) * 0.01
        self.conns[s] = [kind, 0, first]
        if kind != "noread":
            # Non-readers are never polled for reading (that is the point); a close is noticed via TCP_INFO.
            self.sel.register(s, selectors.EVENT_READ)
        self.opened[kind] += 1

    def live(self, kind):
        return sum(1 for c in self.conns.values() if c[0] == kind)

    def drop(self, s, by_server):
        kind = self.conns.pop(s)[0]
        if by_server:
            self.cut[kind] += 1
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()

    def step_send(self, s, state, now):
        kind, sent, due = state
        if now < due:
            return
        try:
            if kind == "slow":
                i = sent % len(SLOW_HEAD)
                s.send(SLOW_HEAD[i:i + 1])
                state[1] += 1
                state[2] = now + 2.0
            elif sent == 0:
                data = STALL_HEAD if kind == "stall" else NOREAD_REQ
                n = s.send(data)
                state[1] = n if n < len(data) else 1 << 30
                state[2] = now + 0.05
            elif sent < 1 << 30:
                data = STALL_HEAD if kind == "stall" else NOREAD_REQ
                n = s.send(data[sent:])
                state[1] = sent + n if sent + n < len(data) else 1 << 30
                state[2] = now + 0.05
            else:
                state[2] = now + 3600
        except BlockingIOError:
            state[2] = now + 0.05
        except OSError:
            self.drop(s, by_server=True)

    def run(self):
        last_check = 0.0
        while not self.stop:
            now = time.time()
            if self.feeding:
                opened_now = 0
                for kind, target in self.targets.items():
                    missing = target - self.live(kind)
                    # At most 100 new connections per round, so the listener backlog is not flooded at once.
                    for _ in range(min(missing, 100 - opened_now)):
                        self.open(kind, now)
                        opened_now += 1
                for s, state in list(self.conns.items()):
                    self.step_send(s, state, now)
            for key, _ in self.sel.select(timeout=0.02):
                s = key.fileobj
                if s not in self.conns:
                    continue
                kind = self.conns[s][0]
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    self.drop(s, by_server=True)
                    continue
                if data == b"":
                    self.drop(s, by_server=True)
            if now - last_check >= 1.0:
                last_check = now
                for s, state in list(self.conns.items()):
                    if state[0] == "noread" and self._closed_by_peer(s):
                        self.drop(s, by_server=True)

    @staticmethod
    def _closed_by_peer(s):
        # TCP_INFO's first byte is the state: 1 ESTABLISHED, 2 SYN_SENT, 8 CLOSE_WAIT (the server closed). A server that
        # closes with its send queue full queues its FIN behind data this client never reads, so such a
        # close is seen on the server's side (its fd count) rather than here.
        try:
            info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
        except OSError:
            return True
        return info[0] not in (1, 2)  # ESTABLISHED, SYN_SENT

    def close_all(self):
        for s in list(self.conns):
            self.drop(s, by_server=False)


class NormalClient:
    """GET /plaintext every 20 ms, alternating a kept-alive connection and a fresh one."""

    def __init__(self, port):
        self.port = port
        self.latencies = {"keepalive": [], "fresh": []}
        self.failures = []
        self.stop = False
        self.ka = None

    def request(self, sock):
        sock.sendall(b"GET /plaintext HTTP/1.1\r\nHost: normal\r\n\r\n")
        buf = b""
        while b"Hello, World!" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed after {buf!r}")
            buf += chunk
        if not buf.startswith(b"HTTP/1.1 200 "):
            raise ConnectionError(f"unexpected response {buf[:80]!r}")

    def one(self, fresh):
        t0 = time.perf_counter()
        try:
            if fresh:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.request(s)
            else:
                if self.ka is None:
                    self.ka = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                    self.ka.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.request(self.ka)
        except OSError as e:
            self.failures.append(f"{'fresh' if fresh else 'keepalive'}: {e}")
            if not fresh and self.ka is not None:
                self.ka.close()
                self.ka = None
            return
        self.latencies["fresh" if fresh else "keepalive"].append((time.perf_counter() - t0) * 1000)

    def run(self):
        i = 0
        while not self.stop:
            self.one(fresh=i % 2 == 1)
            i += 1
            time.sleep(0.02)
        if self.ka is not None:
            self.ka.close()


def normal_process(port, seconds, results):
    """The normal client for `seconds`, in a process of its own; sends back (latencies, failures)."""
    client = NormalClient(port)
    stopper = threading.Timer(seconds, lambda: setattr(client, "stop", True))
    stopper.start()
    client.run()
    results.send((client.latencies, client.failures))


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def wait_baseline(pid, fds0, threads0, limit_s, what):
    t0 = time.time()
    while True:
        fds, threads = fd_count(pid), thread_count(pid)
        if fds <= fds0 and threads <= threads0:
            took = time.time() - t0
            log(f"{what}: fds {fds} (start {fds0}), threads {threads} (start {threads0}) after {took:.1f} s")
            return True, took
        if time.time() - t0 > limit_s:
            sockets, files = fd_kinds(pid)
            log(f"{what}: NOT back after {limit_s:.0f} s: fds {fds} (start {fds0}; now {sockets} sockets, "
                f"{files} open files), threads {threads} (start {threads0})")
            return False, limit_s
        time.sleep(0.25)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--slow", type=int, default=1000, help="slowloris connections (1 byte / 2 s)")
    p.add_argument("--stall", type=int, default=200, help="connections stalled mid-body")
    p.add_argument("--noread", type=int, default=200, help="connections that never read their response")
    p.add_argument("--attack", type=float, default=30, help="seconds of attack while latency is measured")
    p.add_argument("--grace", type=float, default=10, help="seconds past the longest timeout to free everything")
    p.add_argument("--short-timeouts", action="store_true", help="start plugd with 2/3/3/3 s header/body/idle/send timeouts")
    p.add_argument("--port", type=int, help="use a running plugd on 127.0.0.1:PORT (with --pid)")
    p.add_argument("--pid", type=int, help="its process id (for /proc/PID/fd)")
    p.add_argument("--timeout", type=float, default=None,
                   help="longest server timeout in seconds, for --port/--pid (default 60, plugd's idle timeout)")
    p.add_argument("--no-build", action="store_true", help="do not run cargo build first")
    p.add_argument("--release-dir", default=os.path.join(ROOT, "target", "release"),
                   help="folder holding plugd and lib{hello,echo,counter}.so (default target/release)")
    p.add_argument("--rust-log", default="info,access=warn", help="RUST_LOG for the started plugd")
    p.add_argument("--plugd-arg", action="append", default=[], help="extra argument for the started plugd")
    p.add_argument("--max-p99-ms", type=float, default=100.0)
    args = p.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.slow + args.stall + args.noread + 512
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(need, soft), hard), hard))
    signal.alarm(HARD_LIMIT_S)

    workdir = tempfile.mkdtemp(prefix="plugd-hostile-")
    proc = None
    try:
        if args.port:
            if not args.pid:
                sys.exit("--port needs --pid")
            port, pid, logpath = args.port, args.pid, None
            longest = args.timeout or 60.0
        else:
            proc, port, logpath = start_plugd(args, workdir)
            pid = proc.pid
            longest = 3.0 if args.short_timeouts else 60.0
        time.sleep(0.5)
        fds0, threads0, rss0 = fd_count(pid), thread_count(pid), rss_kib(pid)
        log(f"baseline: fds {fds0}, threads {threads0}, rss {rss0} KiB")

        attack = Attack(port, args.slow, args.stall, args.noread)
        normal = NormalClient(port)  # filled in from the normal-client process
        at = threading.Thread(target=attack.run, daemon=True)
        at.start()
        # Let the attackers connect before measuring.
        ramp_deadline = time.time() + 15
        while time.time() < ramp_deadline and sum(attack.live(k) for k in attack.targets) < sum(attack.targets.values()):
            time.sleep(0.1)
        log(f"attack running: {sum(attack.live(k) for k in attack.targets)} hostile connections")
        # The normal client runs in its own process: sharing the attackers' interpreter (and its GIL) would
        # add their loop's time to its latencies.
        ctx = multiprocessing.get_context("fork")
        results_rx, results_tx = ctx.Pipe(duplex=False)
        nt = ctx.Process(target=normal_process, args=(port, args.attack, results_tx), daemon=True)
        nt.start()
        peak_fds = peak_threads = peak_rss = 0
        peak_queue = (0, 0)
        t_end = time.time() + args.attack
        while time.time() < t_end:
            time.sleep(1)
            peak_fds = max(peak_fds, fd_count(pid))
            peak_threads = max(peak_threads, thread_count(pid))
            peak_rss = max(peak_rss, rss_kib(pid))
            q = server_send_queue(port)
            if q[1] > peak_queue[1]:
                peak_queue = q
        if not results_rx.poll(30):
            sys.exit("the normal client did not report")
        normal.latencies, normal.failures = results_rx.recv()
        nt.join(5)
        live = {k: attack.live(k) for k in attack.targets}
        log(f"attack over: live {live}, opened {attack.opened}, cut by server {attack.cut}, "
            f"connect errors {attack.connect_errors}")
        log(f"server peak during attack: fds {peak_fds}, threads {peak_threads}, rss {peak_rss} KiB; "
            f"send queue {peak_queue[1] // 1024} KiB over {peak_queue[0]} sockets")
        every = normal.latencies["keepalive"] + normal.latencies["fresh"]
        for name, values in [("all", every)] + list(normal.latencies.items()):
            log(f"normal client {name}: n={len(values)} p50={pct(values, 50):.2f} ms "
                f"p99={pct(values, 99):.2f} ms max={max(values) if values else float('nan'):.2f} ms")
        log(f"normal client failures: {len(normal.failures)} {normal.failures[:3]}")

        # Abandon: the attackers stay connected but silent; only the server's timeouts can free them.
        attack.feeding = False
        log(f"abandon phase: attackers silent, waiting for the server's timeouts (longest {longest:.0f} s)")
        freed, freed_after = wait_baseline(pid, fds0, threads0, longest + args.grace, "after timeouts")
        log(f"abandon phase: client side saw {attack.cut} cuts in total; still open {sum(attack.live(k) for k in attack.targets)}")
        attack.stop = True
        at.join()
        attack.close_all()
        closed, _ = wait_baseline(pid, fds0, threads0, 5, "after the clients closed")
        rss1 = rss_kib(pid)
        log(f"rss: start {rss0} KiB, peak {peak_rss} KiB, end {rss1} KiB")

        ok = True
        p99 = pct(every, 99)
        if not every or p99 >= args.max_p99_ms:
            log(f"FAIL: normal-client p99 {p99:.2f} ms >= {args.max_p99_ms} ms")
            ok = False
        if normal.failures:
            log("FAIL: normal-client requests failed")
            ok = False
        if not freed or not closed:
            log("FAIL: sockets or threads not released")
            ok = False
        if proc is not None:
            if proc.poll() is not None:
                log(f"FAIL: plugd exited with {proc.returncode}")
                ok = False
            with open(logpath, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            panics = text.count("panicked")
            if panics:
                log(f"FAIL: {panics} panics in plugd's log ({logpath})")
                ok = False
        log("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
