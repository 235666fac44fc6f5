//! The `patch` feature's edge cases, each found by a review of its first
//! version (where each of these failed or hung): peeks, datagrams,
//! descriptors closed under a waiter and reused, sockets handed to child
//! processes, sleep-retry loops after a cancellation, pipes, plain threads
//! on sockets fibers used, std's stdout locks, huge timeouts. Each runs on
//! one worker, like tests/patch_std.rs.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::time::{Duration, Instant};

mod patch_support;

/// `recv(MSG_PEEK | MSG_WAITALL)` of `N` bytes, as C code would call it.
fn peek_all<const N: usize>(s: &impl AsRawFd) -> (isize, [u8; N]) {
    let mut buf = [0u8; N];
    // SAFETY: a valid N-byte buffer.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            N,
            libc::MSG_PEEK | libc::MSG_WAITALL,
        )
    };
    (n, buf)
}

use patch_support::{one_worker, pipe, tcp_pair};

/// Runs the test `name` again in a child process of its own (other tests
/// of this binary open and close descriptors concurrently, so a number's
/// reuse is only predictable alone) and checks that it passed there.
/// Returns `true` in that child, where the caller runs the test's body.
fn alone_in_a_process(name: &str) -> bool {
    const CHILD: &str = "PATCH_EDGE_REUSE_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "child failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// Open descriptors of this process.
fn open_fds() -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|d| d.ok()?.file_name().to_string_lossy().parse().ok())
        .collect();
    v.sort();
    v
}

/// A fiber's (or thread's) `poll` of `fds` (descriptor, events) for up
/// to `ms`: its result and the `revents`.
fn poll_for(fds: &[(i32, i16)], ms: i32) -> (i32, Vec<i16>) {
    let mut set: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    // SAFETY: valid pollfds.
    let n = unsafe { libc::poll(set.as_mut_ptr(), set.len() as libc::nfds_t, ms) };
    (n, set.iter().map(|p| p.revents).collect())
}

/// A poll naming the same owner-handled socket twice, evicted by a
/// sylvan::net reader of the same worker: no duplicate outlives it.
/// A fiber reading one byte from `c` (a `sylvan::net` socket): the count
/// and the byte, or the error as text.
fn spawn_reader(
    c: &std::sync::Arc<sylvan::net::unix::UnixStream>,
) -> sylvan::JoinHandle<Result<(usize, u8), String>> {
    let c = c.clone();
    sylvan::spawn(move || {
        let mut b = [0u8; 1];
        (&*c)
            .read(&mut b)
            .map(|n| (n, b[0]))
            .map_err(|e| e.to_string())
    })
}

/// F1: recv(MSG_PEEK | MSG_WAITALL) is continued by `read_all` at an offset,
/// but a peek does not consume: the second peek copies the SAME leading
/// bytes again. Kernel (TCP): blocks until 6 bytes are queued -> "abcdef".
#[test]
fn peek_waitall_does_not_duplicate_bytes() {
    let got = one_worker(Duration::from_secs(10), || {
        let (a, mut b) = tcp_pair();
        let w = std::thread::spawn(move || {
            b.write_all(b"abc").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            b.write_all(b"def").unwrap();
            b
        });
        let (n, buf) = peek_all::<6>(&a);
        let _b = w.join().unwrap();
        (n, buf)
    });
    assert_eq!(got.0, 6);
    assert_eq!(
        &got.1,
        b"abcdef",
        "got {:?}",
        String::from_utf8_lossy(&got.1)
    );
}

/// F2: MSG_WAITALL on a datagram socket: the kernel returns ONE datagram;
/// `read_all` keeps receiving and concatenates datagrams (or waits forever
/// for more when only one comes).
#[test]
fn waitall_on_udp_returns_one_datagram() {
    let (n, buf) = one_worker(Duration::from_secs(10), || {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let tx = std::thread::spawn(move || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            std::thread::sleep(Duration::from_millis(20));
            s.send_to(b"one", to).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            s.send_to(b"two", to).unwrap();
        });
        let mut buf = [0u8; 64];
        // SAFETY: a valid 64-byte buffer.
        let n = unsafe {
            libc::recv(
                rx.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                64,
                libc::MSG_WAITALL,
            )
        };
        tx.join().unwrap();
        (n, buf)
    });
    assert_eq!(
        n,
        3,
        "got {:?}",
        String::from_utf8_lossy(&buf[..n.max(0) as usize])
    );
}

