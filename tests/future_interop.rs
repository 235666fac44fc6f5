//! Async interop (issue 16): futures run inside fibers with
//! `sylvan::future::block_on`, fibers awaited from async code, sylvan
//! sockets driven through `futures-io` by a protocol crate, and the tokio
//! recipe. Outcomes are asserted; waits are bounded.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

mod support;

fn one_worker() -> sylvan::Runtime {
    sylvan::Runtime::builder().workers(1).build().unwrap()
}

#[test]
fn a_thousand_fibers_await_an_async_channel_fed_by_a_fiber_and_a_thread() {
    let rt = one_worker();
    let (tx, rx) = async_channel::unbounded::<u64>();
    let total = rt.block_on(move || {
        let receivers: Vec<_> = (0..1000)
            .map(|_| {
                let rx = rx.clone();
                sylvan::spawn(move || sylvan::future::block_on(rx.recv()).unwrap())
            })
            .collect();
        // Half from a fiber, half from a plain thread.
        let fiber_tx = tx.clone();
        let feeder = sylvan::spawn(move || {
            for i in 0..500u64 {
                sylvan::future::block_on(fiber_tx.send(i)).unwrap();
            }
        });
        let thread_tx = tx.clone();
        let thread = std::thread::spawn(move || {
            for i in 500..1000u64 {
                thread_tx.send_blocking(i).unwrap();
            }
        });
        feeder.join().unwrap();
        let total: u64 = receivers.into_iter().map(|r| r.join().unwrap()).sum();
        thread.join().unwrap();
        total
    });
    assert_eq!(total, (0..1000).sum::<u64>());
}

/// Never ready, never wakes; says when it is dropped.
struct Forever(Arc<AtomicBool>);

impl Future for Forever {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for Forever {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn timeout_and_cancel_drop_a_future_that_is_never_woken() {
    let rt = one_worker();
    rt.block_on(|| {
        let dropped = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let d = dropped.clone();
        let r = sylvan::timeout(Duration::from_millis(20), || {
            sylvan::future::block_on(Forever(d))
        });
        assert!(r.is_err());
        assert!(dropped.load(Ordering::SeqCst));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(20) && took < Duration::from_secs(5),
            "{took:?}"
        );

        let dropped = Arc::new(AtomicBool::new(false));
        let d = dropped.clone();
        let waiting = Arc::new(sylvan::sync::Event::new());
        let w = waiting.clone();
        let fiber = sylvan::spawn(move || {
            let forever = Forever(d);
            w.set();
            sylvan::future::block_on(forever)
        });
        waiting.wait();
        fiber.cancel();
        assert!(fiber.join().unwrap_err().is_cancelled());
        assert!(dropped.load(Ordering::SeqCst));
    });
}

#[test]
fn an_executor_on_a_plain_thread_awaits_fibers() {
    let fibers: Vec<_> = (0..50u64)
        .map(|i| {
            sylvan::spawn(move || {
                sylvan::sleep(Duration::from_millis(i % 5));
                i * 2
            })
        })
        .collect();
    let values = futures::executor::block_on(futures::future::join_all(fibers));
    let values: Vec<u64> = values.into_iter().map(Result::unwrap).collect();
    assert_eq!(values, (0..50).map(|i| i * 2).collect::<Vec<_>>());
    // A panicking fiber's JoinError comes through the await.
    let err = futures::executor::block_on(sylvan::spawn(|| panic!("awaited"))).unwrap_err();
    assert!(err.is_panic());
}

#[test]
fn a_futures_io_protocol_crate_runs_over_sylvan_sockets() {
    // A gzip line protocol (async-compression over futures-io) on loopback:
    // the client streams compressed lines while reading the compressed
    // replies in the same future (futures::join!), so a poll that blocked
    // would deadlock the exchange.
    use async_compression::futures::bufread::GzipDecoder;
    use async_compression::futures::write::GzipEncoder;
    const LINES: usize = 2000;
    // miniz_oxide's deflate, unoptimised, keeps large arrays on the stack:
    // more than a fiber's default 256 KiB in a debug build.
    let rt = sylvan::Runtime::builder()
        .workers(1)
        .stack_size(2 << 20)
        .build()
        .unwrap();
    let echoed = rt.block_on(|| {
        let listener = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = sylvan::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            sylvan::future::block_on(async move {
                let mut lines = BufReader::new(GzipDecoder::new(BufReader::new(&conn))).lines();
                let mut out = GzipEncoder::new(&conn);
                let mut n = 0;
                while let Some(line) = futures::StreamExt::next(&mut lines).await {
                    out.write_all(line.unwrap().to_uppercase().as_bytes())
                        .await
                        .unwrap();
                    out.write_all(b"\n").await.unwrap();
                    n += 1;
                }
                out.close().await.unwrap();
                n
            })
        });
        let conn = sylvan::net::TcpStream::connect(addr).unwrap();
        let echoed = sylvan::future::block_on(async {
            let send = async {
                let mut out = GzipEncoder::new(&conn);
                for i in 0..LINES {
                    out.write_all(format!("line {i}\n").as_bytes())
                        .await
                        .unwrap();
                }
                out.close().await.unwrap(); // also shuts the write side
            };
            let receive = async {
                let mut text = String::new();
                GzipDecoder::new(BufReader::new(&conn))
                    .read_to_string(&mut text)
                    .await
                    .unwrap();
                text
            };
            futures::join!(send, receive).1
        });
        assert_eq!(server.join().unwrap(), LINES);
        echoed
    });
    let lines: Vec<&str> = echoed.lines().collect();
    assert_eq!(lines.len(), LINES);
    assert_eq!(lines[0], "LINE 0");
    assert_eq!(lines[LINES - 1], format!("LINE {}", LINES - 1));
}

