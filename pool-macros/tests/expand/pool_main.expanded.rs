use pool_runtime::prelude::*;
fn main() {
    fn __pool_main(pool: &mut Pool) -> Result<(), Error> {
        let squares = pool.map(square, 0..10)?;
        println!("{squares:?}");
        Ok(())
    }
    ::pool_runtime::__private::run::<
        _,
        Result<(), Error>,
    >(|__pool: &mut ::pool_runtime::__private::Pool| __pool_main(__pool))
}
