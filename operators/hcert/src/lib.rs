//! EU Digital COVID Certificate (HCERT): DCC payload, CWT, COSE_Sign1, zlib, Base45, HC1
