//! PDF vaccination certificates in many languages (printpdf, complex-script shaping)
