//! TCP through the facade: echo at scale, registration following the user
//! across workers and runtimes, concurrent reader and writer, interruption,
//! timeouts, plain threads and the edge cases of real connections.

mod support;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{echo_server, on_workers, raise_fd_limit};
use sylvan::net::{TcpListener, TcpStream};
use sylvan::sync::{channel, Event};

#[test]
fn thousand_connections_echo_hundred_messages_each() {
    raise_fd_limit();
    let verified = on_workers(2, || {
        let addr = echo_server();
        let clients: Vec<_> = (0..1000u32)
            .map(|c| {
                sylvan::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    let mut total = 0usize;
                    for m in 0..100u32 {
                        // Varying lengths, every byte specific to (client, message).
                        let len = 1 + ((c * 31 + m * 7) % 200) as usize;
                        let msg: Vec<u8> = (0..len)
                            .map(|i| (c as usize * 131 + m as usize * 17 + i) as u8)
                            .collect();
                        s.write_all(&msg).unwrap();
                        let mut back = vec![0u8; len];
                        s.read_exact(&mut back).unwrap();
                        assert_eq!(back, msg, "client {c} message {m}");
                        total += len;
                    }
                    total
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum::<usize>()
    });
    let expected: usize = (0..1000usize)
        .flat_map(|c| (0..100usize).map(move |m| 1 + (c * 31 + m * 7) % 200))
        .sum();
    assert_eq!(verified, expected);
}

#[test]
fn reader_and_writer_fibers_share_one_stream_full_duplex() {
    // 4 MiB each way through an echo server: neither direction can finish
    // unless the other makes progress at the same time.
    const TOTAL: usize = 4 << 20;
    on_workers(2, || {
        let addr = echo_server();
        let stream = Arc::new(TcpStream::connect(addr).unwrap());
        let writer = {
            let s = stream.clone();
            sylvan::spawn(move || {
                let chunk: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
                let mut sent = 0;
                while sent < TOTAL {
                    (&*s).write_all(&chunk).unwrap();
                    sent += chunk.len();
                }
                s.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut got = 0usize;
        let mut buf = vec![0u8; 32768];
        loop {
            let n = (&*stream).read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            for (i, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, ((got + i) % 65536 % 251) as u8, "byte {}", got + i);
            }
            got += n;
        }
        writer.join().unwrap();
        assert_eq!(got, TOTAL);
    });
}

#[test]
fn a_stream_follows_its_user_to_another_worker_and_runtime() {
    let rt_a = sylvan::Runtime::builder().workers(1).build().unwrap();
    let rt_b = sylvan::Runtime::builder().workers(1).build().unwrap();
    let addr = rt_a.block_on(echo_server);
    let (tx, rx) = channel::unbounded::<TcpStream>();
    // Used (and registered) on runtime A's worker: a read that has to wait.
    rt_a.block_on(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"one").unwrap();
        let mut b = [0u8; 3];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"one");
        tx.send(s).unwrap();
    });
    // Then on runtime B's worker, where it must register again.
    let s = rt_b.block_on(move || {
        let mut s = rx.recv().unwrap();
        for i in 0..100u8 {
            s.write_all(&[i; 10]).unwrap();
            let mut b = [0u8; 10];
            s.read_exact(&mut b).unwrap();
            assert_eq!(b, [i; 10]);
        }
        s
    });
    // And on a plain thread.
    let mut s = s;
    s.write_all(b"thread").unwrap();
    let mut b = [0u8; 6];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"thread");
}

#[sylvan::test(workers = 4)]
fn streams_passed_between_fibers_on_many_workers() {
    let addr = echo_server();
    let (tx, rx) = channel::bounded::<(u32, TcpStream)>(4);
    let consumers: Vec<_> = (0..8)
        .map(|_| {
            let rx = rx.clone();
            sylvan::spawn(move || {
                let mut n = 0;
                while let Ok((i, mut s)) = rx.recv() {
                    let msg = i.to_le_bytes();
                    s.write_all(&msg).unwrap();
                    let mut b = [0u8; 4];
                    s.read_exact(&mut b).unwrap();
                    assert_eq!(b, msg);
                    n += 1;
                }
                n
            })
        })
        .collect();
    drop(rx);
    for i in 0..200u32 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"x").unwrap(); // registered here first
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        tx.send((i, s)).unwrap();
    }
    drop(tx);
    let total: u32 = consumers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 200);
}

