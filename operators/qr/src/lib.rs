//! QR images for every payload kind: DIVOC ZIP bytes, HC1 alphanumeric, shc:/ byte+numeric
