//! `FrameSplitter`: routed subscriptions' messages out of the client's read buffer
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

/// One routed subscription's share of a buffer: (sid, messages, status messages).
type Routed = (u64, Vec<Py<LogMessage>>, Vec<Py<LogMessage>>);
type Split = (usize, Vec<Routed>, Vec<(usize, usize)>);

/// Cuts read buffers for the subscriptions routed to it.
#[pyclass(module = "invsync._core")]
pub struct FrameSplitter {
    /// Subscription id as it appears on the wire → its number.
    routes: HashMap<Vec<u8>, u64>,
    subjects: HashMap<Vec<u8>, Py<PyString>>,
}

#[pymethods]
impl FrameSplitter {
    #[new]
    fn new() -> Self {
        Self {
            routes: HashMap::new(),
            subjects: HashMap::new(),
        }
    }

    /// Subscription `sid`'s messages are split out from now on.
    fn route(&mut self, sid: u64) {
        self.routes.insert(sid.to_string().into_bytes(), sid);
    }

    fn unroute(&mut self, sid: u64) {
        self.routes.remove(sid.to_string().as_bytes());
    }

    /// `(consumed, routed, other spans)` for the complete frames at the front of `buf`:
    /// per routed subscription with anything in `buf`, its messages in order (status
    /// ones, such as heartbeats and flow control, apart), and `(start, end)` spans of
    /// every other frame, in order, for the client's parser. `buf[consumed:]` is an
    /// incomplete frame.
    fn split(&mut self, py: Python<'_>, buf: &[u8]) -> PyResult<Split> {
        let mut routed: Vec<Routed> = Vec::new();
        let mut others: Vec<(usize, usize)> = Vec::new();
        let mut pos = 0;
        while let Some((frame, len)) = next_frame(&buf[pos..]) {
            let sid = match &frame {
                Frame::Msg(d) => self.routes.get(d.sid).copied(),
                Frame::Other => None,
            };
            match (frame, sid) {
                (Frame::Msg(d), Some(sid)) => {
                    let status = d.headers.is_some_and(|h| h.starts_with(b"NATS/1.0 "));
                    let message = Py::new(py, self.message(py, &d)?)?;
                    let slot = match routed.iter().position(|r| r.0 == sid) {
                        Some(i) => i,
                        None => {
                            routed.push((sid, Vec::new(), Vec::new()));
                            routed.len() - 1
                        }
                    };
                    let (_, messages, statuses) = &mut routed[slot];
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
        Ok((pos, routed, others))
    }
}

impl FrameSplitter {
    fn message(
        &mut self,
        py: Python<'_>,
        d: &crate::frames::Delivered<'_>,
    ) -> PyResult<LogMessage> {
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
