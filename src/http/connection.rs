//! An `embedded-svc` HTTP server connection over a request already received and a
//! buffered response, so the routes never see the transport: [`TinyConnection`] for
//! `tiny_http` (requests arrive through the [`front`](super::front), whole), and
//! [`MemoryConnection`] for a request held in memory (the fuzz targets, the backend's
//! tests).

use std::io;

use embedded_svc::http::server::Connection;
use embedded_svc::http::{Headers, Method, Query};
use embedded_svc::io::{ErrorType, Read, Write};

use super::front::request::PEER_HEADER;
use crate::service::Peer;

/// Request line and headers, copied out of the transport.
#[derive(Debug)]
pub struct Head {
    method: Method,
    uri: String,
    headers: Vec<(String, String)>,
    peer: Option<std::net::IpAddr>,
}

impl Head {
    pub fn new(
        method: Method,
        uri: String,
        headers: Vec<(String, String)>,
        peer: Option<std::net::IpAddr>,
    ) -> Head {
        Head {
            method,
            uri,
            headers,
            peer,
        }
    }
}

impl Query for Head {
    fn uri(&self) -> &str {
        &self.uri
    }
    fn method(&self) -> Method {
        self.method
    }
}

impl Headers for Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The request body, read straight from the socket.
pub struct Body(tiny_http::Request);

impl ErrorType for Body {
    type Error = io::Error;
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, io::Error> {
        self.0.as_reader().read(buf)
    }
}

/// A request body held in memory.
pub struct MemoryBody(io::Cursor<Vec<u8>>);

impl ErrorType for MemoryBody {
    type Error = io::Error;
}

impl Read for MemoryBody {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, io::Error> {
        io::Read::read(&mut self.0, buf)
    }
}

/// The raw socket is not exposed.
pub struct NoRawConnection;

impl ErrorType for NoRawConnection {
    type Error = io::Error;
}

impl Read for NoRawConnection {
    fn read(&mut self, _: &mut [u8]) -> Result<usize, io::Error> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl Write for NoRawConnection {
    fn write(&mut self, _: &[u8]) -> Result<usize, io::Error> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn flush(&mut self) -> Result<(), io::Error> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// A response as the handler wrote it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One request/response exchange on a request body `B`. Responses are small (JSON
/// documents, the kiosk's page and preview frames), so they are buffered, to be sent whole
/// with an exact `Content-Length`.
pub struct Buffered<B> {
    head: Head,
    body: B,
    response: Option<Response>,
}

/// An exchange with `tiny_http`, answered by [`TinyConnection::finish`].
pub type TinyConnection = Buffered<Body>;

/// An exchange held in memory; the response is [`Buffered::response`].
pub type MemoryConnection = Buffered<MemoryBody>;

impl<B> Buffered<B> {
    fn with(head: Head, body: B) -> Buffered<B> {
        Buffered {
            head,
            body,
            response: None,
        }
    }
}

impl MemoryConnection {
    pub fn new(head: Head, body: Vec<u8>) -> MemoryConnection {
        Buffered::with(head, MemoryBody(io::Cursor::new(body)))
    }

    /// `method uri` with `headers` and `body`, as the front passes a request on: with its
    /// `Content-Length`, and no peer address.
    pub fn request(
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> MemoryConnection {
        let mut all = vec![("Content-Length".to_string(), body.len().to_string())];
        all.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        MemoryConnection::new(Head::new(method, uri.to_string(), all, None), body.to_vec())
    }

    /// What the handler answered, if it started a response.
    pub fn response(&self) -> Option<&Response> {
        self.response.as_ref()
    }

    /// The same, taken.
    pub fn into_response(self) -> Option<Response> {
        self.response
    }
}

impl TinyConnection {
    pub fn new(request: tiny_http::Request) -> TinyConnection {
        let mut headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|h| (h.field.to_string(), h.value.to_string()))
            .collect();
        // Only the front reaches this server, and it sets the client's address here.
        let peer = headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(PEER_HEADER))
            .and_then(|i| headers.remove(i).1.parse().ok());
        let head = Head::new(
            method(request.method()),
            request.url().to_string(),
            headers,
            peer,
        );
        Buffered::with(head, Body(request))
    }

    /// Sends the response (a bare 500 if the handler never started one).
    pub fn finish(self) -> io::Result<()> {
        let pending = self.response.unwrap_or(Response {
            status: 500,
            headers: Vec::new(),
            body: Vec::new(),
        });
        // Buffered, so always sent with its length (tiny_http would chunk above 32 KiB).
        let mut response = tiny_http::Response::from_data(pending.body)
            .with_status_code(pending.status)
            .with_chunked_threshold(usize::MAX);
        for (name, value) in &pending.headers {
            if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(h);
            }
        }
        self.body.0.respond(response)
    }
}

fn method(m: &tiny_http::Method) -> Method {
    use tiny_http::Method as T;
    match m {
        T::Get => Method::Get,
        T::Head => Method::Head,
        T::Post => Method::Post,
        T::Put => Method::Put,
        T::Delete => Method::Delete,
        T::Connect => Method::Connect,
        T::Options => Method::Options,
        T::Trace => Method::Trace,
        T::Patch => Method::Patch,
        // No route accepts other methods; they are answered 405 like any unexpected one.
        T::NonStandard(_) => Method::Unlink,
    }
}

impl<B> Query for Buffered<B> {
    fn uri(&self) -> &str {
        self.head.uri()
    }
    fn method(&self) -> Method {
        self.head.method()
    }
}

impl<B> Headers for Buffered<B> {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }
}

impl<B> Peer for Buffered<B> {
    fn peer(&self) -> Option<std::net::IpAddr> {
        self.head.peer
    }
}

impl<B> ErrorType for Buffered<B> {
    type Error = io::Error;
}

impl<B: Read<Error = io::Error>> Read for Buffered<B> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, io::Error> {
        self.body.read(buf)
    }
}

impl<B> Write for Buffered<B> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, io::Error> {
        match &mut self.response {
            Some(p) => {
                p.body.extend_from_slice(buf);
                Ok(buf.len())
            }
            None => Err(io::Error::other("response not started")),
        }
    }
    fn flush(&mut self) -> Result<(), io::Error> {
        Ok(())
    }
}

impl<B: Read<Error = io::Error>> Connection for Buffered<B> {
    type Headers = Head;
    type Read = B;
    type RawConnectionError = io::Error;
    type RawConnection = NoRawConnection;

    fn split(&mut self) -> (&Head, &mut B) {
        (&self.head, &mut self.body)
    }

    fn initiate_response(
        &mut self,
        status: u16,
        _message: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<(), io::Error> {
        if self.response.is_some() {
            return Err(io::Error::other("response already started"));
        }
        let headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        self.response = Some(Response {
            status,
            headers,
            body: Vec::new(),
        });
        Ok(())
    }

    fn is_response_initiated(&self) -> bool {
        self.response.is_some()
    }

    fn raw_connection(&mut self) -> Result<&mut NoRawConnection, io::Error> {
        Err(io::ErrorKind::Unsupported.into())
    }
}
