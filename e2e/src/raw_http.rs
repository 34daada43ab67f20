//! HTTP/1.1 on a raw socket, for what common clients hide: request and response trailers.
//! [`send`] writes one request (chunked, with trailers, when it has any) and reads the whole
//! answer; [`TrailerEcho`] is an upstream that answers every request with the request's own
//! text as a chunked body followed by a trailer, so a test sees what reached the upstream.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::HarnessError;

/// The trailer [`TrailerEcho`] ends every answer with.
pub const ECHO_TRAILER: (&str, &str) = ("x-upstream", "done");

/// A parsed answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawAnswer {
    /// The status code.
    pub status: u16,
    /// Headers, names lower case.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: String,
    /// Trailers, names lower case.
    pub trailers: Vec<(String, String)>,
}

impl RawAnswer {
    /// A header's first value.
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// A trailer's first value.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        find(&self.trailers, name)
    }

    /// As the harness's usual [`crate::mesh::Answer`] (trailers left out).
    pub fn into_answer(self) -> crate::mesh::Answer {
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(name), HeaderValue::try_from(value))
            {
                headers.append(name, value);
            }
        }
        crate::mesh::Answer {
            status: self.status,
            headers,
            body: self.body,
        }
    }
}

fn find<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Sends `method path` to `addr` with `headers`, `body` and `trailers`, on a connection that
/// closes after the answer, and parses the answer.
pub async fn send(
    addr: SocketAddr,
    (method, path): (&str, &str),
    headers: &[(&str, &str)],
    body: &str,
    trailers: &[(&str, &str)],
) -> Result<RawAnswer, HarnessError> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if trailers.is_empty() {
        request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    } else {
        request.push_str("transfer-encoding: chunked\r\nte: trailers\r\n\r\n");
        if !body.is_empty() {
            request.push_str(&format!("{:x}\r\n{body}\r\n", body.len()));
        }
        request.push_str("0\r\n");
        for (name, value) in trailers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
    }
    send_raw(addr, request.as_bytes()).await
}

/// Writes `request` as given (any bytes, e.g. a header value that is not UTF-8) on a new
/// connection, reads the whole answer and parses it.
pub async fn send_raw(addr: SocketAddr, request: &[u8]) -> Result<RawAnswer, HarnessError> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(HarnessError::io("connecting"))?;
    stream
        .write_all(request)
        .await
        .map_err(HarnessError::io("writing the request"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(HarnessError::io("reading the answer"))?;
    parse(&String::from_utf8_lossy(&answer))
}

fn pairs(lines: &str) -> Vec<(String, String)> {
    lines
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

/// Parses a whole HTTP/1.1 answer: status line, headers, a chunked or sized body, trailers.
pub fn parse(text: &str) -> Result<RawAnswer, HarnessError> {
    let bad = |why: &str| HarnessError::NotReady(format!("malformed answer ({why}): {text:?}"));
    let (head, mut rest) = text.split_once("\r\n\r\n").ok_or_else(|| bad("no head"))?;
    let (status_line, header_lines) = head.split_once("\r\n").unwrap_or((head, ""));
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("status"))?;
    let headers = pairs(header_lines);
    let chunked = find(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked"));
    if !chunked {
        return Ok(RawAnswer {
            status,
            headers,
            body: rest.to_string(),
            trailers: Vec::new(),
        });
    }
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or_else(|| bad("chunk size"))?;
        let size = usize::from_str_radix(size.trim(), 16).map_err(|_| bad("chunk size"))?;
        if size == 0 {
            let trailers = after.strip_suffix("\r\n").unwrap_or(after);
            return Ok(RawAnswer {
                status,
                headers,
                body,
                trailers: pairs(trailers),
            });
        }
        let chunk = after.get(..size).ok_or_else(|| bad("short chunk"))?;
        body.push_str(chunk);
        rest = after.get(size + 2..).ok_or_else(|| bad("chunk end"))?;
    }
}

/// An upstream on loopback answering each request with its own text (head, de-chunked body,
/// trailers) as a chunked body, then trailer [`ECHO_TRAILER`]. Stops when dropped.
#[derive(Debug)]
pub struct TrailerEcho {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TrailerEcho {
    /// Starts it on `127.0.0.1`, any port.
    pub async fn start() -> Result<Self, HarnessError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(HarnessError::io("binding the echo upstream"))?;
        let addr = listener
            .local_addr()
            .map_err(HarnessError::io("echo address"))?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(echo(stream));
            }
        });
        Ok(Self { addr, task })
    }
}

impl Drop for TrailerEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether `text` holds a whole request: its head, and the end of a chunked body if any.
fn complete(text: &str) -> bool {
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let head = head.to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        return body.starts_with("0\r\n") && body.ends_with("\r\n\r\n")
            || body.contains("\r\n0\r\n") && body.ends_with("\r\n\r\n");
    }
    let length = pairs(&head)
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    body.len() >= length
}

async fn echo(mut stream: TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded: a request larger than 1 MiB is not one of ours.
    while seen.len() < 1 << 20 {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        seen.extend_from_slice(&buf[..n]);
        if complete(&String::from_utf8_lossy(&seen)) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&seen).into_owned();
    let (name, value) = ECHO_TRAILER;
    let answer = format!(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: {name}\r\n\
         connection: close\r\n\r\n{:x}\r\n{text}\r\n0\r\n{name}: {value}\r\n\r\n",
        text.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_chunked_answer_with_trailers_parses() {
        let text = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-a: 1\r\n\r\n\
                    3\r\nabc\r\n2\r\nde\r\n0\r\nx-t: 2\r\n\r\n";
        let answer = parse(text).expect("parses");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("x-a"), Some("1"));
        assert_eq!(answer.body, "abcde");
        assert_eq!(answer.trailer("x-t"), Some("2"));
    }
}
