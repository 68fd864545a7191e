"""counter.rs (a tracepoint program: a hash map from pid to openat() count), tested with
bpfkit's pytest plugin.  The kernel cannot test-run tracepoint programs, so as root the
plugin has the verifier accept it and runs it in the VM, whose pid is the test's to choose."""

import pytest

HERE = __file__.rsplit("/", 1)[0]

pytestmark = pytest.mark.requires("rustc")


@pytest.fixture
def counter(bpf):
    return bpf(f"{HERE}/counter.rs")


def test_first_call_inserts_one(counter, bpf_env):
    bpf_env.tgid = 1234
    r = counter.run()
    assert r.retval == 0
    assert r.maps["COUNTS"] == {1234: 1}


def test_later_calls_add(counter, bpf_env, bpf_maps):
    bpf_env.tgid = 77
    bpf_maps["COUNTS"] = {77: 41, 5: 3}
    r = counter.run()
    assert r.maps["COUNTS"] == {77: 42, 5: 3}


def test_processes_are_counted_apart(counter, bpf_env, bpf_maps):
    bpf_env.tgid = 9
    bpf_maps["COUNTS"] = {10: 1}
    assert counter.run().maps["COUNTS"] == {9: 1, 10: 1}