/// F3: a fiber's libc::poll on a descriptor leaves the patch's own
/// registration in the worker's epoll set until close; any other
/// IoRegistration of the same fd on that worker (sylvan::net's, a user's)
/// then fails with EEXIST the first time it must wait.
#[test]
fn poll_then_io_registration_on_the_same_fd() {
    let r = one_worker(Duration::from_secs(10), || {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut pfd = libc::pollfd {
            fd: a.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd. (A C library polling the socket once.)
        assert_eq!(unsafe { libc::poll(&mut pfd, 1, 10) }, 0);
        let reg = sylvan::io::IoRegistration::new(a.as_raw_fd());
        let w = sylvan::spawn(move || {
            sylvan::sleep(Duration::from_millis(10));
            b.write_all(b"ok").unwrap();
            b
        });
        let mut buf = [0u8; 2];
        let r = reg
            .io(sylvan::io::Direction::Read, None, || (&a).read(&mut buf))
            .map_err(|e| e.to_string());
        let _b = w.join().unwrap();
        drop(reg);
        r
    });
    assert_eq!(r, Ok(2));
}

/// F4: a fiber closes a descriptor another fiber is parked on (C code
/// aborting a blocked read); the number is reused by a new socket that a
/// third fiber waits on. When the first fiber's wait ends, dropping its stale
/// entry does EPOLL_CTL_DEL by NUMBER and removes the NEW socket's
/// registration: its waiter never wakes.
#[test]
fn stale_entry_does_not_deregister_a_reused_number() {
    if !alone_in_a_process("stale_entry_does_not_deregister_a_reused_number") {
        return;
    }
    let got = one_worker(Duration::from_secs(10), || {
        let (a, _a_peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = a.into_raw_fd();
        let stuck = sylvan::spawn(move || {
            let mut b = [0u8; 1];
            // SAFETY: a valid buffer; `fd` is closed under us below.
            unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) }
        });
        sylvan::sleep(Duration::from_millis(30)); // `stuck` parks (registered)
                                                  // SAFETY: our descriptor.
        unsafe { libc::close(fd) };
        let (c, mut d) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(c.as_raw_fd(), fd, "the number is reused");
        let waiter = sylvan::spawn(move || {
            let mut b = [0u8; 1];
            (&c).read(&mut b).map(|n| (n, b[0]))
        });
        sylvan::sleep(Duration::from_millis(30)); // `waiter` parks (registered)
        stuck.cancel();
        let _ = stuck.join();
        d.write_all(b"x").unwrap();
        let r = waiter.join().unwrap().unwrap();
        drop(d);
        r
    });
    assert_eq!(got, (1, b'x'));
}

/// F5: the O_NONBLOCK the patch sets is on the open file description, so it
/// leaks to any process the socket is handed to (CGI/inetd style: a child's
/// stdin). The child's blocking read fails with EAGAIN.
#[test]
fn a_switched_socket_given_to_a_child_blocks_there() {
    let out = one_worker(Duration::from_secs(20), || {
        let (mut client, mut server) = tcp_pair();
        // The fiber uses it once (switched underneath).
        client.write_all(b"x").unwrap();
        let mut one = [0u8; 1];
        server.read_exact(&mut one).unwrap();
        let w = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            client.write_all(b"late data\n").unwrap();
        });
        let out = std::process::Command::new("cat")
            .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                server,
            )))
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .output()
            .unwrap();
        w.join().unwrap();
        out
    });
    assert!(
        out.status.success(),
        "child: {:?} stdout {:?} stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"late data\n");
}

/// F6: the standard EINTR-retry loop around an absolute sleep never ends
/// once the fiber is cancelled: every call parks, the pending cancellation
/// is raised at once, caught, and returned as EINTR; the fiber never
/// suspends, so the WORKER spins forever (the join below never runs).
#[test]
fn abstime_sleep_retry_loop_after_cancel() {
    one_worker(Duration::from_secs(10), || {
        let f = sylvan::spawn(|| {
            // SAFETY: a valid out-parameter.
            let mut at: libc::timespec = unsafe { std::mem::zeroed() };
            // SAFETY: `at` is a valid out-parameter.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut at) };
            at.tv_sec += 60;
            loop {
                // SAFETY: a valid timespec; no remainder for ABSTIME.
                let r = unsafe {
                    libc::clock_nanosleep(
                        libc::CLOCK_MONOTONIC,
                        libc::TIMER_ABSTIME,
                        &at,
                        std::ptr::null_mut(),
                    )
                };
                if r != libc::EINTR {
                    break;
                }
            }
            sylvan::sleep(Duration::from_secs(60));
        });
        sylvan::sleep(Duration::from_millis(20));
        f.cancel();
        let start = Instant::now();
        let r = f.join();
        // The sleep loop ended (the retry returned at once); the fiber's
        // next park raised the cancellation.
        assert!(r.unwrap_err().is_cancelled());
        start.elapsed()
    });
}

/// F7: a pipe (Pollable) write is "wait for POLLOUT, then the blocking
/// call": POLLOUT means one page free, a blocking write of more blocks the
/// worker until a reader drains it -- here the reader is a fiber of the same
/// worker: deadlock.
#[test]
fn large_pipe_write_to_a_reader_fiber_of_the_same_worker() {
    let n = one_worker(Duration::from_secs(10), || {
        let (mut r, mut w) = pipe();
        let reader = sylvan::spawn(move || {
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            all.len()
        });
        w.write_all(&vec![1u8; 1 << 20]).unwrap();
        drop(w);
        reader.join().unwrap()
    });
    assert_eq!(n, 1 << 20);
}

