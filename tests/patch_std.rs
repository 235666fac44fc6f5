//! The `patch` feature: std's blocking calls (and crates built on them)
//! inside fibers park the fiber, not the worker. Each test runs on ONE
//! worker, so a call that blocked the worker would show as lost time or a
//! hang; a watchdog turns a hang into a failure.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod patch_support;
#[path = "../examples/common/slow_http.rs"]
mod slow_http;

use patch_support::{one_worker, pipe, Ticker};

#[test]
fn the_patch_is_active() {
    assert!(sylvan::patch::is_active());
}

/// 200 fibers in `std::thread::sleep(200 ms)` at once.
#[test]
fn std_sleep_parks_the_fiber() {
    let elapsed = one_worker(Duration::from_secs(20), || {
        let start = Instant::now();
        let fibers: Vec<_> = (0..200)
            .map(|_| sylvan::spawn(|| std::thread::sleep(Duration::from_millis(200))))
            .collect();
        for f in fibers {
            f.join().unwrap();
        }
        start.elapsed()
    });
    assert!(
        elapsed >= Duration::from_millis(200),
        "slept only {elapsed:?}"
    );
    // Serially they would take 40 s.
    assert!(
        elapsed < Duration::from_secs(1),
        "200 sleeps took {elapsed:?}"
    );
}

/// A std `TcpListener` accept loop in a fiber serves 100 std `TcpStream`
/// client fibers of the same worker, 10 lines each.
#[test]
fn std_listener_and_streams_on_one_worker() {
    const CLIENTS: usize = 100;
    const LINES: usize = 10;
    let echoed = one_worker(Duration::from_secs(60), || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = sylvan::spawn(move || {
            let mut conns = Vec::new();
            for _ in 0..CLIENTS {
                let (stream, _) = listener.accept().unwrap();
                conns.push(sylvan::spawn(move || {
                    let mut out = stream.try_clone().unwrap();
                    for line in BufReader::new(stream).lines() {
                        let line = line.unwrap();
                        writeln!(out, "echo {line}").unwrap();
                    }
                }));
            }
            for c in conns {
                c.join().unwrap();
            }
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                sylvan::spawn(move || {
                    let stream = TcpStream::connect(addr).unwrap();
                    let mut w = stream.try_clone().unwrap();
                    let mut r = BufReader::new(stream);
                    let mut got = 0;
                    for j in 0..LINES {
                        writeln!(w, "{i}-{j}").unwrap();
                        let mut line = String::new();
                        r.read_line(&mut line).unwrap();
                        assert_eq!(line, format!("echo {i}-{j}\n"));
                        got += 1;
                    }
                    got
                })
            })
            .collect();
        let total: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        server.join().unwrap();
        total
    });
    assert_eq!(echoed, CLIENTS * LINES);
}

/// A plain-thread HTTP server that answers every request after `delay`.
fn slow_http_server(delay: Duration) -> std::net::SocketAddr {
    slow_http::start(delay, "slow hello").unwrap()
}

/// ureq (a blocking HTTP client on std::net) fans out from 100 fibers of
/// one worker to a server that answers after 300 ms.
#[test]
fn ureq_fan_out_from_one_worker() {
    let addr = slow_http_server(Duration::from_millis(300));
    let (bodies, elapsed) = one_worker(Duration::from_secs(60), move || {
        let start = Instant::now();
        let fibers: Vec<_> = (0..100)
            .map(|i| {
                sylvan::spawn(move || {
                    let url = format!("http://{addr}/page/{i}");
                    ureq::get(&url)
                        .call()
                        .unwrap()
                        .body_mut()
                        .read_to_string()
                        .unwrap()
                })
            })
            .collect();
        let bodies: Vec<String> = fibers.into_iter().map(|f| f.join().unwrap()).collect();
        (bodies, start.elapsed())
    });
    assert_eq!(bodies.len(), 100);
    assert!(bodies.iter().all(|b| b == "slow hello"));
    assert!(
        elapsed < Duration::from_secs(3),
        "100 requests took {elapsed:?}"
    );
}

