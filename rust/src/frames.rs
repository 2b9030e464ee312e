//! NATS protocol frames: a read buffer cut into complete frames, and `PUB` frames
//! written for many small messages at once.
//!
//! The service reads its log as one busy subscription. Cutting the client's read
//! buffer here lets that subscription's messages skip the client's per-message
//! parsing and dispatch, while every other frame (pings, other subscriptions'
//! messages, errors) still goes to the client whole and in order. The other way,
//! one route message per committed order line is written here as a `PUB` frame,
//! so the client is handed a batch's routes as one piece.

/// One complete frame at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// `MSG` or `HMSG`: a delivered message.
    Msg(Delivered<'a>),
    /// Any other protocol line (`PING`, `INFO`, `-ERR`, ...), or a line that is not
    /// valid protocol: the client's own parser decides what it means.
    Other,
}

/// The parts of a delivered message, borrowed from the buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivered<'a> {
    pub subject: &'a [u8],
    pub sid: &'a [u8],
    pub reply: Option<&'a [u8]>,
    /// The raw header block of an `HMSG` (`NATS/1.0...\r\n\r\n`).
    pub headers: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

const CRLF: usize = 2;

/// Whether `token` can end a subject in a `PUB` line as it is: printable ASCII, no
/// space. Anything else is left to the client, which checks subjects its own way.
pub fn plain_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Appends `PUB <prefix><token> <len>\r\n<payload>\r\n`.
pub fn write_pub(out: &mut Vec<u8>, prefix: &str, token: &str, payload: &[u8]) {
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(token.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// The frame starting at `buf[0]` and its length, or `None` while it is incomplete.
pub fn next_frame(buf: &[u8]) -> Option<(Frame<'_>, usize)> {
    let newline = buf.iter().position(|&b| b == b'\n')?;
    let line_len = newline + 1;
    let line = buf[..newline]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[..newline]);
    let mut args = line
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|t| !t.is_empty());
    let op = args.next().unwrap_or_default();
    let has_headers = if op.eq_ignore_ascii_case(b"MSG") {
        false
    } else if op.eq_ignore_ascii_case(b"HMSG") {
        true
    } else {
        return Some((Frame::Other, line_len));
    };
    let args: Vec<&[u8]> = args.collect();
    let Some(parsed) = message_args(&args, has_headers) else {
        return Some((Frame::Other, line_len)); // malformed: the client raises on it
    };
    let end = line_len.checked_add(parsed.total)?.checked_add(CRLF)?;
    if buf.len() < end {
        return None;
    }
    let body = &buf[line_len..line_len + parsed.total];
    let (headers, payload) = match parsed.header_len {
        Some(h) => (Some(&body[..h]), &body[h..]),
        None => (None, body),
    };
    let delivered = Delivered {
        subject: args[0],
        sid: args[1],
        reply: parsed.reply,
        headers,
        payload,
    };
    Some((Frame::Msg(delivered), end))
}

struct MessageArgs<'a> {
    reply: Option<&'a [u8]>,
    header_len: Option<usize>,
    total: usize,
}

/// `subject sid [reply] size` for MSG, `subject sid [reply] header_size total_size` for HMSG.
fn message_args<'a>(args: &[&'a [u8]], has_headers: bool) -> Option<MessageArgs<'a>> {
    let sizes = if has_headers { 2 } else { 1 };
    let reply = match args.len().checked_sub(2 + sizes)? {
        0 => None,
        1 => Some(args[2]),
        _ => return None,
    };
    let total = number(args[args.len() - 1])?;
    let header_len = if has_headers {
        let h = number(args[args.len() - 2])?;
        if h > total {
            return None;
        }
        Some(h)
    } else {
        None
    };
    Some(MessageArgs {
        reply,
        header_len,
        total,
    })
}

fn number(token: &[u8]) -> Option<usize> {
    std::str::from_utf8(token).ok()?.parse().ok()
}

/// (stream sequence, consumer sequence) from a JetStream delivery's reply subject:
/// `$JS.ACK[.<domain>.<account hash>].<stream>.<consumer>.<delivered>.<stream seq>
/// .<consumer seq>.<ts>.<pending>[.<token>]`, counted from the 11th token back so the
/// layout is the same with or without a domain.
pub fn ack_sequences(reply: &[u8]) -> Option<(u64, u64)> {
    if !reply.starts_with(b"$JS.ACK.") {
        return None;
    }
    let tokens: Vec<&[u8]> = reply.split(|b| *b == b'.').take(11).collect();
    let n = tokens.len();
    if n < 9 {
        return None;
    }
    let seq = |t: &[u8]| std::str::from_utf8(t).ok()?.parse::<u64>().ok();
    Some((seq(tokens[n - 4])?, seq(tokens[n - 3])?))
}

