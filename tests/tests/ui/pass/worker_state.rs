// A first `&mut S` or `&S` parameter with `S: WorkerState`, alone or before other arguments;
// the task is still an ordinary function.
#![deny(warnings)]

use pool_runtime::prelude::*;

struct Fft {
    size: usize,
}

impl WorkerState for Fft {
    fn init(ctx: &WorkerContext) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Fft {
            size: 8 * (ctx.worker() + 1),
        })
    }
}

#[pool_task]
fn spectrum(fft: &mut Fft, samples: Vec<f64>, scale: f64) -> Vec<f64> {
    fft.size += 1;
    samples.iter().map(|x| x * scale).collect()
}

#[pool_task]
fn size(fft: &Fft) -> usize {
    fft.size
}

#[pool_task]
fn checked(fft: &Fft, n: usize) -> Result<usize, String> {
    if n > fft.size { Err("too long".into()) } else { Ok(n) }
}

fn main() {
    let mut fft = Fft { size: 4 };
    assert_eq!(spectrum(&mut fft, vec![1.0], 2.0), [2.0]);
    assert_eq!(size(&fft), 5);
    assert_eq!(checked(&fft, 1), Ok(1));
    let sizes = pool_runtime::local(1, |pool: &mut Pool| pool.map(size, vec![(); 3]).unwrap());
    assert_eq!(sizes, [8, 8, 8]);
}