#[sylvan::test(workers = 2)]
fn cancelling_a_blocked_read_leaves_the_stream_usable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = Arc::new(TcpStream::connect(addr).unwrap());
    let (mut server, _) = listener.accept().unwrap();
    let started = Arc::new(Event::new());
    let reader = {
        let (c, started) = (client.clone(), started.clone());
        sylvan::spawn(move || {
            started.set();
            let mut b = [0u8; 1];
            (&*c).read(&mut b)
        })
    };
    started.wait();
    reader.cancel();
    assert!(reader.join().unwrap_err().is_cancelled());
    // Nothing was consumed; the stream still works both ways.
    server.write_all(b"after").unwrap();
    let mut b = [0u8; 5];
    (&*client).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"after");
    (&*client).write_all(b"ok").unwrap();
    let mut b = [0u8; 2];
    server.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ok");
}

#[sylvan::test(workers = 1)]
fn timeout_around_a_read_interrupts_it_cleanly() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let start = Instant::now();
    let res = sylvan::timeout(Duration::from_millis(50), || {
        let mut b = [0u8; 1];
        client.read(&mut b)
    });
    assert!(res.is_err(), "the read has nothing to read");
    assert!(start.elapsed() >= Duration::from_millis(50));
    server.write_all(b"z").unwrap();
    let mut b = [0u8; 1];
    client.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"z");
}

#[sylvan::test(workers = 1)]
fn read_and_write_timeouts_fail_with_timed_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    assert!(client.set_read_timeout(Some(Duration::ZERO)).is_err());
    client
        .set_read_timeout(Some(Duration::from_millis(30)))
        .unwrap();
    assert_eq!(
        client.read_timeout().unwrap(),
        Some(Duration::from_millis(30))
    );
    let start = Instant::now();
    let err = client.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(start.elapsed() >= Duration::from_millis(30));
    // Writes: the peer never reads, so the buffers fill and the write waits.
    client
        .set_write_timeout(Some(Duration::from_millis(30)))
        .unwrap();
    let chunk = vec![7u8; 1 << 20];
    let mut written = 0usize;
    let err = loop {
        match client.write(&chunk) {
            Ok(n) => written += n,
            Err(e) => break e,
        }
    };
    assert!(written > 0, "the buffers took some data before filling up");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    drop(server);
}

#[test]
fn plain_threads_use_the_same_types_without_a_runtime() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"from a thread").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = String::new();
    c.read_to_string(&mut back).unwrap();
    assert_eq!(back, "from a thread");
    server.join().unwrap();
    // A read timeout on a plain thread.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let err = (&c).read(&mut [0u8; 1]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
}