/// A header block as (name, value) pairs; a status line (`NATS/1.0 100 Idle
/// Heartbeat`) becomes `Status` and `Description`, as the client reports them.
pub fn header_pairs(block: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut lines = block
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut pairs = Vec::new();
    if let Some(first) = lines.next() {
        let status_line = first
            .strip_prefix(b"NATS/1.0")
            .unwrap_or_default()
            .trim_ascii();
        if !status_line.is_empty() {
            let (code, description) = match status_line.iter().position(|b| *b == b' ') {
                Some(i) => (&status_line[..i], status_line[i + 1..].trim_ascii()),
                None => (status_line, &b""[..]),
            };
            if code.iter().all(u8::is_ascii_digit) {
                pairs.push((&b"Status"[..], code));
            }
            if !description.is_empty() {
                pairs.push((&b"Description"[..], description));
            }
        }
    }
    for line in lines {
        if let Some(colon) = line.iter().position(|b| *b == b':') {
            pairs.push((line[..colon].trim_ascii(), line[colon + 1..].trim_ascii()));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_pub_frame_the_splitter_reads_back_as_its_parts() {
        let mut out = Vec::new();
        write_pub(&mut out, "inv.route.", "wh-1", b"{\"qty\":2}");
        assert_eq!(out, b"PUB inv.route.wh-1 9\r\n{\"qty\":2}\r\n");
    }

    #[test]
    fn only_plain_tokens_are_written_as_they_are() {
        assert!(plain_token("wh-1") && plain_token("3PL_east"));
        for odd in ["", "wh 1", "wh\t1", "lager-ü", "wh\u{a0}1", "wh\r\n"] {
            assert!(!plain_token(odd), "{odd:?}");
        }
    }

    fn msg(frame: Option<(Frame<'_>, usize)>) -> (Delivered<'_>, usize) {
        match frame {
            Some((Frame::Msg(d), n)) => (d, n),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn a_plain_message_and_its_length() {
        let buf = b"MSG inv.order.a 7 $JS.ACK.S.C.1.5.5.0.0 5\r\nhello\r\nPING\r\n";
        let (d, n) = msg(next_frame(buf));
        assert_eq!(d.subject, b"inv.order.a");
        assert_eq!(d.sid, b"7");
        assert_eq!(d.reply, Some(&b"$JS.ACK.S.C.1.5.5.0.0"[..]));
        assert_eq!(d.payload, b"hello");
        assert_eq!(&buf[n..], b"PING\r\n");
        assert_eq!(next_frame(&buf[n..]), Some((Frame::Other, 6)));
    }

    #[test]
    fn headers_are_split_from_the_payload() {
        let buf = b"HMSG s 1 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n";
        let (d, n) = msg(next_frame(buf));
        assert_eq!(d.reply, None);
        assert_eq!(d.headers, Some(&b"NATS/1.0\r\nA: b\r\n\r\n"[..]));
        assert_eq!(d.payload, b"hi");
        assert_eq!(n, buf.len());
    }

    #[test]
    fn an_incomplete_frame_waits_for_more() {
        assert_eq!(next_frame(b"MSG s 1 5\r\nhel"), None);
        assert_eq!(next_frame(b"MSG s 1 5\r\nhello"), None);
        assert_eq!(next_frame(b"MSG s 1"), None);
    }

    #[test]
    fn malformed_lines_go_to_the_client() {
        assert_eq!(next_frame(b"MSG s\r\n"), Some((Frame::Other, 7)));
        assert_eq!(next_frame(b"HMSG s 1 9 5\r\n"), Some((Frame::Other, 14)));
        assert_eq!(
            next_frame(b"MSG s 1 99999999999999999999999\r\n").map(|f| f.0),
            Some(Frame::Other)
        );
    }

    #[test]
    fn ack_sequences_with_and_without_a_domain() {
        assert_eq!(
            ack_sequences(b"$JS.ACK.S.C.1.42.7.1700000000.0"),
            Some((42, 7))
        );
        assert_eq!(
            ack_sequences(b"$JS.ACK.dom.hash.S.C.1.42.7.1700000000.0.rnd"),
            Some((42, 7))
        );
        assert_eq!(ack_sequences(b"_INBOX.x"), None);
        assert_eq!(ack_sequences(b"$JS.ACK.S.C.1"), None);
    }

    #[test]
    fn status_headers_as_the_client_reports_them() {
        let block = b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 12\r\n\r\n";
        assert_eq!(
            header_pairs(block),
            vec![
                (&b"Status"[..], &b"100"[..]),
                (&b"Description"[..], &b"Idle Heartbeat"[..]),
                (&b"Nats-Last-Consumer"[..], &b"12"[..]),
            ]
        );
        assert_eq!(
            header_pairs(b"NATS/1.0 100\r\n\r\n"),
            vec![(&b"Status"[..], &b"100"[..])]
        );
        assert_eq!(
            header_pairs(b"NATS/1.0\r\nX: y\r\n\r\n"),
            vec![(&b"X"[..], &b"y"[..])]
        );
    }
}
