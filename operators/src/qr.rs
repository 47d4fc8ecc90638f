//! DIVOC's QR payload and QR images: re-exported from `divoc-qr`, which owns every payload kind
//! (DIVOC ZIP, EU DCC `HC1:`, SMART Health Card `shc:/`) and its tests.

pub use divoc_qr::*;