/// F8: a plain thread's single write on a socket a fiber switched returns
/// SHORT (the kernel would block until all is written; C code that assumes
/// that loses data). Same for a plain thread's MSG_WAITALL.
#[test]
fn plain_thread_write_on_a_switched_socket_is_whole() {
    let (mut client, server) = tcp_pair();
    let server = one_worker(Duration::from_secs(10), move || {
        let mut s = server;
        client.write_all(b"x").unwrap();
        let mut one = [0u8; 1];
        s.read_exact(&mut one).unwrap(); // switched
        (s, client)
    });
    let (mut server, mut client) = server;
    const BIG: usize = 8 << 20;
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        client.read_to_end(&mut all).unwrap();
        all.len()
    });
    let n = server.write(&vec![3u8; BIG]).unwrap();
    drop(server);
    reader.join().unwrap();
    assert_eq!(n, BIG, "a blocking write returned short");
}

/// F9: std's Stdout is a ReentrantLock keyed by THREAD; all fibers of a
/// worker are one thread. A fiber parks inside `write(1)` (fd 1 a pipe or
/// tty is Pollable; the IO budget alone yields every 128 calls), another
/// fiber of the worker re-enters the "held" lock and its RefCell borrow
/// panics. Runs itself in a child with stdout a pipe.
#[test]
fn two_fibers_printing_to_a_piped_stdout() {
    if std::env::var_os("PATCH_EDGE_STDOUT_CHILD").is_some() {
        one_worker(Duration::from_secs(20), || {
            let fibers: Vec<_> = (0..2)
                .map(|i| {
                    sylvan::spawn(move || {
                        for j in 0..2000 {
                            writeln!(std::io::stdout(), "fiber {i} line {j}").unwrap();
                        }
                    })
                })
                .collect();
            for f in fibers {
                f.join().unwrap();
            }
        });
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "two_fibers_printing_to_a_piped_stdout",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PATCH_EDGE_STDOUT_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.contains("panicked") || l.contains("borrow"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// F10: select's timeout conversion multiplies without checking: a large
/// (valid for the kernel: it saturates) tv_sec overflows, a panic in an
/// extern "C" hook -> abort (debug builds). Runs itself in a child.
#[test]
fn select_with_a_huge_timeout() {
    if std::env::var_os("PATCH_EDGE_SELECT_CHILD").is_some() {
        one_worker(Duration::from_secs(10), || {
            let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
            let w = sylvan::spawn(move || {
                sylvan::sleep(Duration::from_millis(10));
                b.write_all(b"x").unwrap();
                b
            });
            // SAFETY: a zeroed fd_set is valid; fd < FD_SETSIZE.
            let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
            // SAFETY: a valid set; the fd is below FD_SETSIZE.
            unsafe { libc::FD_SET(a.as_raw_fd(), &mut set) };
            let mut tv = libc::timeval {
                tv_sec: i64::MAX / 2,
                tv_usec: 0,
            };
            // SAFETY: valid set and timeval.
            let n = unsafe {
                libc::select(
                    a.as_raw_fd() + 1,
                    &mut set,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    &mut tv,
                )
            };
            assert_eq!(n, 1);
            let _b = w.join().unwrap();
        });
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "select_with_a_huge_timeout", "--nocapture"])
        .env("PATCH_EDGE_SELECT_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .join(" | ")
    );
}

/// `MSG_PEEK | MSG_WAITALL` when the peer closes after sending less: the
/// kernel returns what there is; so must the patch (not wait forever).
#[test]
fn peek_waitall_returns_short_at_end_of_stream() {
    let n = one_worker(Duration::from_secs(10), || {
        let (a, mut b) = tcp_pair();
        let w = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            b.write_all(b"abc").unwrap();
            std::thread::sleep(Duration::from_millis(50));
            drop(b);
        });
        let (n, _) = peek_all::<6>(&a);
        w.join().unwrap();
        n
    });
    assert_eq!(n, 3);
}

/// A std socket that a fiber used through the patch (a blocking read
/// that had to wait registers the patch's entry with the worker's epoll
/// set), then handed to `sylvan::net::TcpStream::from_std`: sylvan's own
/// registration of the same descriptor on the same worker fails with
/// EEXIST the first time a read must wait.
#[test]
fn std_stream_used_in_a_fiber_then_wrapped_by_sylvan_net() {
    let r = one_worker(Duration::from_secs(10), || {
        let (a, b) = tcp_pair();
        let w = sylvan::spawn(move || {
            sylvan::sleep(Duration::from_millis(20));
            (&b).write_all(b"1").unwrap();
            sylvan::sleep(Duration::from_millis(50));
            (&b).write_all(b"2").unwrap();
            b
        });
        let mut one = [0u8; 1];
        // Patched std read: parks (registers the patch's entry).
        (&a).read_exact(&mut one).unwrap();
        assert_eq!(&one, b"1");
        let s = sylvan::net::TcpStream::from_std(a).unwrap();
        let r = (&s)
            .read(&mut one)
            .map(|n| (n, one[0]))
            .map_err(|e| e.to_string());
        let _b = w.join().unwrap();
        r
    });
    assert_eq!(r, Ok((1, b'2')));
}

