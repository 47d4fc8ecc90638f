//! FHIR R4 bundles, WHO DDCC:VS, and SMART Health Cards
