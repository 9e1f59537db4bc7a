//! A TCP stream whose reads and writes fail with `TimedOut` once a deadline has passed,
//! however the peer trickles its bytes.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

pub struct Timed {
    tcp: TcpStream,
    deadline: Instant,
}

impl Timed {
    pub fn new(tcp: TcpStream, deadline: Instant) -> Timed {
        Timed { tcp, deadline }
    }

    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// Ends the connection after an answer: sends FIN, then takes what the client sent
    /// beyond its request, so that closing does not reset the connection before the
    /// client has read the answer. A client whose request was refused before it was read
    /// whole may still be sending: its bytes are taken as they come (at most 1 MiB, for at
    /// most 2 s); otherwise only those already here, so the connection's place is free at
    /// once.
    pub fn finish(&mut self, request_read: bool) {
        let _ = self.tcp.shutdown(std::net::Shutdown::Write);
        if request_read && self.tcp.set_nonblocking(true).is_err() {
            return;
        }
        self.deadline = Instant::now() + std::time::Duration::from_secs(2);
        let _ = io::copy(&mut (&mut *self).take(1 << 20), &mut io::sink());
    }

    /// The time left, or `TimedOut` when there is none.
    fn left(&self) -> io::Result<std::time::Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

/// Socket timeouts surface as `WouldBlock` on Unix; callers see one kind.
fn timed_out(e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock => io::ErrorKind::TimedOut.into(),
        _ => e,
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.left()?))?;
        self.tcp.read(buf).map_err(timed_out)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.left()?))?;
        self.tcp.write(buf).map_err(timed_out)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Duration;

    #[test]
    fn a_silent_peer_times_out_at_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let started = Instant::now();
        let mut timed = Timed::new(server, started + Duration::from_millis(100));
        let err = timed.read(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(100));
        // Past the deadline, no further wait.
        assert_eq!(
            timed.read(&mut [0; 8]).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
    }
}
