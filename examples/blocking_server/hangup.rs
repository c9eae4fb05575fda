//! Noticing that the client of a request still being computed has gone, so its work can stop.
//!
//! As Go's `net/http` does (its `connReader.backgroundRead` cancels the request's context when
//! the background read ends with EOF or an error) and as Node.js does by default
//! (`httpAllowHalfOpen` false: `socketOnEnd` aborts the incoming request), the end of the
//! client's stream means it is gone: a client that half-closes its side and still waits for
//! the answer is not served. (TCP cannot tell that client from one that closed the socket:
//! both send the same FIN.)

use std::mem::MaybeUninit;

use futures::AsyncReadExt;

use executor::net::TcpStream;

/// Reads what the client sends while its request is being computed and returns once the client
/// has gone (end of stream or a read error). What it reads (pipelined requests) is appended to
/// `buf`, for the connection to parse next; once `buf` holds `cap` bytes it stops reading and
/// never returns (the client is then only noticed gone after the response).
pub async fn client_gone(conn: &TcpStream, buf: &mut Vec<u8>, cap: usize) {
    let mut chunk = [0u8; 4096];
    let mut reader = conn;
    while buf.len() < cap {
        let want = chunk.len().min(cap - buf.len());
        match reader.read(&mut chunk[..want]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    std::future::pending::<()>().await;
}

/// What a socket holds right now, asked without waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peeked {
    /// Unread input.
    Input,
    /// The end of the client's stream (nothing left before it), or an error: it has gone.
    End,
    /// Nothing yet.
    Nothing,
}

/// Peeks at `conn` (`MSG_PEEK`: the byte stays for the next read).
pub fn peek(conn: &TcpStream) -> Peeked {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    // The socket is non-blocking: no data yet is `WouldBlock`.
    match socket2::SockRef::from(conn).peek(&mut byte) {
        Ok(0) => Peeked::End,
        Ok(_) => Peeked::Input,
        Err(e)
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::Interrupted =>
        {
            Peeked::Nothing
        }
        Err(_) => Peeked::End,
    }
}

/// Whether the client has gone, asked without waiting (for a search that blocks the loop).
/// Unread pipelined data hides an end of stream behind it: then the client counts as present.
pub fn client_gone_now(conn: &TcpStream) -> bool {
    peek(conn) == Peeked::End
}
