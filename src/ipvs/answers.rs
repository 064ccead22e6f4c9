//! Cutting a batch of IPVS requests into datagrams, and matching the kernel's answers to the
//! requests (pure: no I/O; the socket is `kernel`'s).
//!
//! The kernel handles a datagram's messages one after the other, whatever each one's outcome,
//! and answers a message when it fails or asks for an answer: netlink_rcv_skb acks "if
//! (nlh->nlmsg_flags & NLM_F_ACK || err)". Gets and each datagram's last request ask
//! (NLM_F_ACK); the other writes do not. So the last request's answer comes last, and says
//! that every write before it that said nothing succeeded.

use super::kernel::KernelError;
use super::wire::{NlReply, Request};
use std::io;
use std::ops::Range;

/// At most this many requests go in one datagram before their answers are read. An answer
/// the receive buffer has no room for is lost, so a datagram's answers must fit it even when
/// every request fails: an error answer takes about 1 KiB of it (with NETLINK_CAP_ACK), so
/// 256 KiB at most; a get's reply about 5 KiB (the kernel allocates a page for it). The
/// socket asks for 2 MiB and gets at least 416 KiB. Each datagram costs something of its
/// own: 256 writes to a datagram instead of 64 took an apply of 10,000 x 4 in the guest
/// from 990 to 807 ms.
pub const WINDOW: usize = 256;
/// The window for gets (many services asked for by key).
pub const WINDOW_GETS: usize = 32;
/// And at most this many bytes of requests (one IPVS request is 60-180 bytes), well below
/// the socket's send buffer.
pub const WINDOW_BYTES: usize = 48 * 1024;

/// The answer to one request of a batch.
pub type Answer = Result<(), KernelError>;
/// Called with each data message of a dump or get: (request index, payload).
pub type OnData<'a> = &'a mut dyn FnMut(usize, &[u8]) -> Result<(), KernelError>;

/// The end of the datagram whose first request is `reqs[start]`: at most [`WINDOW`] requests
/// ([`WINDOW_GETS`] when it starts with a get) and [`WINDOW_BYTES`]; a dump goes alone, since
/// the kernel runs one dump per socket at a time (EBUSY otherwise).
pub fn datagram_end(reqs: &[Request], start: usize) -> usize {
    let window = if reqs[start].is_write() { WINDOW } else { WINDOW_GETS };
    let (mut end, mut bytes) = (start, 0);
    while end < reqs.len() {
        let r = &reqs[end];
        if end > start && (end - start >= window || bytes + r.nl_len() > WINDOW_BYTES || r.dump || reqs[start].dump) {
            break;
        }
        bytes += r.nl_space();
        end += 1;
    }
    end
}

/// Whether request `i` of the datagram `range` asks for an answer to a success.
pub fn asks_ack(reqs: &[Request], range: &Range<usize>, i: usize) -> bool {
    !reqs[i].is_write() || i + 1 == range.end
}

/// The answers of a batch of requests numbered from `base`, as they come.
pub struct Answers {
    base: u32,
    answers: Vec<Option<Answer>>,
    /// Its answer (ack, error or end of dump) came, or it was given up.
    closed: Vec<bool>,
}

impl Answers {
    pub fn new(base: u32, n: usize) -> Answers {
        Answers { base, answers: (0..n).map(|_| None).collect(), closed: vec![false; n] }
    }

    /// Every request of the datagram `range` has its answer.
    pub fn settled(&self, range: &Range<usize>) -> bool {
        self.closed[range.end - 1]
    }

    /// One message the kernel sent while the datagram `range` of `reqs` is open. Answers to
    /// other requests (late ones, after a give-up) are ignored.
    pub fn take(&mut self, m: NlReply, reqs: &[Request], range: &Range<usize>, what: &dyn Fn(usize) -> String, on_data: OnData<'_>) {
        let i = m.seq().wrapping_sub(self.base) as usize;
        if !range.contains(&i) || self.closed[i] {
            return;
        }
        match m {
            NlReply::Data { payload, .. } => {
                if self.answers[i].is_none()
                    && let Err(e) = on_data(i, payload)
                {
                    self.answers[i] = Some(Err(e));
                }
            }
            NlReply::Ack { errno, .. } | NlReply::Done { errno, .. } => {
                self.closed[i] = true;
                if self.answers[i].is_none() {
                    self.answers[i] = Some(if errno == 0 {
                        Ok(())
                    } else {
                        Err(KernelError::Errno { what: what(i), errno, err: io::Error::from_raw_os_error(errno) })
                    });
                }
                if i + 1 == range.end {
                    // The last answer: a write still open said nothing, so it succeeded; a
                    // get is answered by itself, before, so one still open lost its answer.
                    for (j, r) in reqs.iter().enumerate().take(i).skip(range.start) {
                        if !self.closed[j] {
                            self.closed[j] = true;
                            self.answers[j] = Some(if r.is_write() { Ok(()) } else { Err(lost(what, j, "no answer; outcome unknown")) });
                        }
                    }
                }
            }
        }
    }

