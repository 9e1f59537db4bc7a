//! The admission gate behind `429`: at most `running` enrolments at once and at most
//! `waiting` queued behind them; anyone else is turned away at once.

use std::sync::{Condvar, Mutex, PoisonError};

pub struct Gate {
    max_running: usize,
    max_waiting: usize,
    state: Mutex<(usize, usize)>,
    freed: Condvar,
}

/// A running slot; dropping it lets the next waiter in.
pub struct Permit<'a>(&'a Gate);

impl Gate {
    pub fn new(max_running: usize, max_waiting: usize) -> Gate {
        Gate {
            max_running: max_running.max(1),
            max_waiting,
            state: Mutex::new((0, 0)),
            freed: Condvar::new(),
        }
    }

    /// A slot, after waiting if the queue has room; `None` when both are full.
    pub fn enter(&self) -> Option<Permit<'_>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.0 < self.max_running {
            state.0 += 1;
            return Some(Permit(self));
        }
        if state.1 >= self.max_waiting {
            return None;
        }
        state.1 += 1;
        while state.0 >= self.max_running {
            state = self
                .freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.1 -= 1;
        state.0 += 1;
        Some(Permit(self))
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 -= 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc;

    #[test]
    fn admits_running_then_waiting_then_refuses() {
        let gate = Arc::new(Gate::new(1, 1));
        let first = gate.enter().expect("a running slot");
        let (tx, rx) = mpsc::channel();
        let g = Arc::clone(&gate);
        let waiter = std::thread::spawn(move || {
            let permit = g.enter();
            tx.send(permit.is_some()).unwrap();
        });
        // Wait until the second caller is queued, then a third is refused.
        while gate.state.lock().unwrap().1 == 0 {
            std::thread::yield_now();
        }
        assert!(gate.enter().is_none());
        drop(first);
        assert!(rx.recv().unwrap(), "the waiter gets the freed slot");
        waiter.join().unwrap();
        assert!(gate.enter().is_some());
    }
}
