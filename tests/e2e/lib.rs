//! End-to-end tests of tufa live in `tests/it`: they start the fake upstream, run the real
//! `tufa` binary (`init`, `sync`, `serve`) and install through it with real pip and uv from a
//! venv made by `setup-venv.sh`; python-tuf's `ngclient` (driven by `tuf_client.py`) verifies
//! the signed mirror, and refuses the TUF attacks played on static fixtures built from its
//! metadata. This library is empty on purpose.
