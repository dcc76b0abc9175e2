"""Values kept on disk between processes (`cachedit.zoo.disk_once`): a fit made once per key, read back exactly, made
anew for another key or an unreadable file, and never a failure where the directory cannot be written; the
mechanism under it keeps any file format and leaves a damaged file to its caller."""

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier

from cachedit.zoo import digits
from cachedit.zoo.disk_once import cache_dir, kept_fit, kept_on_disk


def _counting_fit(calls: list):
    def fit():
        calls.append(1)
        rng = np.random.default_rng(0)
        inputs, labels = rng.normal(size=(60, 4)), np.arange(60) % 3
        return MLPClassifier(hidden_layer_sizes=(8,), tol=1e-3, random_state=0).fit(inputs, labels)
    return fit


def test_a_fit_is_made_once_per_key_and_read_back_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("CACHEDIT_CACHE_DIR", str(tmp_path))
    calls = []
    first = kept_fit("toy", ("v1", b"data"), _counting_fit(calls))
    again = kept_fit("toy", ("v1", b"data"), _counting_fit(calls))
    assert len(calls) == 1 and len(list(tmp_path.glob("toy-*.pkl"))) == 1
    probe = np.random.default_rng(1).normal(size=(20, 4))
    assert np.array_equal(first.predict_proba(probe), again.predict_proba(probe))
    assert all(np.array_equal(a, b) for a, b in zip(first.coefs_, again.coefs_))
    kept_fit("toy", ("v2", b"data"), _counting_fit(calls))  # another key (a library version, the data): fit anew
    assert len(calls) == 2 and len(list(tmp_path.glob("toy-*.pkl"))) == 2


def test_an_unreadable_file_is_fitted_over_and_an_unwritable_directory_only_skips_keeping(tmp_path, monkeypatch):
    monkeypatch.setenv("CACHEDIT_CACHE_DIR", str(tmp_path))
    calls = []
    kept_fit("toy", ("v1",), _counting_fit(calls))
    (kept,) = tmp_path.glob("toy-*.pkl")
    kept.write_bytes(b"not a pickle")
    kept_fit("toy", ("v1",), _counting_fit(calls))
    assert len(calls) == 2
    kept_fit("toy", ("v1",), _counting_fit(calls))  # the fit over it was kept
    assert len(calls) == 2
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("CACHEDIT_CACHE_DIR", str(blocker / "cache"))  # cannot be created
    assert kept_fit("toy", ("v1",), _counting_fit(calls)).predict(np.zeros((1, 4))).shape == (1,)
    assert len(calls) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a file", kept.name, kept.name + ".lock"]  # no partial file


def test_kept_on_disk_saves_under_the_file_s_own_suffix_and_propagates_other_load_errors(tmp_path):
    path = tmp_path / "baseline.npz"
    def save(value, to):
        np.savez(to, images=value)  # np.savez appends `.npz` to any other name

    def load(at):
        with np.load(at) as data:
            return data["images"]
    value, source = kept_on_disk(path, lambda: np.arange(3), load, save)
    assert source == "computed" and np.array_equal(kept_on_disk(path, None, load, save)[0], value)
    assert kept_on_disk(path, None, load, save)[1] == "disk"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.npz", "baseline.npz.lock"]
    path.write_bytes(b"damaged")
    with pytest.raises(ValueError):  # a damaged baseline is an error unless the caller names it unreadable
        kept_on_disk(path, lambda: np.arange(3), load, save)


def test_the_digit_classifier_is_kept_under_its_own_key(tmp_path, monkeypatch):
    monkeypatch.setenv("CACHEDIT_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.setattr(digits, "MLPClassifier", lambda **params: _Recorded(params))
    digits.classifier.cache_clear()
    try:
        recorded = digits.classifier()
        assert recorded.params == dict(hidden_layer_sizes=(128,), alpha=1e-3, max_iter=1000, random_state=0)
        assert recorded.fitted_on == (1438, 64) and len(list(tmp_path.glob("digits-classifier-*.pkl"))) == 1
    finally:
        digits.classifier.cache_clear()  # the next caller gets the real one


class _Recorded:
    """Stands in for the MLP: records its parameters and training data's shape instead of fitting for seconds."""

    def __init__(self, params):
        self.params, self.fitted_on = params, None

    def fit(self, inputs, labels):
        self.fitted_on = inputs.shape
        return self
