//! The lab's keep-alive answers (src/lab/http.rs), read by the long-lived clients. Pure (its
//! own file so that the fuzz crate compiles it alone).

/// Why an answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("bad HTTP response: {0}")]
    Http(String),
    #[error("no Content-Length")]
    NoLength,
    #[error("body too long ({0} bytes)")]
    TooLong(usize),
}

/// Parse one keep-alive answer from the start of `buf`: None until it is complete, else the
/// bytes it took and its body (the real's name). Pure; the lab's own server wrote it, but it
/// came over the network.
pub fn parse_answer(buf: &[u8]) -> Result<Option<(usize, String)>, AnswerError> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut r = httparse::Response::new(&mut headers);
    let head = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(AnswerError::Http(e.to_string())),
    };
    let len = r
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
        .ok_or(AnswerError::NoLength)?;
    if len > 256 {
        return Err(AnswerError::TooLong(len));
    }
    if buf.len() < head + len {
        return Ok(None);
    }
    Ok(Some((head + len, String::from_utf8_lossy(&buf[head..head + len]).trim().to_string())))
}
