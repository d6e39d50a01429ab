//! The context's buffer pool. Blocking calls (which submit their work and wait for it before
//! they return) open a lease on their thread; buffers they create through
//! `Runtime::pooled` (uploads, outputs, scratch, uniforms, readback staging) come from the
//! pool where one of the size class is idle, and go back to it when the lease closes, their
//! submission finished. Outside a lease (the `record_*` API, whose submission the caller
//! makes) every buffer is new, as before. Idle buffers are bounded by [`MAX_IDLE_BYTES`];
//! the context's `trim` frees them all.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::Runtime;
use crate::error::Result;

/// The most bytes of idle buffers a context keeps; a buffer handed back past it is freed.
pub const MAX_IDLE_BYTES: u64 = 256 << 20;
/// The smallest size class.
const MIN_CLASS: u64 = 256;

/// How the pool has served a context so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Buffers made because none of their class was idle (or outside a lease).
    pub created: u64,
    /// Buffers handed out again from the pool.
    pub reused: u64,
    /// Bytes of idle buffers the pool holds now.
    pub idle_bytes: u64,
    /// Host-to-device copies of tensors (inputs, weights, gradients; not the kernels'
    /// uniforms), and their bytes.
    pub uploads: u64,
    /// Bytes of those uploads.
    pub uploaded_bytes: u64,
    /// Passes recorded that pack a weight into the layout a kernel reads (a resident layer
    /// packs once per weight and shape; see [`crate::Conv2d`]).
    pub weight_packs: u64,
}

/// Idle buffers by (usage, size class), and the counters.
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<HashMap<(u32, u64), Vec<wgpu::Buffer>>>,
    idle_bytes: AtomicU64,
    created: AtomicU64,
    reused: AtomicU64,
    uploads: AtomicU64,
    uploaded_bytes: AtomicU64,
    weight_packs: AtomicU64,
}

/// A buffer handed out under a lease: the context it came from, its key, the buffer.
type Leased = (usize, (u32, u64), wgpu::Buffer);

thread_local! {
    /// This thread's open lease: its depth (leases nest; the outermost one returns the
    /// buffers) and what it handed out.
    static LEASE: RefCell<(u32, Vec<Leased>)> = const { RefCell::new((0, Vec::new())) };
}

/// The size class of `bytes`: powers of two up to 1 MiB, then steps of a sixteenth of the next
/// power of two (at most 12.5 % more than asked); never past `max` unless `bytes` is.
/// `bytes` as a buffer the kernels can bind: at least one vec4 (the smallest binding a shader
/// declares), in whole copy units.
fn least(bytes: u64) -> u64 {
    bytes
        .max(crate::ops::MIN_BINDING_BYTES)
        .next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT)
}

fn class(bytes: u64, max: u64) -> u64 {
    let b = bytes.max(MIN_CLASS);
    let p = b.next_power_of_two();
    let c = if p <= 1 << 20 {
        p
    } else {
        b.next_multiple_of(p / 16)
    };
    if c > max {
        b.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT.max(4))
    } else {
        c
    }
}

/// Whether this thread is inside a blocking call's lease.
pub(crate) fn in_lease() -> bool {
    LEASE.with(|l| l.borrow().0 > 0)
}

impl Runtime {
    /// How the buffer pool has served this context: buffers created and reused, idle bytes.
    pub(crate) fn pool_stats(&self) -> PoolStats {
        PoolStats {
            created: self.pool.created.load(Ordering::Relaxed),
            reused: self.pool.reused.load(Ordering::Relaxed),
            idle_bytes: self.pool.idle_bytes.load(Ordering::Relaxed),
            uploads: self.pool.uploads.load(Ordering::Relaxed),
            uploaded_bytes: self.pool.uploaded_bytes.load(Ordering::Relaxed),
            weight_packs: self.pool.weight_packs.load(Ordering::Relaxed),
        }
    }

    /// Frees every idle buffer of the pool.
    pub(crate) fn trim(&self) {
        self.prepared_cache.clear();
        let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.clear();
        self.pool.idle_bytes.store(0, Ordering::Relaxed);
    }

    fn id(&self) -> usize {
        self as *const Self as usize
    }

