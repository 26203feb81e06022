use pool_runtime::prelude::*;

struct Summary {
    mean: f64,
}

#[pool_task]
fn summarize(samples: Vec<f64>) -> Summary {
    Summary {
        mean: samples.iter().sum::<f64>() / samples.len() as f64,
    }
}

#[pool_task]
fn try_summarize(samples: Vec<f64>) -> Result<Summary, String> {
    Ok(summarize(samples))
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    let s = pool.map(summarize, [vec![1.0]])?;
    assert_eq!(s[0].mean, 1.0);
    Ok(())
}
