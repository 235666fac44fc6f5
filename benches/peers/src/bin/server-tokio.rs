//! HTTP hello / TCP echo server on tokio: a task per connection; the async
//! twin of the shared blocking handlers (same parser, same buffering).
//! usage: server-tokio http|echo ADDR WORKERS

use sylvan_peers::{parse, server_args, Parsed, RESPONSE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn serve_http(mut conn: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut have = 0;
    let mut out = Vec::with_capacity(4096);
    loop {
        let mut used = 0;
        loop {
            match parse(&buf[used..have]) {
                Parsed::Request(len) => {
                    out.extend_from_slice(RESPONSE);
                    used += len;
                }
                Parsed::Partial => break,
                Parsed::Bad => {
                    out.extend_from_slice(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    conn.write_all(&out).await?;
                    return Ok(());
                }
            }
        }
        if !out.is_empty() {
            conn.write_all(&out).await?;
            out.clear();
        }
        buf.copy_within(used..have, 0);
        have -= used;
        if have == buf.len() {
            return Ok(());
        }
        let n = conn.read(&mut buf[have..]).await?;
        if n == 0 {
            return Ok(());
        }
        have += n;
    }
}

async fn serve_echo(mut conn: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n]).await?;
    }
}

fn main() {
    let (kind, addr, workers) = server_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await.unwrap();
        loop {
            let (conn, _) = listener.accept().await.unwrap();
            conn.set_nodelay(true).unwrap();
            let http = kind == "http";
            tokio::spawn(async move {
                let _ = if http {
                    serve_http(conn).await
                } else {
                    serve_echo(conn).await
                };
            });
        }
    });
}