/// The same with a listener: a fiber accepted on a std listener (the
/// patch registered it), then `sylvan::net::TcpListener::from_std`.
#[test]
fn std_listener_used_in_a_fiber_then_wrapped_by_sylvan_net() {
    let r = one_worker(Duration::from_secs(10), || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let c = sylvan::spawn(move || {
            sylvan::sleep(Duration::from_millis(20));
            let a = sylvan::net::TcpStream::connect(addr).unwrap();
            sylvan::sleep(Duration::from_millis(50));
            let b = sylvan::net::TcpStream::connect(addr).unwrap();
            (a, b)
        });
        let _first = l.accept().unwrap(); // patched: parks
        let l = sylvan::net::TcpListener::from_std(l).unwrap();
        let r = l.accept().map(|_| ()).map_err(|e| e.to_string());
        let _ = c.join().unwrap();
        r
    });
    assert_eq!(r, Ok(()));
}

/// A fiber's patched `poll` on a descriptor whose owner made it
/// non-blocking waits through a *temporary* registration that it drops (an
/// EPOLL_CTL_DEL by number) when the poll returns. If another fiber closed
/// the descriptor meanwhile and the number was reused by a new socket that
/// `sylvan::net` registered with the same worker, that DEL removed the new
/// socket's registration and its reader never woke (the wait now registers
/// a private duplicate).
#[test]
fn poll_temporary_registration_does_not_deregister_a_reused_number() {
    if !alone_in_a_process("poll_temporary_registration_does_not_deregister_a_reused_number") {
        return;
    }
    use std::os::fd::IntoRawFd;
    let got = one_worker(Duration::from_secs(10), || {
        let (a, _a_peer) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap(); // the owner handles EAGAIN itself
        let fd = a.into_raw_fd();
        let poller = sylvan::spawn(move || {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd (a C library's event loop).
            unsafe { libc::poll(&mut pfd, 1, 200) }
        });
        sylvan::sleep(Duration::from_millis(30)); // the poller parks
                                                  // SAFETY: our descriptor (C code closing a connection).
        unsafe { libc::close(fd) };
        let (c, d) = sylvan::net::unix::UnixStream::pair().unwrap();
        assert!(
            c.as_raw_fd() == fd || d.as_raw_fd() == fd,
            "the number is reused"
        );
        let (c, mut d) = if c.as_raw_fd() == fd { (c, d) } else { (d, c) };
        let reader = sylvan::spawn(move || {
            let mut b = [0u8; 1];
            (&c).read(&mut b)
                .map(|n| (n, b[0]))
                .map_err(|e| e.to_string())
        });
        sylvan::sleep(Duration::from_millis(30)); // the reader parks (registered)
        let _ = poller.join().unwrap(); // its poll times out at 200 ms
        d.write_all(b"x").unwrap();
        let start = Instant::now();
        while !reader.is_finished() && start.elapsed() < Duration::from_secs(2) {
            sylvan::sleep(Duration::from_millis(10));
        }
        if !reader.is_finished() {
            reader.cancel();
            return Err("the reader never woke although a byte was written".to_owned());
        }
        reader.join().unwrap()
    });
    assert_eq!(got, Ok((1, b'x')));
}

/// `sendmsg` on a blocking stream socket in a fiber sends every byte of
/// every buffer, in order, as the kernel's blocking call would (found by
/// review: it returned the first short count).
#[test]
fn sendmsg_on_a_blocking_stream_sends_everything_in_order() {
    const PART: usize = 1 << 20;
    let r = one_worker(Duration::from_secs(20), || {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            b.read_to_end(&mut all).unwrap();
            all
        });
        // Three buffers of distinct bytes, far more than the socket holds.
        let parts: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i + 1; PART]).collect();
        let mut iov: Vec<libc::iovec> = parts
            .iter()
            .map(|p| libc::iovec {
                iov_base: p.as_ptr() as *mut _,
                iov_len: p.len(),
            })
            .collect();
        // SAFETY: an all-zero msghdr is valid; then the iovecs above.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = iov.len();
        // SAFETY: a valid message over live buffers.
        let n = unsafe { libc::sendmsg(a.as_raw_fd(), &msg, 0) };
        drop(a);
        (n, reader.join().unwrap(), parts.concat())
    });
    assert_eq!(r.0, 3 * PART as isize, "sendmsg's count");
    assert!(r.1 == r.2, "the peer received every byte in order");
}