    /// Answers stopped coming for the datagram `range` (timeout, a receive error, an
    /// undecodable datagram): each request still open gets `msg`.
    pub fn give_up(&mut self, range: &Range<usize>, msg: &str, what: &dyn Fn(usize) -> String) {
        for i in range.clone() {
            if !self.closed[i] {
                self.closed[i] = true;
                self.answers[i] = Some(Err(lost(what, i, msg)));
            }
        }
    }

    /// One answer per request, in order; every datagram must be settled.
    pub fn into_answers(self) -> Vec<Answer> {
        self.answers.into_iter().map(|a| a.expect("every request answered")).collect()
    }
}

fn lost(what: &dyn Fn(usize) -> String, i: usize, msg: &str) -> KernelError {
    KernelError::Netlink { what: what(i), msg: msg.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::wire::cmd;

    fn req(c: u8) -> Request {
        Request { cmd: c, dump: false, attrs: vec![0; 40] }
    }
    fn writes(n: usize) -> Vec<Request> {
        (0..n).map(|_| req(cmd::NEW_DEST)).collect()
    }
    fn gets(n: usize) -> Vec<Request> {
        (0..n).map(|_| req(cmd::GET_SERVICE)).collect()
    }
    fn what(i: usize) -> String {
        format!("request {i}")
    }
    fn ack(seq: u32, errno: i32) -> NlReply<'static> {
        NlReply::Ack { seq, errno }
    }
    fn errnos(a: Answers) -> Vec<Option<i32>> {
        a.into_answers().into_iter().map(|r| r.err().map(|e| e.errno().unwrap_or(-1))).collect()
    }
    fn no_data(_: usize, _: &[u8]) -> Result<(), KernelError> {
        panic!("no data expected")
    }

    #[test]
    fn datagrams_hold_a_window_of_writes_a_smaller_one_of_gets_and_a_dump_alone() {
        let reqs = writes(600);
        assert_eq!(datagram_end(&reqs, 0), WINDOW);
        assert_eq!(datagram_end(&reqs, 512), 600);
        let gets: Vec<Request> = (0..100).map(|_| req(cmd::GET_SERVICE)).collect();
        assert_eq!(datagram_end(&gets, 0), WINDOW_GETS);
        let mut mixed = writes(3);
        mixed.push(Request { cmd: cmd::GET_DEST, dump: true, attrs: vec![] });
        mixed.extend(writes(2));
        assert_eq!(datagram_end(&mixed, 0), 3, "a dump starts its own datagram");
        assert_eq!(datagram_end(&mixed, 3), 4, "and has it to itself");
        let big: Vec<Request> = (0..300).map(|_| Request { cmd: cmd::NEW_DEST, dump: false, attrs: vec![0; 500] }).collect();
        let end = datagram_end(&big, 0);
        assert!(end < WINDOW && big[..end].iter().map(Request::nl_space).sum::<usize>() <= WINDOW_BYTES, "{end}");
        // One request larger than the limit still goes, alone.
        let huge = [Request { cmd: cmd::NEW_DEST, dump: false, attrs: vec![0; WINDOW_BYTES] }];
        assert_eq!(datagram_end(&huge, 0), 1);
    }

    #[test]
    fn only_gets_and_the_last_request_ask_for_an_answer() {
        let mut reqs = writes(4);
        reqs[1] = req(cmd::GET_SERVICE);
        let r = 0..4;
        assert_eq!((0..4).map(|i| asks_ack(&reqs, &r, i)).collect::<Vec<_>>(), [false, true, false, true]);
    }

    #[test]
    fn the_last_answer_closes_the_writes_that_said_nothing() {
        let reqs = writes(4);
        let mut a = Answers::new(100, 4);
        let r = 0..4;
        a.take(ack(100 + 1, libc::ERANGE), &reqs, &r, &what, &mut no_data);
        assert!(!a.settled(&r));
        a.take(ack(100 + 3, 0), &reqs, &r, &what, &mut no_data);
        assert!(a.settled(&r));
        assert_eq!(errnos(a), [None, Some(libc::ERANGE), None, None]);
    }

    #[test]
    fn a_failing_last_request_settles_its_datagram_too() {
        let reqs = writes(3);
        let mut a = Answers::new(7, 3);
        let r = 0..3;
        a.take(ack(9, libc::EEXIST), &reqs, &r, &what, &mut no_data);
        assert!(a.settled(&r));
        assert_eq!(errnos(a), [None, None, Some(libc::EEXIST)]);
    }

    #[test]
    fn datagrams_settle_one_after_the_other_and_late_answers_are_ignored() {
        let reqs = writes(5);
        let mut a = Answers::new(u32::MAX - 1, 5); // the numbering wraps
        let (first, second) = (0..3, 3..5);
        a.take(ack((u32::MAX - 1).wrapping_add(3), 0), &reqs, &first, &what, &mut no_data); // not this datagram's
        assert!(!a.settled(&first));
        a.take(ack((u32::MAX - 1).wrapping_add(2), 0), &reqs, &first, &what, &mut no_data);
        assert!(a.settled(&first));
        a.take(ack((u32::MAX - 1).wrapping_add(2), libc::EINVAL), &reqs, &second, &what, &mut no_data); // late
        a.take(ack((u32::MAX - 1).wrapping_add(4), 0), &reqs, &second, &what, &mut no_data);
        assert_eq!(errnos(a), [None, None, None, None, None]);
    }

    #[test]
    fn a_get_whose_answer_never_came_is_unknown() {
        let reqs = gets(2);
        let mut a = Answers::new(1, 2);
        let r = 0..2;
        a.take(ack(2, 0), &reqs, &r, &what, &mut no_data);
        let got = a.into_answers();
        assert!(matches!(&got[0], Err(KernelError::Netlink { msg, .. }) if msg.contains("outcome unknown")), "{got:?}");
        assert!(got[1].is_ok());
    }

    #[test]
    fn data_goes_to_its_reader_whose_error_is_the_answer() {
        let reqs = gets(2);
        let mut a = Answers::new(10, 2);
        let r = 0..2;
        let mut seen = Vec::new();
        let mut on_data = |i: usize, p: &[u8]| {
            seen.push((i, p.to_vec()));
            if i == 0 { Err(KernelError::Netlink { what: "get".into(), msg: "bad reply".into() }) } else { Ok(()) }
        };
        a.take(NlReply::Data { seq: 10, ty: 0x20, payload: &[1, 2] }, &reqs, &r, &what, &mut on_data);
        a.take(ack(10, 0), &reqs, &r, &what, &mut on_data);
        a.take(NlReply::Data { seq: 11, ty: 0x20, payload: &[3] }, &reqs, &r, &what, &mut on_data);
        a.take(ack(11, 0), &reqs, &r, &what, &mut on_data);
        assert_eq!(seen, [(0, vec![1, 2]), (1, vec![3])]);
        let got = a.into_answers();
        assert!(matches!(&got[0], Err(KernelError::Netlink { msg, .. }) if msg == "bad reply"), "{got:?}");
        assert!(got[1].is_ok());
    }

    #[test]
    fn giving_up_leaves_the_answers_that_came() {
        let reqs = writes(4);
        let mut a = Answers::new(0, 4);
        let r = 0..4;
        a.take(ack(1, libc::ERANGE), &reqs, &r, &what, &mut no_data);
        a.give_up(&r, "no answer within 5 s; outcome unknown", &what);
        assert!(a.settled(&r));
        let got = a.into_answers();
        assert_eq!(got[1].as_ref().err().and_then(KernelError::errno), Some(libc::ERANGE));
        for i in [0, 2, 3] {
            assert!(
                matches!(&got[i], Err(KernelError::Netlink { what, msg }) if *what == format!("request {i}") && msg.contains("outcome unknown"))
            );
        }
    }
}
