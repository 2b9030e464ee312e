//! Reservations whose lines span partitions, decided through the log in two phases
//! with no coordinator process. Each involved partition, applying the logged request,
//! prepares its lines (an ordinary hold, taken with today's tier-aware check) and its
//! leader appends a vote. Every partition reads every vote; the decision is a pure
//! function of the log: at the first position where every involved partition's vote
//! is present, commit if all are ok, else abort; or abort at the first clock tick past
//! the request's ts + `cross_partition_timeout_s`. First vote per partition counts.
//! A prepared hold does not expire while its request is undecided: on commit it expires
//! `hold_seconds` after the decision (never before `ts + hold_seconds`), so every
//! partition keeps its lines exactly as long as the answer says; on abort it is released.
//! The partition of the request's first line answers the client.

use std::collections::BTreeMap;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::{LineIn, State, MICROS};
use crate::counters::Counters;
use crate::effects::Effects;
use crate::error::{CoreError, CoreResult};
use crate::reservation::{Decision, REASONS};

/// The reason a line of an aborted request carries when its partition never voted.
pub const TIMEOUT: &str = "timeout";

/// One partition's vote: whether its lines are held, and each line's outcome
/// (index into the request's lines, and the reason it was refused, if one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub partition: u32,
    pub ok: bool,
    pub lines: Vec<(u32, Option<u8>)>,
}

/// A request this partition prepared, waiting for the votes that decide it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossRequest {
    pub order_id: String,
    pub channel: String,
    /// (line_id, sku, condition, qty) of every line, for the reply.
    pub lines: Vec<(String, String, String, i64)>,
    /// The partition of each line.
    pub owners: Vec<u32>,
    /// The request's time as the log took it, and `ts + hold_seconds` (µs).
    pub ts: i64,
    pub expires: i64,
    /// Whether this partition's prepare holds units (released on abort).
    pub held: bool,
    /// Where the coordinator answers (the requester's inbox), if anywhere.
    pub reply_to: Option<String>,
    /// The votes read from the log so far, first per partition.
    pub votes: Vec<Vote>,
}

impl CrossRequest {
    fn coordinator(&self) -> u32 {
        self.owners.first().copied().unwrap_or(0)
    }

    fn involved(&self) -> Vec<u32> {
        let mut parts = self.owners.clone();
        parts.sort_unstable();
        parts.dedup();
        parts
    }

    /// The decision once every involved partition voted: None while one is missing.
    fn decided(&self) -> Option<Decision> {
        let all = self
            .involved()
            .iter()
            .all(|p| self.votes.iter().any(|v| v.partition == *p));
        all.then(|| self.decision(None))
    }

    /// Commit when every vote is ok; else the refusals the votes give, and `missing`'s
    /// reason for the lines of partitions that did not vote.
    fn decision(&self, missing: Option<u8>) -> Decision {
        let voted = |p: u32| self.votes.iter().find(|v| v.partition == p);
        if missing.is_none() && self.votes.iter().all(|v| v.ok) {
            return Decision::Held(self.expires);
        }
        let mut refused = Vec::new();
        for (n, &owner) in self.owners.iter().enumerate() {
            let reason = match voted(owner) {
                Some(v) => v
                    .lines
                    .iter()
                    .find(|(line, _)| *line as usize == n)
                    .and_then(|(_, r)| *r),
                None => missing,
            };
            if let Some(r) = reason {
                refused.push((n as u32, r));
            }
        }
        Decision::Refused(refused.into())
    }
}

/// A decided request the coordinator answers: the reply is rebuilt from these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossAnswer {
    pub request_id: String,
    pub reply_to: Option<String>,
    pub channel: String,
    pub order_id: String,
    pub lines: Vec<(String, String, String, i64)>,
    pub decision: Decision,
}

/// Prepared-and-undecided requests, by request id (ordered, so snapshots and timeouts
/// are deterministic); a snapshot section of its own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossImage {
    pub pending: BTreeMap<String, CrossRequest>,
}

/// What applying a reservation did in a partitioned state.
#[derive(Debug)]
pub enum Share {
    /// Decided here as an unpartitioned state decides it (all lines here), or a
    /// duplicate of a decided request.
    Decided(Decision),
    /// Prepared here: this vote goes to the log.
    Prepared(Vote),
    /// A duplicate of a request still waiting for its votes (its coordinator answers
    /// the duplicate's inbox too, once decided).
    Pending,
    /// No line of it is this partition's.
    Elsewhere,
}

fn reason_code(reason: &str) -> Option<u8> {
    REASONS.iter().position(|r| *r == reason).map(|i| i as u8)
}