/// `recvmsg(MSG_WAITALL)` on a stream socket in a fiber waits for all the
/// bytes, filling its buffers in order (found by review: it returned what
/// had arrived first).
#[test]
fn recvmsg_waitall_fills_every_buffer() {
    let r = one_worker(Duration::from_secs(10), || {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let w = sylvan::spawn(move || {
            for piece in [&b"ab"[..], b"cd", b"ef"] {
                b.write_all(piece).unwrap();
                sylvan::sleep(Duration::from_millis(10));
            }
            b
        });
        let (mut first, mut second) = ([0u8; 3], [0u8; 3]);
        let mut iov = [
            libc::iovec {
                iov_base: first.as_mut_ptr().cast(),
                iov_len: 3,
            },
            libc::iovec {
                iov_base: second.as_mut_ptr().cast(),
                iov_len: 3,
            },
        ];
        // SAFETY: an all-zero msghdr is valid; then the two iovecs above.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = 2;
        // SAFETY: a valid message over live buffers.
        let n = unsafe { libc::recvmsg(a.as_raw_fd(), &mut msg, libc::MSG_WAITALL) };
        let _b = w.join().unwrap();
        (n, first, second)
    });
    assert_eq!(r, (6, *b"abc", *b"def"));
}

/// A fiber's blocking `connect` to a Unix listener whose backlog is full
/// waits for room, as the kernel's blocking call does (found by review: it
/// failed with `WouldBlock`).
#[test]
fn unix_connect_waits_for_backlog_room() {
    let path =
        std::env::temp_dir().join(format!("sylvan-patch-backlog-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let p = path.clone();
    let r = one_worker(Duration::from_secs(20), move || {
        let l = std::os::unix::net::UnixListener::bind(&p).unwrap();
        // SAFETY: listen on our own listening socket: the smallest backlog.
        assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
        let server = sylvan::spawn(move || {
            sylvan::sleep(Duration::from_millis(50));
            (0..4)
                .map(|_| l.accept().map(drop))
                .collect::<std::io::Result<Vec<()>>>()
        });
        let connected = (0..4)
            .map(|i| {
                std::os::unix::net::UnixStream::connect(&p)
                    .map_err(|e| format!("connect #{i}: {:?}: {e}", e.kind()))
            })
            .collect::<Result<Vec<_>, _>>();
        server.join().unwrap().unwrap();
        connected.map(|c| c.len())
    });
    let _ = std::fs::remove_file(&path);
    assert_eq!(r, Ok(4));
}

/// `select` on a hung-up descriptor watched only where a hang-up maps to
/// nothing — exceptional conditions (a socket whose peer left), or
/// writability (a pipe's read end whose writer closed) — waits out its
/// timeout, as the kernel's does: `poll` reports the hang-up whatever was
/// asked. Found by review: it returned 0 at once (exceptfds, then writefds).
#[test]
fn select_ignores_a_hang_up_where_select_maps_it_to_nothing() {
    /// `select` with `fd` in the write set (`write`) or the except set;
    /// what it returned and how long it took.
    fn select_one(fd: i32, write: bool, ms: i64) -> (i32, Duration) {
        // SAFETY: an all-zero fd_set is empty; `fd` < FD_SETSIZE.
        let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::FD_SET(fd, &mut set) };
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: (ms * 1000) as libc::suseconds_t,
        };
        let (w, e) = if write {
            (&mut set as *mut libc::fd_set, std::ptr::null_mut())
        } else {
            (std::ptr::null_mut(), &mut set as *mut libc::fd_set)
        };
        let start = Instant::now();
        // SAFETY: valid sets and timeval for `fd + 1` descriptors.
        let n = unsafe { libc::select(fd + 1, std::ptr::null_mut(), w, e, &mut tv) };
        (n, start.elapsed())
    }
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(b); // a hangs up
    let (r, w) = pipe();
    drop(w); // so does r
    let cases = [(a.as_raw_fd(), false), (r.as_raw_fd(), true)];
    for (fd, write) in cases {
        let thread = select_one(fd, write, 150);
        let fiber = one_worker(Duration::from_secs(10), move || select_one(fd, write, 150));
        for (who, (n, took)) in [("thread", thread), ("fiber", fiber)] {
            assert_eq!(n, 0, "{who}, write set {write}: times out");
            assert!(
                took >= Duration::from_millis(140),
                "{who}, write set {write}: {took:?}"
            );
        }
    }
    drop((a, r));
}

/// A fiber's mistaken `accept` on a socket that is not listening fails
/// (`EINVAL`) and leaves the socket blocking underneath: a plain thread's
/// read on it still blocks rather than failing with `WouldBlock` (found by
/// review: the patch switched it before the kernel refused).
#[test]
fn accept_on_a_connected_socket_leaves_it_blocking() {
    let (a, mut b) = tcp_pair();
    let fd = a.as_raw_fd();
    let err = one_worker(Duration::from_secs(10), move || {
        // SAFETY: null address arguments are allowed.
        let r = unsafe { libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut()) };
        (r, std::io::Error::last_os_error().raw_os_error())
    });
    assert_eq!(err, (-1, Some(libc::EINVAL)));
    // SAFETY: F_GETFL takes no argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert_eq!(flags & libc::O_NONBLOCK, 0, "still blocking");
    let reader = std::thread::spawn(move || {
        let mut one = [0u8; 1];
        (&a).read(&mut one)
            .map(|n| (n, one[0]))
            .map_err(|e| e.kind())
    });
    std::thread::sleep(Duration::from_millis(20)); // the read blocks meanwhile
    b.write_all(b"z").unwrap();
    assert_eq!(reader.join().unwrap(), Ok((1, b'z')));
}