    /// A buffer of at least `bytes` with `usage`: from the pool under a lease on this thread,
    /// else new. Its contents are whatever they were: callers write or clear what they read.
    pub(crate) fn pooled(
        &self,
        label: &str,
        usage: wgpu::BufferUsages,
        bytes: u64,
    ) -> wgpu::Buffer {
        let leased = LEASE.with(|l| l.borrow().0 > 0);
        let max = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        let size = if leased {
            class(bytes, max)
        } else {
            least(bytes)
        };
        let key = (usage.bits(), size);
        if leased {
            let found = self
                .pool
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&key)
                .and_then(Vec::pop);
            if let Some(b) = found {
                self.pool.idle_bytes.fetch_sub(size, Ordering::Relaxed);
                self.pool.reused.fetch_add(1, Ordering::Relaxed);
                LEASE.with(|l| l.borrow_mut().1.push((self.id(), key, b.clone())));
                return b;
            }
        }
        self.pool.created.fetch_add(1, Ordering::Relaxed);
        let b = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        });
        if leased {
            LEASE.with(|l| l.borrow_mut().1.push((self.id(), key, b.clone())));
        }
        b
    }

    /// Runs `call` under a lease: the buffers it gets from [`Runtime::pooled`] go back to
    /// the pool when it returns `Ok` (it must have waited for every submission it made); on an
    /// error they are dropped instead (wgpu frees them once the device is done with them).
    pub(crate) fn leased<T>(&self, call: impl FnOnce() -> Result<T>) -> Result<T> {
        let start = LEASE.with(|l| {
            let mut l = l.borrow_mut();
            l.0 += 1;
            l.1.len()
        });
        let out = call();
        let mine: Vec<Leased> = LEASE.with(|l| {
            let mut l = l.borrow_mut();
            l.0 -= 1;
            // nested leases hand theirs to the outer one
            if l.0 > 0 {
                Vec::new()
            } else {
                l.1.split_off(start)
            }
        });
        if out.is_ok() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            // in reverse, so that the next call taking them in the same order gets each buffer
            // back in the same role (and finds the plans bound to them)
            for (ctx, key, b) in mine.into_iter().rev() {
                if ctx != self.id() {
                    continue;
                }
                let held = self.pool.idle_bytes.load(Ordering::Relaxed);
                if held + key.1 > MAX_IDLE_BYTES {
                    continue;
                }
                self.pool.idle_bytes.fetch_add(key.1, Ordering::Relaxed);
                idle.entry(key).or_default().push(b);
            }
        }
        out
    }

    /// Copies `bytes` into `buffer` through the queue, counted in [`PoolStats::uploads`].
    pub(crate) fn write_counted(&self, buffer: &wgpu::Buffer, bytes: &[u8]) {
        self.pool.uploads.fetch_add(1, Ordering::Relaxed);
        self.pool
            .uploaded_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.queue.write_buffer(buffer, 0, bytes);
    }

    /// Counts recorded weight-packing passes.
    pub(crate) fn count_packs(&self, passes: u64) {
        if passes > 0 {
            self.pool.weight_packs.fetch_add(passes, Ordering::Relaxed);
        }
    }

    /// A buffer of its own (never from or back to the pool): a resident weight, a layer's
    /// output handed to the caller.
    pub(crate) fn dedicated(
        &self,
        label: &str,
        usage: wgpu::BufferUsages,
        bytes: u64,
    ) -> wgpu::Buffer {
        self.pool.created.fetch_add(1, Ordering::Relaxed);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: least(bytes),
            usage,
            mapped_at_creation: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::class;

    #[test]
    fn size_classes_waste_little_and_respect_the_limit() {
        assert_eq!(class(1, 1 << 30), 256);
        assert_eq!(class(300, 1 << 30), 512);
        assert_eq!(class(1 << 20, 1 << 30), 1 << 20);
        let c = class((1 << 20) + 1, 1 << 30);
        assert!(c > 1 << 20 && c <= (1 << 20) + (1 << 18), "{c}");
        for b in [3_000_000u64, 50_000_001, 700_000_000] {
            let c = class(b, 1 << 30);
            assert!(c >= b && c as f64 <= b as f64 * 1.125 + 256.0, "{b} -> {c}");
        }
        // past the binding limit the class would not bind: the size asked, aligned
        assert_eq!(class(100 << 20, 101 << 20), 100 << 20);
    }
}
