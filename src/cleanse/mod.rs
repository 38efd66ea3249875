//! Cleanse: the rules that turn the `raw` layer into the `clean` one, each a function from a
//! `LazyFrame` to a `LazyFrame` so stages compose them into one plan per partition.

pub mod dedup;
pub mod fraud;
pub mod test_data;
pub mod reject;