/// `set_read_timeout(300 ms)` on a silent peer: the read fails with std's
/// timeout error after ~300 ms, and a 10 ms ticker fiber keeps ticking.
#[test]
fn read_timeout_on_a_silent_peer_lets_others_run() {
    let (kind, waited, ticks) = one_worker(Duration::from_secs(20), || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || listener.accept().unwrap().0);
        let ticker = Ticker::start();
        let mut stream = TcpStream::connect(addr).unwrap();
        let _silent = peer.join().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        assert_eq!(
            stream.read_timeout().unwrap(),
            Some(Duration::from_millis(300))
        );
        let start = Instant::now();
        let err = stream.read(&mut [0u8; 16]).unwrap_err();
        let waited = start.elapsed();
        (err.kind(), waited, ticker.stop())
    });
    // std reports a socket timeout as WouldBlock on Unix (EAGAIN).
    assert_eq!(kind, ErrorKind::WouldBlock);
    assert!(
        waited >= Duration::from_millis(290),
        "returned after {waited:?}"
    );
    assert!(waited < Duration::from_secs(2), "returned after {waited:?}");
    // A blocked worker would give 0; a loaded machine fewer than 30.
    assert!(ticks >= 3, "the ticker ticked {ticks} times in {waited:?}");
}

/// DNS through std (`getaddrinfo`) from many fibers at once.
#[test]
fn dns_from_many_fibers() {
    let found = one_worker(Duration::from_secs(60), || {
        let fibers: Vec<_> = (0..50)
            .map(|_| {
                sylvan::spawn(|| {
                    ("localhost", 80)
                        .to_socket_addrs()
                        .unwrap()
                        .any(|a| a.ip().is_loopback() && a.port() == 80)
                })
            })
            .collect();
        fibers
            .into_iter()
            .map(|f| f.join().unwrap())
            .filter(|ok| *ok)
            .count()
    });
    assert_eq!(found, 50);
    // The lookups ran on sylvan's blocking pool (its threads idle on for
    // seconds; nothing else in this test binary uses the pool).
    let pool_threads = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("sylvan-blocking"))
        .count();
    assert!(
        pool_threads > 0,
        "getaddrinfo did not run on the blocking pool"
    );
}

/// A plain thread's std calls block as usual — also on a socket a fiber
/// made non-blocking underneath, and its `F_GETFL` still shows blocking.
#[test]
fn plain_threads_keep_blocking_semantics() {
    use std::os::fd::AsRawFd;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    let (server, _) = listener.accept().unwrap();
    // A fiber uses the socket first (it is switched underneath)...
    let server = one_worker(Duration::from_secs(20), move || {
        let mut s = server;
        let sender = std::thread::spawn(move || {
            client.write_all(b"one").unwrap();
            client
        });
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"one");
        (s, sender.join().unwrap())
    });
    let (mut server, mut client) = server;
    // SAFETY: F_GETFL on an open descriptor.
    let flags = unsafe { libc::fcntl(server.as_raw_fd(), libc::F_GETFL) };
    assert_eq!(
        flags & libc::O_NONBLOCK,
        0,
        "the owner never asked for O_NONBLOCK"
    );
    // ...then a plain thread reads: it must block until the data comes,
    // not fail with WouldBlock.
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 3];
        server.read_exact(&mut buf).map(|_| buf)
    });
    std::thread::sleep(Duration::from_millis(50));
    client.write_all(b"two").unwrap();
    assert_eq!(&reader.join().unwrap().unwrap(), b"two");
    // And a plain thread's sleep sleeps.
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(30));
    assert!(start.elapsed() >= Duration::from_millis(30));
}

/// `sylvan::timeout` and cancellation end a patched read without unwinding
/// through std: the read returns an error, `timeout` reports `Elapsed`,
/// and the cancelled fiber's join reports the cancellation.
#[test]
fn timeout_and_cancel_interrupt_a_patched_read() {
    one_worker(Duration::from_secs(20), || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let keep = std::thread::spawn(move || {
            let a = listener.accept().unwrap().0;
            let b = listener.accept().unwrap().0;
            (a, b)
        });
        let mut s1 = TcpStream::connect(addr).unwrap();
        let mut s2 = TcpStream::connect(addr).unwrap();
        let peers = keep.join().unwrap();

        let start = Instant::now();
        let mut inner = None;
        let r = sylvan::timeout(Duration::from_millis(100), || {
            // The read ends with std's TimedOut error (ETIMEDOUT); the
            // scope still reports Elapsed.
            inner = Some(s1.read(&mut [0u8; 8]).map_err(|e| e.kind()));
        });
        assert!(r.is_err(), "a read of a silent peer must time out: {r:?}");
        assert_eq!(inner, Some(Err(ErrorKind::TimedOut)));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(100) && waited < Duration::from_secs(2));
        // Nothing was consumed and the socket still works.
        let (mut p1, p2) = peers;
        p1.write_all(b"after").unwrap();
        let mut buf = [0u8; 5];
        s1.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"after");

        let (tx, rx) = std::sync::mpsc::channel();
        let reader = sylvan::spawn(move || {
            let r = s2.read(&mut [0u8; 8]);
            tx.send(r.map_err(|e| e.raw_os_error())).unwrap();
            // The read returned an error; the next park raises the
            // cancellation.
            sylvan::sleep(Duration::from_secs(30));
        });
        sylvan::sleep(Duration::from_millis(20));
        reader.cancel();
        let err = reader.join().unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
        assert_eq!(rx.recv().unwrap(), Err(Some(libc::ECANCELED)));
        drop(p2);
    });
}

