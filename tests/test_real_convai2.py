"""ConvAI2 persona tasks: ParlAI and Xpersona readers, persona clustering, the split."""
import json

import numpy as np
import pytest

from empirics.real import _convai2, _fixtures


def test_parlai_reader_plain_and_gz(tmp_path):
    for name in ("d.txt", "d.txt.gz"):
        path = _fixtures.write_parlai_dialogues(tmp_path / name, np.random.default_rng(0), episodes_per_persona=2,
                                                turns=3)
        eps = _convai2.read_parlai_self_original(path)
        assert len(eps) == 2 * len(_fixtures.FIXTURE_PERSONAS)
        ep = eps[0]
        assert ep.persona == ["i like cats.", "i live in a city."]
        assert len(ep.turns) == 3
        t0, t1 = ep.turns[0], ep.turns[1]
        assert len(t0.candidates) == 20 and t0.answer == 19
        # history = partner, reply, partner, ...; it ends with the partner's utterance
        assert len(t0.history) == 1 and len(t1.history) == 3
        assert t1.history[1] == t0.candidates[t0.answer]


def test_parlai_reader_rejects_bad_lines(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("1 your persona: i like tea.\n2 hello\tthere\t\tfoo|bar\n")
    with pytest.raises(ValueError, match="true reply"):
        _convai2.read_parlai_self_original(p)
    p.write_text("x hello\n")
    with pytest.raises(ValueError, match="expected 'N text'"):
        _convai2.read_parlai_self_original(p)
    with pytest.raises(FileNotFoundError, match="nothere.txt"):
        _convai2.read_parlai_self_original(tmp_path / "nothere.txt")


def test_xpersona_json_and_regenerated_candidates(tmp_path):
    data = [{"persona": ["i like tea."], "dialogue": [[f"u{i}{j}", f"r{i}{j}"] for j in range(3)]} for i in range(8)]
    p = tmp_path / "x.json"
    p.write_text(json.dumps(data))
    eps = _convai2.read_xpersona_json(p)
    assert len(eps) == 8 and eps[0].turns[2].history == ("u00", "r00", "u01", "r01", "u02")
    out = _convai2.regenerate_candidates(eps, np.random.default_rng(0))
    t = out[3].turns[1]
    assert len(t.candidates) == 20 and len(set(t.candidates)) == 20
    assert t.candidates[t.answer] == "r31" and t.answer == 19
    with pytest.raises(ValueError, match="distinct replies"):
        _convai2.regenerate_candidates(eps[:2], np.random.default_rng(0))


def test_normalisation_and_cluster_assignment():
    assert _convai2.normalize_persona_sentence("I'm a cook. ") == "i am a cook"
    pmap = {7: [["i am a cook", "i like to swim"]], 9: [["a", "b", "c"]]}
    eps = [_convai2.Episode(persona=["i like to swim.", "I'm a cook."]),  # exact after normalising
           _convai2.Episode(persona=["a.", "b.", "zzz."]),  # overlap of 2 sentences
           _convai2.Episode(persona=["a.", "qqq."])]  # overlap 1: unassigned
    assert _convai2.assign_clusters(eps, pmap) == [7, 9, None]


def test_persona_split_is_disjoint_and_says_so(tmp_path):
    v = _fixtures.write_parlai_dialogues(tmp_path / "valid.txt.gz", np.random.default_rng(1), episodes_per_persona=5)
    maps = _fixtures.write_persona_map(tmp_path / "maps")
    split = _convai2.build_persona_split(v, map_dir=maps, n_test=2, n_retrain=2)
    test_ids = {t.cluster for t in split.test}
    assert len(split.test) == 2 and len(split.retrain) == 2
    assert not test_ids & {t.cluster for t in split.retrain}
    assert "not available" in split.note and "DISJOINT" in split.note
    t = split.test[0]
    assert t.n_heldout_dialogues == 2 and len(t.heldout) == 2 * 3 and len(t.train) == 3 * 3
    # a user's own train file switches to the paper's split (train-file clusters for retraining)
    tr = _fixtures.write_parlai_dialogues(tmp_path / "train.txt", np.random.default_rng(2), episodes_per_persona=5)
    _fixtures.write_persona_map(tmp_path / "maps", split="train")
    split2 = _convai2.build_persona_split(v, train_file=tr, map_dir=maps, n_test=2, n_retrain=3)
    assert split2.source["train_file"] == "train.txt" and len(split2.retrain) == 3
    with pytest.raises(ValueError, match="persona clusters"):
        _convai2.build_persona_split(v, map_dir=maps, n_test=50)


def test_reduced_runs_never_retrain_on_the_reserved_test_personas(tmp_path):
    v = _fixtures.write_parlai_dialogues(tmp_path / "valid.txt", np.random.default_rng(3), episodes_per_persona=5)
    maps = _fixtures.write_persona_map(tmp_path / "maps")
    full = _convai2.build_persona_split(v, map_dir=maps, n_test=3, n_retrain=2)
    small = _convai2.build_persona_split(v, map_dir=maps, n_test=1, n_retrain=2)
    reserved = {t.cluster for t in full.test}
    assert not reserved & {t.cluster for t in small.retrain}
