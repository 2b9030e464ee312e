//! `FrameSplitter`: one subscription's messages out of the client's read buffer
//! (see `crate::frames`), as `LogMessage` objects, with no per-message Python.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::frames::{ack_sequences, header_pairs, next_frame, Frame};

/// Distinct subjects kept as ready Python strings (a log has a handful; inboxes are unique).
const SUBJECT_CACHE: usize = 4096;

/// A message delivered to the split subscription.
#[pyclass(frozen, get_all, module = "invsync._core")]
pub struct LogMessage {
    subject: Py<PyString>,
    /// The reply subject, except for JetStream deliveries: theirs is read into the two
    /// sequences below and not kept.
    reply: Option<Py<PyString>>,
    headers: Option<Py<PyDict>>,
    data: Py<PyBytes>,
    /// Stream and consumer sequence of a JetStream delivery; 0 for other messages.
    stream_seq: u64,
    consumer_seq: u64,
}

type Split = (usize, Vec<Py<LogMessage>>, Vec<Py<LogMessage>>, Vec<(usize, usize)>);

/// Cuts read buffers for one subscription id.
#[pyclass(module = "invsync._core")]
pub struct FrameSplitter {
    sid: Vec<u8>,
    subjects: HashMap<Vec<u8>, Py<PyString>>,
}

#[pymethods]
impl FrameSplitter {
    #[new]
    fn new(sid: &str) -> Self {
        Self {
            sid: sid.as_bytes().to_vec(),
            subjects: HashMap::new(),
        }
    }

    /// `(consumed, messages, status messages, other spans)` for the complete frames at
    /// the front of `buf`: the subscription's messages (status ones, such as heartbeats
    /// and flow control, apart), and `(start, end)` spans of every other frame, in
    /// order, for the client's parser. `buf[consumed:]` is an incomplete frame.
    fn split(&mut self, py: Python<'_>, buf: &[u8]) -> PyResult<Split> {
        let (mut messages, mut statuses, mut others) = (Vec::new(), Vec::new(), Vec::new());
        let mut pos = 0;
        while let Some((frame, len)) = next_frame(&buf[pos..]) {
            match frame {
                Frame::Msg(d) if d.sid == self.sid.as_slice() => {
                    let status = d.headers.is_some_and(|h| h.starts_with(b"NATS/1.0 "));
                    let message = Py::new(py, self.message(py, &d)?)?;
                    if status {
                        statuses.push(message);
                    } else {
                        messages.push(message);
                    }
                }
                _ => match others.last_mut() {
                    Some((_, end)) if *end == pos => *end = pos + len,
                    _ => others.push((pos, pos + len)),
                },
            }
            pos += len;
        }
        Ok((pos, messages, statuses, others))
    }
}

impl FrameSplitter {
    fn message(&mut self, py: Python<'_>, d: &crate::frames::Delivered<'_>) -> PyResult<LogMessage> {
        let sequences = d.reply.and_then(ack_sequences);
        let reply = match (d.reply, sequences) {
            (Some(reply), None) => Some(text(py, reply)),
            _ => None,
        };
        let headers = match d.headers {
            Some(block) => {
                let dict = PyDict::new(py);
                for (name, value) in header_pairs(block) {
                    dict.set_item(text(py, name), text(py, value))?;
                }
                Some(dict.unbind())
            }
            None => None,
        };
        let (stream_seq, consumer_seq) = sequences.unwrap_or((0, 0));
        Ok(LogMessage {
            subject: self.subject(py, d.subject),
            reply,
            headers,
            data: PyBytes::new(py, d.payload).unbind(),
            stream_seq,
            consumer_seq,
        })
    }

    fn subject(&mut self, py: Python<'_>, raw: &[u8]) -> Py<PyString> {
        if let Some(known) = self.subjects.get(raw) {
            return known.clone_ref(py);
        }
        let subject = text(py, raw);
        if self.subjects.len() < SUBJECT_CACHE {
            self.subjects.insert(raw.to_vec(), subject.clone_ref(py));
        }
        subject
    }
}

/// Protocol text as a Python string; bytes that are not UTF-8 are replaced, as
/// the client's own decoding would refuse them.
fn text(py: Python<'_>, raw: &[u8]) -> Py<PyString> {
    PyString::new(py, &String::from_utf8_lossy(raw)).unbind()
}