/// Reads of a pipe (a descriptor the patch must not switch) in a fiber wait
/// on the reactor while a writer fiber of the same worker runs.
#[test]
fn pipe_reads_wait_on_the_reactor() {
    let got = one_worker(Duration::from_secs(20), || {
        let (mut r, mut w) = pipe();
        let reader = sylvan::spawn(move || {
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            all
        });
        let writer = sylvan::spawn(move || {
            for i in 0..5u8 {
                std::thread::sleep(Duration::from_millis(5));
                w.write_all(&[i]).unwrap();
            }
        });
        writer.join().unwrap();
        reader.join().unwrap()
    });
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
}

/// `poll(2)` called directly (as C libraries do) parks the fiber until the
/// descriptor is ready or its timeout passes.
#[test]
fn libc_poll_parks_the_fiber() {
    use std::os::fd::AsRawFd;
    one_worker(Duration::from_secs(20), || {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let t2 = ticks.clone();
        let ticker = sylvan::spawn(move || {
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(10));
                t2.fetch_add(1, Ordering::Relaxed);
            }
            b.write_all(b"x").unwrap();
            b
        });
        let mut pfd = libc::pollfd {
            fd: a.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 5_000) };
        assert_eq!(n, 1);
        assert_ne!(pfd.revents & libc::POLLIN, 0);
        assert_eq!(
            ticks.load(Ordering::Relaxed),
            5,
            "poll returned before the writer wrote"
        );
        let _b = ticker.join().unwrap();
        // A poll that times out returns 0 after its timeout.
        let start = Instant::now();
        let mut drain = [0u8; 1];
        (&a).read_exact(&mut drain).unwrap();
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 50) };
        assert_eq!(n, 0);
        assert!(start.elapsed() >= Duration::from_millis(50));
    });
}

/// `SYLVAN_PATCH=0` turns the patch off: this test re-runs itself in a
/// child process with the variable set.
#[test]
fn sylvan_patch_0_turns_it_off() {
    if std::env::var_os("SYLVAN_PATCH_CHILD").is_some() {
        assert!(!sylvan::patch::is_active());
        // A fiber's std sleep now blocks the worker: two sleeps serialise.
        let elapsed = one_worker(Duration::from_secs(20), || {
            let start = Instant::now();
            let a = sylvan::spawn(|| std::thread::sleep(Duration::from_millis(100)));
            let b = sylvan::spawn(|| std::thread::sleep(Duration::from_millis(100)));
            a.join().unwrap();
            b.join().unwrap();
            start.elapsed()
        });
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "sylvan_patch_0_turns_it_off", "--nocapture"])
        .env("SYLVAN_PATCH", "0")
        .env("SYLVAN_PATCH_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 passed"), "the child ran no test: {text}");
}

/// libcurl — a C library with its own `poll` loop, nothing of it written
/// for sylvan — fetching from 50 fibers of one worker at once.
#[test]
fn libcurl_fan_out_from_one_worker() {
    let addr = slow_http_server(Duration::from_millis(300));
    let (bodies, elapsed) = one_worker(Duration::from_secs(60), move || {
        let start = Instant::now();
        let fibers: Vec<_> = (0..50)
            .map(|i| {
                sylvan::spawn(move || {
                    let mut body = Vec::new();
                    let mut easy = curl::easy::Easy::new();
                    easy.url(&format!("http://{addr}/curl/{i}")).unwrap();
                    {
                        let mut transfer = easy.transfer();
                        transfer
                            .write_function(|data| {
                                body.extend_from_slice(data);
                                Ok(data.len())
                            })
                            .unwrap();
                        transfer.perform().unwrap();
                    }
                    assert_eq!(easy.response_code().unwrap(), 200);
                    String::from_utf8(body).unwrap()
                })
            })
            .collect();
        let bodies: Vec<String> = fibers.into_iter().map(|f| f.join().unwrap()).collect();
        (bodies, start.elapsed())
    });
    assert_eq!(bodies.len(), 50);
    assert!(bodies.iter().all(|b| b == "slow hello"));
    assert!(
        elapsed < Duration::from_secs(3),
        "50 transfers took {elapsed:?}"
    );
}

#[path = "example_support/mod.rs"]
mod example_support;

