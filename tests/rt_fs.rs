//! `sylvan::fs` as a user would use it: whole-file functions, directories,
//! `File` with `Read`/`Write`/`Seek`, errors with std's kinds, and the
//! point of it all: a fiber blocked in file IO does not stall its worker.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sylvan::sync::Event;

fn temp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sylvan-fs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn files_and_directories_round_trip() {
    let dir = temp("round");
    let d = dir.clone();
    let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(move || {
        use sylvan::fs;
        fs::create_dir_all(d.join("sub")).unwrap();
        let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
        fs::write(d.join("big.bin"), &data).unwrap();
        assert_eq!(fs::read(d.join("big.bin")).unwrap(), data);
        assert_eq!(fs::metadata(d.join("big.bin")).unwrap().len(), 1 << 20);
        assert_eq!(
            fs::copy(d.join("big.bin"), d.join("sub/copy.bin")).unwrap(),
            1 << 20
        );
        fs::rename(d.join("sub/copy.bin"), d.join("sub/moved.bin")).unwrap();
        let mut names: Vec<String> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["big.bin", "sub"]);
        assert!(fs::exists(d.join("sub/moved.bin")).unwrap());
        assert!(!fs::exists(d.join("sub/copy.bin")).unwrap());
        assert_eq!(
            fs::read_to_string(d.join("missing")).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        assert_eq!(
            fs::create_dir(d.join("sub")).unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );

        // File: buffered writes, seeks, reads, append.
        let path = d.join("lines.txt");
        let mut w = std::io::BufWriter::new(fs::File::create(&path).unwrap());
        for i in 0..10_000 {
            writeln!(w, "line {i}").unwrap();
        }
        w.into_inner().unwrap().sync_all().unwrap();
        let f = fs::File::open(&path).unwrap();
        let lines: Vec<String> = BufReader::new(&f).lines().map(Result::unwrap).collect();
        assert_eq!(lines.len(), 10_000);
        assert_eq!(lines[9_999], "line 9999");
        let mut f = fs::File::open(&path).unwrap();
        f.seek(SeekFrom::Start(5)).unwrap();
        let mut five = [0u8; 6];
        f.read_exact(&mut five).unwrap();
        assert_eq!(&five, b"0\nline");
        let mut log = fs::OpenOptions::new().append(true).open(&path).unwrap();
        log.write_all(b"the end\n").unwrap();
        assert!(fs::read_to_string(&path)
            .unwrap()
            .ends_with("line 9999\nthe end\n"));
        assert_eq!(
            f.metadata().unwrap().len(),
            fs::metadata(&path).unwrap().len()
        );
        fs::remove_dir_all(&d).unwrap();
        assert!(!fs::exists(&d).unwrap());
    });
}

#[test]
fn a_fiber_blocked_in_file_io_does_not_stall_its_worker() {
    // A FIFO: opening it for reading blocks until a writer opens it. The
    // reader fiber blocks in fs::read on the pool; another fiber on the same
    // (only) worker must still run, and only then does a plain thread write.
    let dir = temp("fifo");
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path has no memory effects.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    let other_ran = Arc::new(Event::new());
    let writer = {
        let (ran, fifo) = (other_ran.clone(), fifo.clone());
        std::thread::spawn(move || {
            assert!(
                ran.wait_timeout(Duration::from_secs(60)),
                "the worker was stalled by the fiber in file IO"
            );
            std::fs::write(fifo, b"through the pipe").unwrap();
        })
    };
    let f = fifo.clone();
    let got = rt.block_on(move || {
        let reader = sylvan::spawn(move || sylvan::fs::read(&f).unwrap());
        let other = sylvan::spawn(move || other_ran.set());
        other.join().unwrap();
        reader.join().unwrap()
    });
    writer.join().unwrap();
    assert_eq!(got, b"through the pipe");
    std::fs::remove_dir_all(&dir).unwrap();
}
