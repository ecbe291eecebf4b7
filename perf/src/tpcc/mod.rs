pub mod check;
pub mod load;