/// The `fetch_many` example: 100 ureq fetches of 200 ms pages from fibers
/// on one worker finish together.
#[test]
fn fetch_many_example_runs() {
    let path = example_support::example("fetch_many");
    let out = std::process::Command::new(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("patch active: true"), "{stdout}");
    assert_eq!(stdout.matches("200 OK").count(), 100, "{stdout}");
    let line = stdout.lines().last().unwrap();
    assert!(line.ends_with(", 0 failed"), "{line}");
    let secs: f64 = line
        .trim_start_matches("done in ")
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let unit_ms = line.contains("ms,");
    let took = if unit_ms { secs / 1000.0 } else { secs };
    assert!(took < 5.0, "100 fetches took {line}");
}

/// What the kernel reports stays what std reports: a refused connect is
/// `ConnectionRefused` (plain and with `connect_timeout`), a closed peer
/// gives EOF, `peek` leaves the data for the next read, and a large write to
/// a slow reader is written whole (short writes continued underneath).
#[test]
fn kernel_semantics_are_kept() {
    one_worker(Duration::from_secs(30), || {
        // A port nobody listens on: bind, note the port, close.
        let refused = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = TcpStream::connect(refused).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        let err = TcpStream::connect_timeout(&refused, Duration::from_secs(2)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        const BIG: usize = 8 << 20;
        let server = sylvan::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut first = [0u8; 5];
            assert_eq!(s.peek(&mut first).unwrap(), 5);
            assert_eq!(&first, b"hello");
            let mut again = [0u8; 5];
            s.read_exact(&mut again).unwrap();
            assert_eq!(&again, b"hello", "peek must not consume");
            // Read the big payload slowly, in small pieces.
            let mut total = 0usize;
            let mut sum = 0u64;
            let mut buf = [0u8; 4096];
            while total < BIG {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "EOF after {total} bytes");
                sum += buf[..n].iter().map(|&b| b as u64).sum::<u64>();
                total += n;
                if total % (1 << 20) < 4096 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            // Then the client's shutdown: end of stream.
            assert_eq!(s.read(&mut buf).unwrap(), 0);
            (total, sum)
        });
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"hello").unwrap();
        let payload: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
        // One write call: a blocking socket takes it all.
        let n = c.write(&payload).unwrap();
        assert_eq!(n, BIG, "a blocking write returns only when all is written");
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let (total, sum) = server.join().unwrap();
        assert_eq!(total, BIG);
        assert_eq!(sum, payload.iter().map(|&b| b as u64).sum::<u64>());
    });
}

/// `set_write_timeout` on a peer that never reads: the write fails with
/// std's timeout error after about the timeout, and the worker's other
/// fibers run meanwhile.
#[test]
fn write_timeout_on_a_stalled_peer_lets_others_run() {
    let (res, waited, ticks) = one_worker(Duration::from_secs(20), || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || listener.accept().unwrap().0);
        let ticker = Ticker::start();
        let mut c = TcpStream::connect(addr).unwrap();
        let _stalled = peer.join().unwrap();
        c.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let chunk = vec![7u8; 1 << 20];
        let start = Instant::now();
        // Fill the socket buffers, then the write must time out: `waited`
        // is how long the failing call itself took.
        let (res, waited) = loop {
            let call = Instant::now();
            match c.write(&chunk) {
                Ok(_) if start.elapsed() < Duration::from_secs(10) => continue,
                other => break (other, call.elapsed()),
            }
        };
        (res.map_err(|e| e.kind()), waited, ticker.stop())
    });
    // A write that wrote nothing before its timeout: WouldBlock; one that
    // wrote part returns that count and the next one times out.
    assert_eq!(res, Err(ErrorKind::WouldBlock));
    assert!(waited >= Duration::from_millis(190), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(ticks >= 3, "the ticker ticked {ticks} times in {waited:?}");
}

/// Files are left alone (always ready; read as without the feature), and a
/// pipe — whose mode other processes may share — is never switched to
/// non-blocking, even after fibers waited on it.
#[test]
fn files_and_pipes_keep_their_mode() {
    use std::os::fd::AsRawFd;
    one_worker(Duration::from_secs(20), || {
        let text = std::fs::read_to_string("Cargo.toml").unwrap();
        assert!(text.contains("[package]"));
        let (mut r, mut w) = pipe();
        let writer = sylvan::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w.write_all(b"late").unwrap();
            w
        });
        let mut buf = [0u8; 4];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
        let w = writer.join().unwrap();
        for fd in [r.as_raw_fd(), w.as_raw_fd()] {
            // The raw system call: the hooked `fcntl` would hide a flag the
            // patch had set.
            // SAFETY: F_GETFL on an open descriptor.
            let flags = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) } as i32;
            assert_eq!(flags & libc::O_NONBLOCK, 0, "fd {fd} was switched");
        }
    });
}
