//! UDP, unix sockets and descriptor exhaustion through the facade.

mod support;

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::on_workers;
use sylvan::net::unix::{UnixListener, UnixStream};
use sylvan::net::{TcpListener, TcpStream, UdpSocket};

#[sylvan::test(workers = 2)]
fn udp_round_trips_between_fibers() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let echo = sylvan::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..200 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..n], from).unwrap();
        }
    });
    let clients: Vec<_> = (0..4u8)
        .map(|c| {
            sylvan::spawn(move || {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.connect(addr).unwrap();
                assert_eq!(s.peer_addr().unwrap(), addr);
                for i in 0..50u8 {
                    s.send(&[c, i]).unwrap();
                    let mut b = [0u8; 8];
                    let n = s.recv(&mut b).unwrap();
                    assert_eq!(&b[..n], &[c, i]);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    echo.join().unwrap();
}

#[sylvan::test(workers = 1)]
fn udp_receive_timeout_and_peek() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let start = Instant::now();
    let err = a.recv_from(&mut [0u8; 4]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(start.elapsed() >= Duration::from_millis(20));
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    b.send_to(b"peek", a.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 8];
    let (n, from) = a.peek_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"peek"[..], b.local_addr().unwrap()));
    let (n, _) = a.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"peek");
}

#[sylvan::test(workers = 2)]
fn udp_shared_by_several_receivers_delivers_each_datagram_once() {
    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
    let addr = sock.local_addr().unwrap();
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let s = sock.clone();
            let received = received.clone();
            sylvan::spawn(move || {
                let mut got = Vec::new();
                let mut b = [0u8; 4];
                loop {
                    let n = s.recv(&mut b).unwrap();
                    let v = u32::from_le_bytes(b[..n].try_into().unwrap());
                    if v == u32::MAX {
                        return got;
                    }
                    got.push(v);
                    received.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Loopback UDP drops datagrams when the receive buffer overflows (a
    // loaded machine lets it fill): keep at most 32 in flight, so every
    // datagram, and every end marker, arrives.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for i in 0..400u32 {
        while i as usize - received.load(std::sync::atomic::Ordering::SeqCst) >= 32 {
            assert!(
                std::time::Instant::now() < deadline,
                "the receivers stopped at {}",
                received.load(std::sync::atomic::Ordering::SeqCst)
            );
            sylvan::sleep(std::time::Duration::from_millis(1));
        }
        tx.send_to(&i.to_le_bytes(), addr).unwrap();
    }
    for _ in 0..4 {
        tx.send_to(&u32::MAX.to_le_bytes(), addr).unwrap();
    }
    let mut all: Vec<u32> = receivers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..400).collect::<Vec<_>>());
}

#[test]
fn unix_echo_with_many_fibers() {
    let dir = std::env::temp_dir().join(format!("sylvan-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let _ = std::fs::remove_file(&path);
    let p = path.clone();
    on_workers(2, move || {
        let listener = UnixListener::bind(&p).unwrap();
        sylvan::spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                sylvan::spawn(move || {
                    let mut buf = [0u8; 1024];
                    loop {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => conn.write_all(&buf[..n]).unwrap(),
                        }
                    }
                });
            }
        });
        let clients: Vec<_> = (0..100u8)
            .map(|c| {
                let p = p.clone();
                sylvan::spawn(move || {
                    let mut s = UnixStream::connect(&p).unwrap();
                    for i in 0..20u8 {
                        s.write_all(&[c, i, c ^ i]).unwrap();
                        let mut b = [0u8; 3];
                        s.read_exact(&mut b).unwrap();
                        assert_eq!(b, [c, i, c ^ i]);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[sylvan::test(workers = 1)]
fn unix_pair_half_close_and_timeouts() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let reader = sylvan::spawn(move || {
        let mut s = String::new();
        b.read_to_string(&mut s).unwrap();
        b.write_all(s.to_uppercase().as_bytes()).unwrap();
    });
    a.write_all(b"shout").unwrap();
    a.shutdown(std::net::Shutdown::Write).unwrap();
    let mut s = String::new();
    a.read_to_string(&mut s).unwrap();
    assert_eq!(s, "SHOUT");
    reader.join().unwrap();
    let (c, _d) = UnixStream::pair().unwrap();
    c.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    assert_eq!(
        (&c).read(&mut [0u8; 1]).unwrap_err().kind(),
        io::ErrorKind::TimedOut
    );
}

/// With `RLIMIT_NOFILE` lowered, an accept loop meets `EMFILE`: it must not
/// fail, not spin, and must serve the waiting connections once descriptors
/// free up. Runs in a child process (the limit is process-wide).
#[test]
fn accept_survives_descriptor_exhaustion() {
    if support::child_role().as_deref() == Some("emfile") {
        return emfile_child();
    }
    let out = support::run_child("accept_survives_descriptor_exhaustion", "emfile");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("emfile-ok"), "{stdout}\n{stderr}");
}

fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the rusage it is given; it is valid for writes.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: getrusage returned 0, so it initialised `usage`.
    let u = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn emfile_child() {
    const CLIENTS: usize = 30;
    const SPARE: usize = 10;
    let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Every client connects first (the kernel queues them in the backlog).
    let mut clients: Vec<std::net::TcpStream> = (0..CLIENTS)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    // Leave room for SPARE accepted connections, then the limit bites.
    let limit = (support::open_fds() + SPARE) as libc::rlim_t;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = limit;
    // SAFETY: `lim` is a valid rlimit; setrlimit only reads it.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);

    let held = Arc::new(std::sync::Mutex::new(Vec::<TcpStream>::new()));
    let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = {
        let (held, accepted, release) = (held.clone(), accepted.clone(), release.clone());
        rt.spawn(move || {
            while accepted.load(std::sync::atomic::Ordering::SeqCst) < CLIENTS {
                let (mut s, _) = listener.accept().expect("accept never fails on EMFILE");
                s.write_all(b"+").unwrap();
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if !release.load(std::sync::atomic::Ordering::SeqCst) {
                    held.lock().unwrap().push(s);
                }
            }
        })
    };
    // The server fills the limit, then backs off.
    let deadline = Instant::now() + Duration::from_secs(10);
    while accepted.load(std::sync::atomic::Ordering::SeqCst) < SPARE {
        assert!(Instant::now() < deadline, "server never accepted {SPARE}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let cpu0 = cpu_time();
    std::thread::sleep(Duration::from_millis(500));
    let burnt = cpu_time() - cpu0;
    let stuck_at = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        stuck_at < CLIENTS,
        "the limit should have stopped the server"
    );
    assert!(
        burnt < Duration::from_millis(150),
        "accept loop spun while out of descriptors: {burnt:?} CPU in 500 ms"
    );
    // Free descriptors: the server must pick the rest up.
    release.store(true, std::sync::atomic::Ordering::SeqCst);
    drop(std::mem::take(&mut *held.lock().unwrap()));
    server.join().unwrap();
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), CLIENTS);
    for c in clients.iter_mut() {
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"+");
    }
    println!("emfile-ok (stalled at {stuck_at}, {burnt:?} CPU while stalled)");
}

#[sylvan::test(workers = 1)]
fn a_fiber_whose_reads_never_wait_still_lets_its_neighbours_run() {
    // 64 KiB already queued: 4,096 reads of 16 bytes that all succeed at
    // once. Without a cooperative budget the reader would finish them all
    // before the fiber beside it (same worker) ever ran.
    const TOTAL: usize = 64 * 1024;
    let (mut reader, writer) = UnixStream::pair().unwrap();
    let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let filler = std::thread::spawn(move || {
        // A plain thread, so the reader's socket fills without any fiber.
        let mut writer = writer;
        writer.write_all(&vec![7u8; TOTAL]).unwrap();
        writer
    });
    let writer = filler.join().unwrap();
    let ticker = {
        let ticks = ticks.clone();
        sylvan::spawn_local(move || {
            for _ in 0..8 {
                ticks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                sylvan::yield_now();
            }
        })
    };
    let mut buf = [0u8; 16];
    let mut read = 0;
    let mut ticks_seen_midway = 0;
    while read < TOTAL {
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0 && buf[..n].iter().all(|&b| b == 7));
        read += n;
        if read == TOTAL / 2 {
            ticks_seen_midway = ticks.load(std::sync::atomic::Ordering::SeqCst);
        }
    }
    assert!(
        ticks_seen_midway >= 8,
        "the other fiber ran {ticks_seen_midway} of 8 steps while half the data was read"
    );
    ticker.join().unwrap();
    drop(writer);
    assert_eq!(
        reader.read(&mut buf).unwrap(),
        0,
        "no byte lost or left over"
    );
}

/// Errors name what failed, as Go's do, keeping std's `ErrorKind`: a bind
/// to a port in use, a connect to a closed port, a host that does not
/// resolve (under `.invalid`, so no query leaves the machine).
#[test]
fn errors_name_the_address_or_host() {
    sylvan::Runtime::builder()
        .workers(1)
        .build()
        .unwrap()
        .block_on(|| {
            let taken = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = taken.local_addr().unwrap();
            let e = sylvan::net::TcpListener::builder()
                .bind(addr)
                .expect_err("the port is taken");
            assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
            assert!(
                e.to_string().starts_with(&format!("bind tcp {addr}: ")),
                "{e}"
            );

            drop(taken);
            let e = sylvan::net::TcpStream::connect(addr).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
            assert!(
                e.to_string().starts_with(&format!("connect tcp {addr}: ")),
                "{e}"
            );

            let e = sylvan::net::TcpStream::connect("nosuch.invalid:80").unwrap_err();
            assert!(e.to_string().starts_with("lookup nosuch.invalid: "), "{e}");

            let e = sylvan::net::UdpSocket::bind("192.0.2.1:0").unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::AddrNotAvailable);
            assert!(e.to_string().starts_with("bind udp 192.0.2.1:0: "), "{e}");

            let e = sylvan::net::unix::UnixStream::connect("/nonexistent/sylvan.sock").unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
            assert!(
                e.to_string()
                    .starts_with("connect unix /nonexistent/sylvan.sock: "),
                "{e}"
            );
        });
}