impl State {
    /// A reservation in a partitioned state (`ts` as the log took it).
    #[allow(clippy::too_many_arguments)]
    pub fn reserve_share(
        &mut self,
        c: &Counters,
        request_id: &str,
        order_id: &str,
        channel: &str,
        lines: &[LineIn],
        hold_seconds: i64,
        ts: i64,
        reply_to: Option<&str>,
    ) -> CoreResult<(Share, Effects)> {
        let n = self.partition.count;
        let me = self.partition.index;
        let owners: Vec<u32> = lines
            .iter()
            .map(|l| self.policy.families.partition(l.1, n))
            .collect();
        let coordinator = owners.first().copied().unwrap_or(0);
        if !owners.contains(&me) {
            // An empty request is bad input as a whole: its coordinator is partition 0.
            if !lines.is_empty() || me != 0 {
                return Ok((Share::Elsewhere, Effects::default()));
            }
        }
        if owners.iter().all(|&p| p == me) {
            let (d, fx) =
                self.reserve(c, request_id, order_id, channel, lines, hold_seconds, ts)?;
            return Ok((Share::Decided(d), fx));
        }
        if let Some(req) = self.cross.pending.get(request_id) {
            // A repeat still waiting for its votes: answered with the first asker.
            if let Some(inbox) = reply_to.filter(|_| coordinator == me) {
                let repeats = self
                    .cross_repeats
                    .entry(request_id.to_string())
                    .or_default();
                if req.reply_to.as_deref() != Some(inbox) && !repeats.iter().any(|r| r == inbox) {
                    repeats.push(inbox.to_string());
                }
            }
            return Ok((Share::Pending, Effects::default()));
        }
        if let Some(d) = self.registry.decision(request_id) {
            // A duplicate of a decided request: its coordinator answers it again.
            let share = if coordinator == me {
                Share::Decided(d.clone())
            } else {
                Share::Elsewhere
            };
            return Ok((share, Effects::default()));
        }
        let whole = |e: CoreError| {
            if coordinator == me {
                e
            } else {
                CoreError::ReportedElsewhere(e.to_string())
            }
        };
        self.channel(channel).map_err(whole)?;
        Self::check_lines(lines).map_err(whole)?;
        if hold_seconds < 0 {
            return Err(whole(CoreError::bad("hold_seconds", "must be ≥ 0")));
        }
        let expires = crate::error::mul("hold_seconds", hold_seconds, MICROS)
            .and_then(|h| crate::error::add("hold_seconds", ts, h))
            .map_err(whole)?;
        let mine: Vec<usize> = (0..lines.len()).filter(|&i| owners[i] == me).collect();
        let my_lines: Vec<LineIn> = mine.iter().map(|&i| lines[i]).collect();
        let (vote, held, fx) = match self.reserve(
            c,
            request_id,
            order_id,
            channel,
            &my_lines,
            hold_seconds,
            ts,
        ) {
            Ok((d, fx)) => {
                let outcome = mine
                    .iter()
                    .enumerate()
                    .map(|(k, &i)| (i as u32, d.reason(k).and_then(reason_code)))
                    .collect();
                (
                    Vote {
                        partition: me,
                        ok: d.ok(),
                        lines: outcome,
                    },
                    d.ok(),
                    fx,
                )
            }
            // This partition cannot take the request at all (its order id already
            // holds stock here, say): a no vote without line reasons.
            Err(CoreError::BadInput { .. }) => {
                let outcome = mine.iter().map(|&i| (i as u32, None)).collect();
                (
                    Vote {
                        partition: me,
                        ok: false,
                        lines: outcome,
                    },
                    false,
                    Effects::default(),
                )
            }
            Err(other) => return Err(other),
        };
        if held {
            // Out of the expiry sweep until decided: `decide` sets its expiry.
            self.registry
                .holds
                .remove(&(expires, CompactString::from(order_id)));
        }
        self.cross.pending.insert(
            request_id.to_string(),
            CrossRequest {
                order_id: order_id.to_string(),
                channel: channel.to_string(),
                lines: lines
                    .iter()
                    .map(|l| (l.0.to_string(), l.1.to_string(), l.2.to_string(), l.3))
                    .collect(),
                owners,
                ts,
                expires,
                held,
                reply_to: reply_to.map(str::to_string),
                votes: Vec::new(),
            },
        );
        Ok((Share::Prepared(vote), fx))
    }