#[test]
fn async_io_polled_off_the_workers_says_so() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let conn = sylvan::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 4];
    let err = futures::executor::block_on((&conn).read(&mut buf)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("inside a fiber"), "{err}");
}

/// The tokio recipe: a tokio-only crate (here tokio's own TcpStream and
/// timer) runs on a tokio runtime beside sylvan; a fiber `block_on`s the
/// `JoinHandle` tokio's `spawn` returns, parking (not blocking its worker)
/// until tokio is done.
#[test]
fn the_tokio_recipe() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handle = tokio_rt.handle().clone();
    let rt = one_worker();
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticked = ticks.clone();
    let reply = rt.block_on(move || {
        // A sylvan server the tokio task talks to.
        let listener = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = sylvan::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut req = [0u8; 5];
            std::io::Read::read_exact(&mut conn, &mut req).unwrap();
            std::io::Write::write_all(&mut conn, &req.to_ascii_uppercase()).unwrap();
        });
        // Another fiber on the same (only) worker keeps running meanwhile.
        let t = ticks.clone();
        let ticker = sylvan::spawn(move || {
            for _ in 0..5 {
                sylvan::sleep(Duration::from_millis(2));
                t.fetch_add(1, Ordering::SeqCst);
            }
        });
        let task = handle.spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"hello").await.unwrap();
            let mut reply = [0u8; 5];
            s.read_exact(&mut reply).await.unwrap();
            reply
        });
        let reply = sylvan::future::block_on(task).unwrap();
        server.join().unwrap();
        ticker.join().unwrap();
        reply
    });
    assert_eq!(&reply, b"HELLO");
    assert_eq!(ticked.load(Ordering::SeqCst), 5);
}

