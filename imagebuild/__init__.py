"""Reproducible enclave image: deterministic cpio + EIF builder and PCR computation.

    python -m imagebuild build [--out DIR]       build build/image/enclave.eif and pcrs.json
    python -m imagebuild pcrs EIF                 print the PCRs of any EIF
    python -m imagebuild verify --pcrs FILE       rebuild from a clean checkout and compare

See docs/reproducing.md for the auditor's procedure.
"""