/// A fiber's `poll` on a descriptor its owner handles takes no descriptor
/// of its own while it waits, as the kernel's does: with one slot left
/// under `RLIMIT_NOFILE`, an open beside it succeeds (found by review of a
/// version that waited on a duplicate). In a process of its own: it lowers
/// the process's limit.
#[test]
fn a_waiting_poll_takes_no_descriptor() {
    if !alone_in_a_process("a_waiting_poll_takes_no_descriptor") {
        return;
    }
    let got = one_worker(Duration::from_secs(20), || {
        let (a, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap(); // the owner handles EAGAIN itself
        let fd = a.as_raw_fd();
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a valid out-pointer.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
        let low = libc::rlimit {
            rlim_cur: 256,
            rlim_max: old.rlim_max,
        };
        // SAFETY: a valid pointer.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
        // Fill the table, then free exactly one slot.
        let mut files = Vec::new();
        while let Ok(f) = std::fs::File::open("/dev/null") {
            files.push(f);
        }
        files.pop();
        let poller = sylvan::spawn(move || {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd (a C library's event loop).
            unsafe { libc::poll(&mut pfd, 1, 300) }
        });
        sylvan::sleep(Duration::from_millis(50)); // the poller parks
        let opened = std::fs::File::open("/dev/null").map_err(|e| e.to_string());
        let polled = poller.join().unwrap();
        drop(files);
        // SAFETY: a valid pointer.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) };
        (polled, opened.map(drop))
    });
    assert_eq!(got, (0, Ok(())), "(poll result, open while a fiber polls)");
}

/// A fiber's `poll` on a `sylvan::net` socket that another fiber of the
/// same worker is reading (so the number is in the worker's `epoll` set
/// through sylvan's registration): both see the data, and the read gets
/// no `EEXIST` from the poll's registration.
#[test]
fn poll_beside_a_sylvan_net_reader_of_the_same_socket() {
    let got = one_worker(Duration::from_secs(10), || {
        let (c, mut d) = sylvan::net::unix::UnixStream::pair().unwrap();
        let c = std::sync::Arc::new(c);
        let fd = c.as_raw_fd();
        let reader = spawn_reader(&c);
        sylvan::sleep(Duration::from_millis(20)); // the reader parks: registered
        let poller = sylvan::spawn(move || {
            let (n, revents) = poll_for(&[(fd, libc::POLLIN)], 5000);
            (n, revents[0] & libc::POLLIN != 0)
        });
        sylvan::sleep(Duration::from_millis(20)); // the poller parks too
        d.write_all(b"q").unwrap();
        let polled = poller.join().unwrap();
        (polled, reader.join().unwrap())
    });
    assert_eq!(got, ((1, true), Ok((1, b'q'))));
}

/// `recv(MSG_WAITALL)` on a `SOCK_SEQPACKET` socket in a fiber returns one
/// record, as the kernel does (records are not streams: waiting "for all"
/// would merge two of them into one read).
#[test]
fn waitall_on_seqpacket_returns_one_record() {
    let got = one_worker(Duration::from_secs(10), || {
        let mut sv = [0; 2];
        // SAFETY: `sv` has room for the two descriptors.
        let r =
            unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0, sv.as_mut_ptr()) };
        assert_eq!(r, 0);
        let (a, b) = (sv[0], sv[1]);
        for rec in [&b"abc"[..], b"def"] {
            // SAFETY: a valid buffer on our own socket.
            let sent = unsafe { libc::send(b, rec.as_ptr().cast(), rec.len(), 0) };
            assert_eq!(sent, 3);
        }
        let mut buf = [0u8; 6];
        // SAFETY: a valid 6-byte buffer.
        let n = unsafe { libc::recv(a, buf.as_mut_ptr().cast(), 6, libc::MSG_WAITALL) };
        // SAFETY: our own descriptors.
        unsafe {
            libc::close(a);
            libc::close(b);
        }
        (n, buf)
    });
    assert_eq!(got, (3, *b"abc\0\0\0"));
}

