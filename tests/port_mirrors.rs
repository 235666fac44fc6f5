//! `sylvan::thread`, `sylvan::sync::mpsc` and `sylvan::sync::poison`
//! against std on the same inputs: one scenario, written once, run with
//! std's modules and with sylvan's; what each observes must be equal
//! (timeouts, disconnection, panics in joined threads/fibers, poisoning).

/// Everything a scenario observed, comparable across the two runs.
#[derive(Debug, PartialEq)]
struct Observed {
    notes: Vec<String>,
}

macro_rules! scenario {
    ($module:ident, $thread:path, $mpsc:path, $poison:path) => {
        mod $module {
            use super::Observed;
            use std::sync::Arc;
            use std::time::{Duration, Instant};
            use $mpsc as mpsc;
            use $poison as poison;
            use $thread as thread;

            pub fn run() -> Observed {
                let mut notes = Vec::new();
                let mut note = |s: String| notes.push(s);

                // mpsc: timeouts and disconnection.
                let (tx, rx) = mpsc::channel::<u32>();
                note(format!("{:?}", rx.try_recv()));
                let t = Instant::now();
                note(format!("{:?}", rx.recv_timeout(Duration::from_millis(20))));
                note(format!(
                    "waited {}",
                    t.elapsed() >= Duration::from_millis(20)
                ));
                tx.send(1).unwrap();
                let tx2 = tx.clone();
                drop(tx);
                tx2.send(2).unwrap();
                drop(tx2);
                note(format!("{:?}", rx.iter().collect::<Vec<_>>()));
                note(format!("{:?}", rx.recv()));
                note(format!("{:?}", rx.try_recv()));
                note(format!("{:?}", rx.recv_timeout(Duration::from_millis(1))));
                let (tx, rx) = mpsc::channel::<String>();
                drop(rx);
                note(format!("{:?}", tx.send("back".into()).unwrap_err().0));

                // sync_channel: full, rendezvous, disconnected.
                let (tx, rx) = mpsc::sync_channel::<u8>(1);
                note(format!("{:?}", tx.try_send(1)));
                note(format!("{:?}", tx.try_send(2)));
                note(format!("{:?}", rx.try_iter().collect::<Vec<_>>()));
                drop(rx);
                note(format!("{:?}", tx.try_send(3)));
                note(format!("{:?}", tx.send(4)));
                let (tx, rx) = mpsc::sync_channel::<u8>(0);
                note(format!("{:?}", tx.try_send(9)));
                let sender = thread::spawn(move || tx.send(7));
                note(format!("{:?}", rx.recv()));
                note(format!("{:?}", sender.join().unwrap()));

                // thread: values, panics (&str and String payloads), names.
                let h = thread::spawn(|| 40 + 2);
                note(format!("{:?}", h.join().unwrap()));
                let payload = thread::spawn(|| -> u8 { panic!("static message") })
                    .join()
                    .unwrap_err();
                note(format!("{:?}", payload.downcast_ref::<&str>()));
                let payload = thread::spawn(|| -> u8 { panic!("formatted {}", 7) })
                    .join()
                    .unwrap_err();
                note(format!("{:?}", payload.downcast_ref::<String>()));
                let named = thread::Builder::new()
                    .name("named".into())
                    .spawn(|| thread::current().name().map(String::from))
                    .unwrap();
                note(format!("{:?}", named.thread().name()));
                note(format!("{:?}", named.join().unwrap()));

                // scope: borrows, joins, and an unjoined panic re-raised.
                let data = vec![1, 2, 3];
                let sum = thread::scope(|s| {
                    let h = s.spawn(|| data.iter().sum::<i32>());
                    h.join().unwrap()
                });
                note(format!("{sum}"));
                let escaped = std::panic::catch_unwind(|| {
                    thread::scope(|s| {
                        s.spawn(|| panic!("in scope"));
                    })
                });
                note(format!("scope panicked: {}", escaped.is_err()));

                // park/unpark: a token, as std's.
                let parked = thread::spawn(|| {
                    thread::park();
                    "unparked"
                });
                parked.thread().unpark();
                note(parked.join().unwrap().to_string());
                thread::current().unpark();
                thread::park(); // the token makes it return at once
                note("token".into());

                // poison: a panic while holding the lock poisons it.
                let m = Arc::new(poison::Mutex::new(5));
                let m2 = m.clone();
                let _ = thread::spawn(move || {
                    let mut g = m2.lock().unwrap();
                    *g += 1;
                    panic!("holding the lock");
                })
                .join();
                note(format!("poisoned {}", m.is_poisoned()));
                match m.lock() {
                    Ok(_) => note("lock ok".into()),
                    Err(e) => note(format!("lock err, data {}", *e.into_inner())),
                }
                m.clear_poison();
                note(format!("after clear {:?}", m.lock().map(|g| *g).ok()));
                let pair = Arc::new((poison::Mutex::new(false), poison::Condvar::new()));
                let p2 = pair.clone();
                thread::spawn(move || {
                    *p2.0.lock().unwrap() = true;
                    p2.1.notify_all();
                });
                let mut ready = pair.0.lock().unwrap();
                while !*ready {
                    ready = pair.1.wait(ready).unwrap();
                }
                let (g, r) = pair
                    .1
                    .wait_timeout(ready, Duration::from_millis(5))
                    .unwrap();
                note(format!("timed out {} with {}", r.timed_out(), *g));
                drop(g);
                Observed { notes }
            }
        }
    };
}

scenario!(with_std, std::thread, std::sync::mpsc, std::sync);
scenario!(
    with_sylvan,
    sylvan::thread,
    sylvan::sync::mpsc,
    sylvan::sync::poison
);

#[test]
fn the_mirrors_behave_as_std_on_a_plain_thread() {
    let std_run = with_std::run();
    let sylvan_run = with_sylvan::run();
    assert_eq!(sylvan_run, std_run);
    assert!(std_run.notes.len() > 20, "{std_run:?}");
}

#[test]
fn the_mirrors_behave_as_std_inside_a_fiber() {
    let std_run = with_std::run();
    let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    let sylvan_run = rt.block_on(with_sylvan::run);
    assert_eq!(sylvan_run, std_run);
}