#[test]
fn fibers_and_threads_talk_over_loopback() {
    // A fiber server, plain-thread clients.
    let rt = sylvan::Runtime::builder().workers(2).build().unwrap();
    let addr = rt.block_on(echo_server);
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                for i in 0..50u8 {
                    s.write_all(&[t, i]).unwrap();
                    let mut b = [0u8; 2];
                    s.read_exact(&mut b).unwrap();
                    assert_eq!(b, [t, i]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[sylvan::test(workers = 2)]
fn several_fibers_accept_on_one_listener() {
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let acceptors: Vec<_> = (0..4)
        .map(|_| {
            let (l, n) = (listener.clone(), accepted.clone());
            sylvan::spawn(move || {
                let mut mine = 0;
                while n.load(Ordering::SeqCst) < 100 {
                    let res = sylvan::timeout(Duration::from_millis(200), || l.accept());
                    if let Ok(Ok((mut s, _))) = res {
                        n.fetch_add(1, Ordering::SeqCst);
                        s.write_all(b"!").unwrap();
                        mine += 1;
                    }
                }
                mine
            })
        })
        .collect();
    for _ in 0..100 {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
    }
    let total: usize = acceptors.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 100);
}

#[sylvan::test(workers = 1)]
fn peer_reset_mid_read_is_an_error_not_a_hang() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let got_first = Arc::new(Event::new());
    let reader = {
        let got_first = got_first.clone();
        sylvan::spawn(move || {
            let mut buf = [0u8; 64];
            let mut s = server;
            let first = s.read(&mut buf).unwrap();
            got_first.set();
            (first, s.read(&mut buf))
        })
    };
    (&client).write_all(b"partial").unwrap();
    got_first.wait(); // the reader now blocks in its second read
    client.set_linger(Some(Duration::ZERO)).unwrap();
    drop(client); // RST
    let (first, second) = reader.join().unwrap();
    assert_eq!(first, 7);
    assert_eq!(second.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
}

#[sylvan::test(workers = 1)]
fn half_close_then_keep_reading() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = sylvan::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut req = Vec::new();
        s.read_to_end(&mut req).unwrap(); // until the client's FIN
        let reply: Vec<u8> = req.iter().rev().copied().collect();
        s.write_all(&reply).unwrap();
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"abcdef").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert!(c.write(b"more").is_err(), "writes after shutdown fail");
    let mut reply = Vec::new();
    c.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"fedcba");
    server.join().unwrap();
}

#[sylvan::test(workers = 1)]
fn zero_length_reads_and_writes_return_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let _s = listener.accept().unwrap();
    assert_eq!(c.write(&[]).unwrap(), 0);
    assert_eq!(c.read(&mut []).unwrap(), 0);
}

#[sylvan::test(workers = 1)]
fn connect_refused_is_reported() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[sylvan::test(workers = 1)]
fn connect_timeout_to_a_full_backlog() {
    // A listener that never accepts, with the smallest backlog: once its
    // queue is full the kernel drops further SYNs, like a blackhole.
    let listener = TcpListener::builder()
        .backlog(0)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    let mut timed_out = None;
    for _ in 0..64 {
        let start = Instant::now();
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(s) => held.push(s),
            Err(e) => {
                timed_out = Some((e, start.elapsed()));
                break;
            }
        }
    }
    let (err, took) = timed_out.expect("a full backlog makes connects time out");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let zero = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
    assert_eq!(zero.kind(), io::ErrorKind::InvalidInput);
}

#[sylvan::test(workers = 1)]
fn connect_by_name_and_lookup_host() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let addrs: Vec<_> = sylvan::net::lookup_host(("localhost", port))
        .unwrap()
        .collect();
    assert!(!addrs.is_empty());
    assert!(addrs
        .iter()
        .all(|a| a.ip().is_loopback() && a.port() == port));
    // `connect` with a host name tries each address (::1 may refuse).
    let _c = TcpStream::connect(format!("localhost:{port}")).unwrap();
    let _s = listener.accept().unwrap();
    let err = sylvan::net::lookup_host("no-such-host.invalid:80").unwrap_err();
    assert!(!err.to_string().is_empty());
    assert_ne!(err.kind(), io::ErrorKind::InvalidInput);
    let bad = TcpStream::connect("not an address").unwrap_err();
    assert_eq!(bad.kind(), io::ErrorKind::InvalidInput);
}

#[sylvan::test(workers = 1)]
fn stream_accessors_mirror_std() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let c = TcpStream::connect(addr).unwrap();
    let (s, peer) = listener.accept().unwrap();
    assert_eq!(c.peer_addr().unwrap(), addr);
    assert_eq!(c.local_addr().unwrap(), peer);
    assert_eq!(s.peer_addr().unwrap(), peer);
    c.set_nodelay(true).unwrap();
    assert!(c.nodelay().unwrap());
    c.set_ttl(33).unwrap();
    assert_eq!(c.ttl().unwrap(), 33);
    let mut c2 = c.try_clone().unwrap();
    c2.write_all(b"hi").unwrap();
    let mut b = [0u8; 2];
    assert_eq!(s.peek(&mut b).unwrap(), 2);
    (&s).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hi");
    assert!(c.take_error().unwrap().is_none());
    let std_stream = c.into_std();
    assert_eq!(std_stream.peer_addr().unwrap(), addr);
}