    /// A vote read from the log: counted when it is the first of its partition for a
    /// request prepared here; decides the request when it completes the votes.
    pub fn vote(
        &mut self,
        c: &Counters,
        request_id: &str,
        partition: u32,
        ok: bool,
        lines: &[(&str, Option<&str>)],
    ) -> CoreResult<Effects> {
        let Some(req) = self.cross.pending.get_mut(request_id) else {
            return Ok(Effects::default()); // decided already, or not prepared here
        };
        if !req.owners.contains(&partition) || req.votes.iter().any(|v| v.partition == partition) {
            return Ok(Effects::default());
        }
        let mut outcome = Vec::with_capacity(lines.len());
        for (line_id, reason) in lines {
            let Some(i) = req.lines.iter().position(|l| l.0 == *line_id) else {
                return Err(CoreError::bad(
                    "lines",
                    format!("request {request_id:?} has no line {line_id:?}"),
                ));
            };
            outcome.push((i as u32, reason.and_then(reason_code)));
        }
        req.votes.push(Vote {
            partition,
            ok,
            lines: outcome,
        });
        match req.decided() {
            Some(d) => Ok(self.decide(c, request_id, d)),
            None => Ok(Effects::default()),
        }
    }

    /// Aborts the requests whose time ran out by `now` without every vote.
    pub fn time_out_cross(&mut self, c: &Counters, now: i64, fx: &mut Effects) {
        let limit = self
            .policy
            .tables
            .log
            .cross_partition_timeout_s
            .saturating_mul(MICROS);
        let late: Vec<(String, Decision)> = self
            .cross
            .pending
            .iter()
            .filter(|(_, r)| now > r.ts.saturating_add(limit))
            .map(|(id, r)| (id.clone(), r.decision(reason_code(TIMEOUT))))
            .collect();
        for (id, d) in late {
            fx.absorb(self.decide(c, &id, d));
        }
    }

    /// Applies a decision: an abort releases what this partition prepared. The decision
    /// is remembered for duplicates, and the coordinator's answer queued.
    fn decide(&mut self, c: &Counters, request_id: &str, d: Decision) -> Effects {
        let mut fx = Effects::default();
        let Some(req) = self.cross.pending.remove(request_id) else {
            return fx;
        };
        let d = match d {
            Decision::Held(_) => Decision::Held(self.rearm_hold(&req)),
            refused => refused,
        };
        if !d.ok() && req.held {
            let now = self.now.max(req.ts);
            self.drop_hold(c, &req.order_id, now, &mut fx);
        }
        self.registry.remember_reply(request_id, d.clone());
        let repeats = self.cross_repeats.remove(request_id).unwrap_or_default();
        if req.coordinator() == self.partition.index {
            let inboxes =
                std::iter::once(req.reply_to.clone()).chain(repeats.into_iter().map(Some));
            for reply_to in inboxes {
                self.cross_answers.push(CrossAnswer {
                    request_id: request_id.to_string(),
                    reply_to,
                    channel: req.channel.clone(),
                    order_id: req.order_id.clone(),
                    lines: req.lines.clone(),
                    decision: d.clone(),
                });
            }
        }
        fx
    }