/// Async code's cooperative yield: wakes its own task and returns
/// `Pending` once (as `tokio::task::yield_now` does).
struct YieldNow(bool);
impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A future that wakes itself while polled: `block_on` still gives the
/// worker's other fibers a turn, and a timeout around it still lands (found
/// by review: it re-polled at once, for ever, without a park point).
#[test]
fn block_on_of_a_future_that_yields_lets_others_run_and_can_time_out() {
    let (ran, timed_out) = support::bounded(Duration::from_secs(20), || {
        one_worker().block_on(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let f = flag.clone();
            let other = sylvan::spawn(move || f.store(true, Ordering::SeqCst));
            let deadline = Instant::now() + Duration::from_secs(3);
            let ran = sylvan::future::block_on(async {
                while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                    YieldNow(false).await;
                }
                flag.load(Ordering::SeqCst)
            });
            other.join().unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            let timed_out = sylvan::timeout(Duration::from_millis(50), || {
                sylvan::future::block_on(async move {
                    while Instant::now() < deadline {
                        YieldNow(false).await;
                    }
                })
            })
            .is_err();
            (ran, timed_out)
        })
    });
    assert!(
        ran,
        "the worker's other fiber never ran while block_on yielded"
    );
    assert!(timed_out, "the 50 ms timeout never interrupted block_on");
}

/// An async read loop against a peer that keeps the socket full yields to
/// the worker's other fibers, as the blocking read does (found by review:
/// poll_read had no cooperative budget).
#[test]
fn an_async_read_loop_against_a_flooding_peer_lets_other_fibers_run() {
    let ran = support::bounded(Duration::from_secs(30), || {
        one_worker().block_on(|| {
            let listener = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let flooder = std::thread::spawn(move || {
                let mut conn = std::net::TcpStream::connect(addr).unwrap();
                let chunk = vec![1u8; 1 << 16];
                let until = Instant::now() + Duration::from_secs(10);
                while !s.load(Ordering::SeqCst) && Instant::now() < until {
                    if std::io::Write::write_all(&mut conn, &chunk).is_err() {
                        break;
                    }
                }
            });
            let (conn, _) = listener.accept().unwrap();
            // Data is flowing.
            let mut first = [0u8; 1];
            std::io::Read::read_exact(&mut &conn, &mut first).unwrap();
            let flag = Arc::new(AtomicBool::new(false));
            let f = flag.clone();
            let other = sylvan::spawn(move || f.store(true, Ordering::SeqCst));
            let deadline = Instant::now() + Duration::from_secs(3);
            let ran = sylvan::future::block_on(async {
                let mut byte = [0u8; 1];
                while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                    if (&conn).read(&mut byte).await.unwrap() == 0 {
                        break;
                    }
                }
                flag.load(Ordering::SeqCst)
            });
            stop.store(true, Ordering::SeqCst);
            drop(conn);
            other.join().unwrap();
            flooder.join().unwrap();
            ran
        })
    });
    assert!(
        ran,
        "the worker's other fiber never ran during the async reads"
    );
}

/// Polls that their task abandoned (a select, a timeout around block_on)
/// leave no waker behind on an idle socket (found by review: each added
/// one to the socket's waiter list until its next readiness edge).
#[test]
fn abandoned_async_reads_leave_no_wakers_on_an_idle_socket() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    impl std::task::Wake for Counted {
        fn wake(self: Arc<Self>) {}
    }
    const POLLS: usize = 1000;
    let live = support::bounded(Duration::from_secs(60), || {
        one_worker().block_on(|| {
            let listener = sylvan::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let conn = sylvan::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (_peer, _) = listener.accept().unwrap(); // open, silent
            let live = Arc::new(AtomicUsize::new(0));
            let mut buf = [0u8; 16];
            for _ in 0..POLLS {
                live.fetch_add(1, Ordering::SeqCst);
                let waker = std::task::Waker::from(Arc::new(Counted(live.clone())));
                let mut cx = Context::from_waker(&waker);
                let r = futures::io::AsyncRead::poll_read(Pin::new(&mut &conn), &mut cx, &mut buf);
                assert!(r.is_pending());
            }
            live.load(Ordering::SeqCst)
        })
    });
    assert!(
        live <= 1,
        "{live} wakers of {POLLS} abandoned polls are still held"
    );
}