/// The other order: a fiber's `poll` on a `sylvan::net` socket waits
/// first, then another fiber of the worker reads the socket. The read's
/// registration takes the number's place in the `epoll` set and the poll
/// moves to a duplicate of its own: the read gets its byte (found by
/// review: it failed with EEXIST), and the poll still sees the next one.
#[test]
fn sylvan_net_reader_after_a_waiting_poll_of_the_same_socket() {
    let got = one_worker(Duration::from_secs(10), || {
        let (c, mut d) = sylvan::net::unix::UnixStream::pair().unwrap();
        let c = std::sync::Arc::new(c);
        let fd = c.as_raw_fd();
        let poller = sylvan::spawn(move || {
            let (n, revents) = poll_for(&[(fd, libc::POLLIN)], 5000);
            (n, revents[0] & libc::POLLIN != 0)
        });
        sylvan::sleep(Duration::from_millis(20)); // the poller parks first
        let reader = spawn_reader(&c);
        sylvan::sleep(Duration::from_millis(20)); // the reader parks too
        d.write_all(b"q").unwrap();
        let read = reader.join().unwrap();
        // The reader may have taken the byte before the poller looked: a
        // second one ends the poll either way.
        d.write_all(b"r").unwrap();
        (read, poller.join().unwrap())
    });
    assert_eq!(got, (Ok((1, b'q')), (1, true)));
}