    /// A committed request's expiry: `hold_seconds` after the decision's clock, or
    /// `ts + hold_seconds` if later. This partition's prepared hold (if it took one and
    /// it is still a hold) goes back into the expiry sweep at that time.
    fn rearm_hold(&mut self, req: &CrossRequest) -> i64 {
        let expires = self
            .now
            .saturating_add(req.expires.saturating_sub(req.ts))
            .max(req.expires);
        let id = CompactString::from(req.order_id.as_str());
        let Some(order) = self.registry.orders.get_mut(&id) else {
            return expires;
        };
        let Some(prepared) = order.hold_expires else {
            return expires;
        };
        order.hold_expires = Some(expires);
        // A snapshot from before prepared holds left the sweep still lists it there.
        self.registry.holds.remove(&(prepared, id.clone()));
        self.registry.holds.insert((expires, id));
        expires
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{line, World, MICROS};
    use super::*;
    use crate::partition::Partition;

    /// Partitions 0 and 1 of 2, with 5 units of `A` (partition 0) and `D` (partition 1).
    fn pair() -> [World; 2] {
        [0, 1].map(|k| {
            let mut w = World::partition(Partition::new(k, 2).expect("partition"));
            w.stock(if k == 0 { "A" } else { "D" }, "wh", 5);
            w
        })
    }

    /// Both partitions apply the request (at 1 s) for 2 × A and 3 × D; their votes.
    fn prepare(ws: &mut [World; 2], id: &str, hold_seconds: i64) -> Vec<Vote> {
        ask(ws, id, hold_seconds, None)
    }

    /// As `prepare`, with the asker's inbox; the votes of the partitions that prepared.
    fn ask(ws: &mut [World; 2], id: &str, hold_seconds: i64, inbox: Option<&str>) -> Vec<Vote> {
        let lines = [line("1", "A", 2), line("2", "D", 3)];
        ws.iter_mut()
            .filter_map(|w| {
                let (share, _) = w
                    .state
                    .reserve_share(&w.c, id, id, "shop", &lines, hold_seconds, MICROS, inbox)
                    .expect("reserve_share");
                match share {
                    Share::Prepared(v) => Some(v),
                    _ => None,
                }
            })
            .collect()
    }

    fn cast(ws: &mut [World; 2], id: &str, v: &Vote) {
        let lines: Vec<(String, Option<&str>)> = v
            .lines
            .iter()
            .map(|(n, r)| {
                let line_id = (n + 1).to_string();
                (line_id, r.and_then(|r| REASONS.get(r as usize).copied()))
            })
            .collect();
        let lines: Vec<(&str, Option<&str>)> =
            lines.iter().map(|(l, r)| (l.as_str(), *r)).collect();
        for w in ws.iter_mut() {
            w.state
                .vote(&w.c, id, v.partition, v.ok, &lines)
                .expect("vote");
        }
    }

    fn tick(ws: &mut [World; 2], ts: i64) {
        for w in ws.iter_mut() {
            let mut fx = w.state.expire(&w.c, ts);
            w.state.time_out_cross(&w.c, ts, &mut fx);
            w.state.advance(&w.c, ts, &mut fx);
        }
    }

    #[test]
    fn a_prepared_hold_outlives_its_hold_seconds_until_the_decision() {
        let mut ws = pair();
        let votes = prepare(&mut ws, "r1", 1);
        cast(&mut ws, "r1", &votes[0]);
        tick(&mut ws, 3 * MICROS); // past ts + hold_seconds, within the vote timeout
        assert_eq!(
            (ws[0].avail("A"), ws[1].avail("D")),
            (3, 2),
            "still prepared"
        );
        cast(&mut ws, "r1", &votes[1]);
        let [answer] = ws[0].state.cross_answers.as_slice() else {
            panic!("the coordinator answers once");
        };
        assert_eq!(
            answer.decision,
            Decision::Held(4 * MICROS),
            "1 s after the decision"
        );
        tick(&mut ws, 4 * MICROS - 1);
        assert_eq!(
            (ws[0].avail("A"), ws[1].avail("D")),
            (3, 2),
            "held as answered"
        );
        tick(&mut ws, 4 * MICROS);
        assert_eq!(
            (ws[0].avail("A"), ws[1].avail("D")),
            (5, 5),
            "then released"
        );
    }

    #[test]
    fn a_commit_before_the_hold_runs_out_keeps_the_requested_expiry() {
        let mut ws = pair();
        let votes = prepare(&mut ws, "r1", 60);
        for v in &votes {
            cast(&mut ws, "r1", v);
        }
        let [answer] = ws[0].state.cross_answers.as_slice() else {
            panic!("the coordinator answers once");
        };
        assert_eq!(answer.decision, Decision::Held(61 * MICROS));
        tick(&mut ws, 61 * MICROS - 1);
        assert_eq!((ws[0].avail("A"), ws[1].avail("D")), (3, 2));
        tick(&mut ws, 61 * MICROS);
        assert_eq!((ws[0].avail("A"), ws[1].avail("D")), (5, 5));
    }

    #[test]
    fn every_asker_of_an_undecided_request_is_answered_once_at_the_decision() {
        let mut ws = pair();
        let votes = ask(&mut ws, "r1", 60, Some("_INBOX.first"));
        for inbox in [
            "_INBOX.first",
            "_INBOX.again",
            "_INBOX.again",
            "_INBOX.third",
        ] {
            assert!(
                ask(&mut ws, "r1", 60, Some(inbox)).is_empty(),
                "no second vote"
            );
        }
        for v in &votes {
            cast(&mut ws, "r1", v);
        }
        let answered: Vec<(Option<&str>, bool)> = ws[0]
            .state
            .cross_answers
            .iter()
            .map(|a| (a.reply_to.as_deref(), a.decision.ok()))
            .collect();
        assert_eq!(
            answered,
            [
                (Some("_INBOX.first"), true),
                (Some("_INBOX.again"), true),
                (Some("_INBOX.third"), true)
            ]
        );
        assert!(
            ws[1].state.cross_answers.is_empty(),
            "the coordinator alone answers"
        );
        assert!(ws.iter().all(|w| w.state.cross_repeats.is_empty()));
    }
}
