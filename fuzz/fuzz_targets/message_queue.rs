//! The C API message queue (`uasyncio::ffi::MessageQueue`) against a model `VecDeque`: a
//! producer sends messages in the input's order, the loop side receives (with receive
//! buffers the input sizes, sometimes too small). Invariants (fuzz/README.md): every
//! message comes out once, in order, byte for byte; a send is refused as full exactly when
//! `capacity` messages wait, as too big exactly when it exceeds `item_size`; a too-small
//! receive buffer is an error that keeps the message; `len`, `is_empty` and `dropped`
//! match the model.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use uasyncio::ffi::{MessageQueue, SendError};

fuzz_target!(|data: &[u8]| {
    let [cap, item, ops @ ..] = data else { return };
    let capacity = usize::from(cap % 16) + 1;
    let item_size = usize::from(item % 32) + 1;
    let q = MessageQueue::new(capacity, item_size).expect("small sizes are valid");
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    let mut dropped = 0u32;
    let mut counter = 0u8;
    for &op in ops {
        let n = usize::from(op >> 2);
        if op & 3 != 3 {
            // Send a message of n bytes (0..=63) made of a running counter.
            let msg: Vec<u8> = (0..n)
                .map(|_| {
                    counter = counter.wrapping_add(1);
                    counter
                })
                .collect();
            match q.send(&msg) {
                Ok(()) => {
                    assert!(
                        msg.len() <= item_size && model.len() < capacity,
                        "accepted a message it should refuse"
                    );
                    model.push_back(msg);
                }
                Err(SendError::TooBig) => assert!(msg.len() > item_size, "refused a message that fits"),
                Err(SendError::Full) => {
                    assert!(msg.len() <= item_size, "too big reported as full");
                    assert_eq!(model.len(), capacity, "refused as full with room left");
                    dropped += 1;
                }
            }
        } else {
            // Receive into a buffer of n bytes.
            let mut buf = vec![0u8; n];
            match (q.try_recv_into(&mut buf), model.front()) {
                (Ok(None), None) => {}
                (Ok(Some(len)), Some(want)) => {
                    assert_eq!(&buf[..len], &want[..], "a message changed, was lost or reordered");
                    model.pop_front();
                }
                (Err(_), Some(want)) => assert!(want.len() > n, "a receive failed with room in the buffer"),
                (got, want) => panic!("receive gave {got:?}, the model holds {want:?}"),
            }
        }
        assert_eq!(q.len(), model.len());
        assert_eq!(q.is_empty(), model.is_empty());
        assert_eq!(q.dropped(), dropped);
    }
    // Drain: everything still queued comes out in order.
    let mut buf = vec![0u8; item_size];
    while let Some(want) = model.pop_front() {
        let len = q
            .try_recv_into(&mut buf)
            .expect("buffer of item_size")
            .expect("a queued message");
        assert_eq!(&buf[..len], &want[..]);
    }
    assert!(q.try_recv_into(&mut buf).unwrap().is_none());
});