/// A fiber's `poll` whose descriptor is closed (and the number reused by a
/// new socket) while it waits, and which is then woken for another reason,
/// does not duplicate the new socket (which would keep it open after its
/// owner closes it, so its peer would see no end of stream). Found by
/// review of the poll's step-aside protocol. In a process of its own:
/// it counts on the number's reuse.
#[test]
fn a_poll_on_a_closed_number_does_not_hold_its_new_file_open() {
    if !alone_in_a_process("a_poll_on_a_closed_number_does_not_hold_its_new_file_open") {
        return;
    }
    let got = one_worker(Duration::from_secs(10), || {
        let (a, _a_peer) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap(); // owner-handled: a temporary
        let x = a.into_raw_fd();
        let (z, _z_peer) = std::os::unix::net::UnixStream::pair().unwrap(); // an Entry
        let zfd = z.as_raw_fd();
        let poller = sylvan::spawn(move || {
            let mut pfd = [
                libc::pollfd {
                    fd: x,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: zfd,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: two valid pollfds.
            let n = unsafe { libc::poll(pfd.as_mut_ptr(), 2, 3000) };
            (n, pfd[0].revents)
        });
        sylvan::sleep(Duration::from_millis(30)); // the poller parks
                                                  // SAFETY: our descriptor (C code closing a connection).
        unsafe { libc::close(x) };
        let (e, f) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(
            e.as_raw_fd() == x || f.as_raw_fd() == x,
            "the number is reused"
        );
        let (e, mut f) = if e.as_raw_fd() == x { (e, f) } else { (f, e) };
        // The owner of z takes it over: the poller is woken to look again.
        z.set_nonblocking(true).unwrap();
        sylvan::sleep(Duration::from_millis(30)); // the poller re-waits
        drop(e); // the program closes its new socket
                 // Its peer must see the end of stream at once.
        f.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut b = [0u8; 1];
        let eof = f.read(&mut b).map_err(|e| e.kind());
        let polled = poller.join().unwrap();
        drop(z);
        (eof, polled)
    });
    assert_eq!(
        got.0,
        Ok(0),
        "the peer of the closed socket saw no EOF (poll: {:?})",
        got.1
    );
}

#[test]
fn a_poll_naming_a_socket_twice_leaks_no_duplicate() {
    if !alone_in_a_process("a_poll_naming_a_socket_twice_leaks_no_duplicate") {
        return;
    }
    let got = one_worker(Duration::from_secs(10), || {
        let (c, mut d) = sylvan::net::unix::UnixStream::pair().unwrap();
        let c = std::sync::Arc::new(c);
        let fd = c.as_raw_fd();
        let before = open_fds();
        let poller =
            sylvan::spawn(move || poll_for(&[(fd, libc::POLLIN), (fd, libc::POLLIN)], 3000));
        sylvan::sleep(Duration::from_millis(20));
        let reader = {
            let c = c.clone();
            sylvan::spawn(move || {
                let mut b = [0u8; 1];
                (&*c).read(&mut b).map_err(|e| e.to_string())
            })
        };
        sylvan::sleep(Duration::from_millis(20));
        let during = open_fds();
        d.write_all(b"q").unwrap();
        let read = reader.join().unwrap();
        d.write_all(b"r").unwrap();
        let polled = poller.join().unwrap();
        let after = open_fds();
        (read, polled.0, during.len() - before.len(), before, after)
    });
    assert!(got.2 >= 1, "the poll waited on a duplicate");
    assert_eq!((got.0, got.1), (Ok(1), 2));
    assert_eq!(got.3, got.4, "descriptors before / after");
}

/// A poll evicted, then ending at its deadline before it runs again (its
/// worker busy): the duplicate made at the eviction is closed.
#[test]
fn a_poll_ending_before_it_takes_its_duplicate_leaks_nothing() {
    if !alone_in_a_process("a_poll_ending_before_it_takes_its_duplicate_leaks_nothing") {
        return;
    }
    let got = one_worker(Duration::from_secs(10), || {
        let (c, _d) = sylvan::net::unix::UnixStream::pair().unwrap();
        let c = std::sync::Arc::new(c);
        let fd = c.as_raw_fd();
        let before = open_fds();
        let poller = sylvan::spawn(move || poll_for(&[(fd, libc::POLLIN)], 60));
        sylvan::sleep(Duration::from_millis(20));
        let c2 = c.clone();
        let reader = sylvan::spawn(move || {
            c2.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let mut b = [0u8; 1];
            (&*c2).read(&mut b).map_err(|e| e.kind())
        });
        // The reader has evicted the poll's registration; keep the worker
        // busy past the poll's deadline.
        sylvan::yield_now();
        sylvan::yield_now();
        let mid = open_fds();
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(100) {
            std::hint::spin_loop();
        }
        let polled = poller.join().unwrap();
        let _ = reader.join().unwrap();
        let after = open_fds();
        (
            polled.0,
            mid.len() as isize - before.len() as isize,
            before,
            after,
        )
    });
    assert_eq!(got.0, 0, "the poll times out");
    assert!(got.1 >= 1, "a duplicate was made at the eviction");
    assert_eq!(got.2, got.3, "descriptors before / after");
}

extern "C" {
    /// glibc's `closefrom(3)` (2.34+; the libc crate does not declare it).
    fn closefrom(lowfd: libc::c_int);
}

/// Moves `fd` to the lowest free number at or above `at` (a duplicate the
/// patch knows as `fd`'s), closing `fd`.
fn move_up(fd: i32, at: i32) -> i32 {
    // SAFETY: `fd` is ours; F_DUPFD_CLOEXEC takes an integer.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, at) };
    assert!(new >= at);
    // SAFETY: `fd` is ours, and replaced by `new`.
    unsafe { libc::close(fd) };
    new
}

/// A fiber's socket that has been waited on (so the patch holds its
/// registration) and its peer, moved to the two highest numbers open:
/// `close_all(low)` closes both, and must forget them as `close` does.
/// Every free number below is then filled (with `open`, which the patch
/// does not see), so a pipe takes the two numbers, and a fiber's read and
/// write on it must work (a stale entry of the socket made them
/// `recv`/`send` on a pipe: `ENOTSOCK`).
fn range_close_forgets(close_all: impl FnOnce(i32) + Send + 'static) {
    let got = one_worker(Duration::from_secs(10), move || {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let top = open_fds().into_iter().max().unwrap() + 1;
        let (a, b) = (move_up(a.into_raw_fd(), top), move_up(b.into_raw_fd(), top));
        assert_eq!((a, b), (top, top + 1));
        // SAFETY: fresh descriptors owned by nothing else.
        let (a, mut b) = unsafe {
            use std::os::fd::FromRawFd;
            (
                std::os::unix::net::UnixStream::from_raw_fd(a),
                std::os::unix::net::UnixStream::from_raw_fd(b),
            )
        };
        let reader = sylvan::spawn(move || {
            let mut buf = [0u8; 1];
            (&a).read_exact(&mut buf).unwrap();
            a.into_raw_fd()
        });
        sylvan::sleep(Duration::from_millis(20)); // the reader parks (registered)
        b.write_all(b"x").unwrap();
        reader.join().unwrap();
        let _ = b.into_raw_fd();
        assert_eq!(open_fds().into_iter().max(), Some(top + 1));
        close_all(top);
        let mut fillers = Vec::new();
        loop {
            // SAFETY: a NUL-terminated path.
            let n = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
            assert!(n >= 0);
            if n >= top {
                // Closed behind the patch's back, so as not to make it
                // forget `top` itself.
                // SAFETY: our own fresh descriptor.
                unsafe { libc::syscall(libc::SYS_close, n) };
                break;
            }
            // SAFETY: a fresh descriptor owned by nothing else.
            fillers
                .push(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(n) });
        }
        let (mut r, mut w) = pipe();
        assert_eq!((r.as_raw_fd(), w.as_raw_fd()), (top, top + 1));
        let reader = sylvan::spawn(move || {
            let mut buf = [0u8; 3];
            r.read_exact(&mut buf)
                .map(|()| buf)
                .map_err(|e| e.to_string())
        });
        sylvan::yield_now();
        let writer = sylvan::spawn(move || w.write_all(b"abc").map_err(|e| e.to_string()));
        let got = (writer.join().unwrap(), reader.join().unwrap());
        drop(fillers);
        got
    });
    assert_eq!(got, (Ok(()), Ok(*b"abc")));
}

#[test]
fn close_range_forgets_the_numbers_it_closes() {
    if !alone_in_a_process("close_range_forgets_the_numbers_it_closes") {
        return;
    }
    range_close_forgets(|top| {
        let (first, last) = (top as u32, top as u32 + 1);
        // SAFETY: the two numbers are the test's and nothing else uses them.
        let r = unsafe { libc::close_range(first, last, 0) };
        assert_eq!(r, 0);
    });
}

#[test]
fn closefrom_forgets_the_numbers_it_closes() {
    if !alone_in_a_process("closefrom_forgets_the_numbers_it_closes") {
        return;
    }
    range_close_forgets(|top| {
        // SAFETY: only the test's two numbers are open from `top` up.
        unsafe { closefrom(top) };
    });
}
