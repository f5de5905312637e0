//! Slow and hostile clients, a small bounded version of `stress/hostile.py`: while they hold connections a
//! normal client is still served, and once the server's timeouts pass every socket and file it opened for
//! them is closed again (`/proc/PID/fd`).

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use plugd_tests::{Server, TempDir};

/// Open descriptors of process `pid`.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

/// What `pid`'s descriptors point to, for failure messages.
fn fd_targets(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .map(|target| target.display().to_string())
        .collect()
}

/// Waits until `pid` has at most `baseline` descriptors; returns the count it ended with.
fn wait_fds_at_most(pid: u32, baseline: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let now = fd_count(pid);
        if now <= baseline || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The server's descriptor count once it is fully up: `listening on` is logged before the signal watcher
/// opens its socket pair, so count only after a request has been served and a moment has passed.
fn settled_fd_count(server: &Server) -> usize {
    normal_request_works(server);
    std::thread::sleep(Duration::from_millis(300));
    fd_count(server.pid())
}

/// A normal request on a fresh connection succeeds within a generous bound.
fn normal_request_works(server: &Server) {
    let started = Instant::now();
    let response = server.get("/static/test.html");
    assert_eq!(response.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a normal request took {:?}",
        started.elapsed()
    );
}

#[test]
fn slow_headers_and_stalled_bodies_are_cut_and_everything_is_released() {
    let server = Server::start(&["--header-timeout", "1", "--body-timeout", "1"]);
    let pid = server.pid();
    let baseline = settled_fd_count(&server);

    // 100 clients sending a request head one byte at a time, 20 stalling in the middle of a body.
    let mut slow: Vec<TcpStream> = (0..100)
        .map(|_| plugd_tests::connect(server.addr()))
        .collect();
    let mut stalled: Vec<TcpStream> = (0..20)
        .map(|_| plugd_tests::connect(server.addr()))
        .collect();
    for stream in &mut stalled {
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n0123456789")
            .unwrap();
    }
    let head = b"GET /static/test.html HTTP/1.1\r\nHost: slow\r\n\r\n";
    for byte in head.iter().take(3) {
        for stream in &mut slow {
            // The server may already have cut this one: that is what it should do.
            let _ = stream.write_all(&[*byte]);
        }
        normal_request_works(&server);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        fd_count(pid) > baseline,
        "the hostile connections never reached the server"
    );

    // Nobody sends anything more: the header and body timeouts (1 s) must free every connection.
    let left = wait_fds_at_most(pid, baseline, Duration::from_secs(8));
    assert!(
        left <= baseline,
        "{left} descriptors open 8 s after the timeouts, {baseline} at the start: {:?}",
        fd_targets(pid)
    );
    normal_request_works(&server);
    drop((slow, stalled));
}

/// A client that requests a large file and never reads holds the server's socket and the open file; the send
/// timeout (here 1 s without progress) must close both.
#[test]
fn a_client_that_never_reads_is_cut_after_the_send_timeout() {
    let site = TempDir::new("hostile-static");
    // Far more than the loopback socket buffers hold, so the server's send side fills and stays full.
    std::fs::write(site.join("big.bin"), vec![b'x'; 64 * 1024 * 1024]).unwrap();
    std::fs::write(site.join("test.html"), "<p>normal</p>").unwrap();
    let static_dir = site.path().to_str().unwrap().to_owned();
    let server = Server::start(&["--static-dir", &static_dir, "--send-timeout", "1"]);
    let pid = server.pid();
    let baseline = settled_fd_count(&server);

    let readers_that_never_read: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut stream = plugd_tests::connect(server.addr());
            stream
                .write_all(b"GET /static/big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
                .unwrap();
            stream
        })
        .collect();
    // Each holds a socket and the open file on the server.
    let deadline = Instant::now() + Duration::from_secs(5);
    while fd_count(pid) < baseline + 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        fd_count(pid) >= baseline + 10,
        "the downloads never started"
    );
    normal_request_works(&server);

    let left = wait_fds_at_most(pid, baseline, Duration::from_secs(8));
    assert!(
        left <= baseline,
        "{left} descriptors still open 8 s after a 1 s send timeout ({baseline} at the start): \
         the non-reading clients were never cut"
    );
    drop(readers_that_never_read);
}

/// Slow clients must cost only the bytes they sent (docs/ARCHITECTURE.md §4.5: a connection keeps just the
/// leftover of a partial request, about 60 B). A head arriving in two or more reads kept the whole 64 KiB read chunk per
/// connection: 1,000 slowloris connections took the server from 5 MB to 78 MB of RSS in `stress/hostile.py`.
#[test]
fn slow_clients_do_not_pin_a_read_buffer_each() {
    const CLIENTS: usize = 400;
    let server = Server::start(&[]);
    let pid = server.pid();
    settled_fd_count(&server);
    // VmData (heap and other private mappings) counts what is allocated, touched or not; RSS would only show
    // it once churn reuses the memory, as it does in the long run.
    let before = plugd_tests::proc_status(pid, "VmData");
    let mut slow: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| plugd_tests::connect(server.addr()))
        .collect();
    // Two separate reads of a partial head on every connection.
    for byte in [b'G', b'E'] {
        for stream in &mut slow {
            stream.write_all(&[byte]).unwrap();
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let grown = plugd_tests::proc_status(pid, "VmData").saturating_sub(before);
    // 400 connections x 64 KiB would be 25 MiB; their own bytes and bookkeeping are well under 8 MiB.
    assert!(
        grown < 8 * 1024,
        "VmData grew {grown} KiB for {CLIENTS} connections that sent 2 bytes each"
    );
    drop(slow);
}