/// Short and full reads and writes over many connections and two workers:
/// every byte arrives, and so do the end of stream — sent together with the
/// last bytes, so the read that takes them stops short at the FIN and no
/// further edge comes for the end — and a reset after data. Each server read
/// has a timeout, so a read that waits for an edge that never comes fails
/// the test instead of hanging it. (It caught exactly that in a readiness
/// shortcut tried for issue 19, which skipped the read after a short one.)
#[test]
fn short_reads_and_writes_lose_no_byte_and_no_end() {
    const CONNS: usize = 40;
    on_workers(2, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = sylvan::spawn(move || {
            let handlers: Vec<_> = (0..CONNS)
                .map(|_| {
                    let (s, _) = listener.accept().unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
                    sylvan::spawn(move || {
                        // Echo in odd-sized reads (many short, some full),
                        // then half-close after the client's end.
                        let mut buf = vec![0u8; 1000];
                        let mut total = 0usize;
                        loop {
                            match (&s).read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    (&s).write_all(&buf[..n]).unwrap();
                                    total += n;
                                }
                                Err(e) => return Err((total, e.kind())),
                            }
                        }
                        s.shutdown(Shutdown::Write).unwrap();
                        Ok(total)
                    })
                })
                .collect();
            handlers
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        // Clients are plain threads: each sends messages of growing size
        // (1 byte to 40 KB, so writes and reads on both sides come out short
        // and full), reading each echo in full before the next; the last
        // message goes with the FIN. Connections 0, 10, 20, 30 reset
        // instead of closing, after their last echo.
        let clients: Vec<_> = (0..CONNS)
            .map(|c| {
                std::thread::spawn(move || {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let mut sent = 0usize;
                    for (i, len) in [1usize, 999, 1000, 1001, 2500, 40_000, 7]
                        .iter()
                        .enumerate()
                    {
                        let msg: Vec<u8> = (0..*len).map(|k| (k * 31 + c + i) as u8).collect();
                        s.write_all(&msg).unwrap();
                        let last = i == 6;
                        if last && c % 10 != 0 {
                            s.shutdown(Shutdown::Write).unwrap();
                        }
                        let mut back = vec![0u8; *len];
                        s.read_exact(&mut back).unwrap();
                        assert!(back == msg, "connection {c}: message {i} came back changed");
                        sent += len;
                    }
                    if c % 10 == 0 {
                        let s = socket2::Socket::from(s);
                        s.set_linger(Some(Duration::ZERO)).unwrap();
                        drop(s); // RST
                    } else {
                        let mut rest = Vec::new();
                        s.read_to_end(&mut rest).unwrap();
                        assert!(rest.is_empty(), "connection {c}: the end came");
                    }
                    sent
                })
            })
            .collect();
        let sent: Vec<usize> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        let got = server.join().unwrap();
        let expected = sent[0];
        assert!(sent.iter().all(|&n| n == expected));
        let (mut ended, mut reset) = (0, 0);
        for r in got {
            match r {
                Ok(n) => {
                    assert_eq!(n, expected);
                    ended += 1;
                }
                // A reset after the last echo: reported as a reset, never a
                // timeout (which would be a missed edge).
                Err((n, kind)) => {
                    assert_eq!(n, expected);
                    assert_eq!(kind, io::ErrorKind::ConnectionReset, "not a hang");
                    reset += 1;
                }
            }
        }
        assert_eq!(ended + reset, CONNS);
        assert!(ended >= CONNS - 4, "{ended} connections ended cleanly");
    });
}
