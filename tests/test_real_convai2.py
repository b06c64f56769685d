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
    # retraining tasks hold out 3 dialogues for validation (official lora-ml.sh), test tasks 2
    assert all(r.n_heldout_dialogues == 3 and r.n_train_dialogues >= 1 for r in split.retrain)
    # a user's own train file switches to the paper's split (train-file clusters for retraining);
    # ConvAI2's train personas are not valid personas: rewrite the fixture's personas for it
    tr = _fixtures.write_train_dialogues(tmp_path / "train.txt", maps, np.random.default_rng(2), episodes_per_persona=5)
    split2 = _convai2.build_persona_split(v, train_file=tr, map_dir=maps, n_test=2, n_retrain=3)
    assert split2.source["train_file"] == "train.txt" and len(split2.retrain) == 3
    # the same personas in the train file as in the test tasks: refused
    same = _fixtures.write_parlai_dialogues(tmp_path / "same.txt", np.random.default_rng(2), episodes_per_persona=5)
    _fixtures.write_persona_map(tmp_path / "maps2", split="train")
    _fixtures.write_persona_map(tmp_path / "maps2")
    with pytest.raises(AssertionError, match="test persona"):
        _convai2.build_persona_split(v, train_file=same, map_dir=tmp_path / "maps2", n_test=2, n_retrain=3)
    with pytest.raises(ValueError, match="persona clusters"):
        _convai2.build_persona_split(v, map_dir=maps, n_test=50)


def _valid_file_and_maps(tmp_path):
    """The fixture valid file (seed 3: four official clusters, five normalised ones) and its
    persona maps."""
    v = _fixtures.write_parlai_dialogues(tmp_path / "valid.txt", np.random.default_rng(3), episodes_per_persona=5)
    return v, _fixtures.write_persona_map(tmp_path / "maps")


def test_reduced_runs_never_retrain_on_the_reserved_test_personas(tmp_path):
    v, maps = _valid_file_and_maps(tmp_path)
    full = _convai2.build_persona_split(v, map_dir=maps, n_test=2, n_retrain=2)  # 4 official clusters
    small = _convai2.build_persona_split(v, map_dir=maps, n_test=1, n_retrain=2)
    reserved = {t.cluster for t in full.test}
    assert not reserved & {t.cluster for t in small.retrain}
    # the record states the official reader's ranks of the test personas: 0..n_test-1
    assert "(the official reader's ranks 0-1: exact persona strings" in full.note
    assert "(the official reader's ranks 0-0: exact persona strings" in small.note


def test_official_reader_drops_cluster_0_unmatched_personas_and_the_last_episode(tmp_path):
    """The official selection: exact persona strings (the contracted 'i'm a cook' persona does
    not match the map's 'i am a cook' and goes to cluster 0, which is dropped), the file's last
    episode is never stored, tasks ranked by training turns; no test persona in retraining."""
    v = _fixtures.write_parlai_dialogues(tmp_path / "valid.txt", np.random.default_rng(4), episodes_per_persona=5)
    maps = _fixtures.write_persona_map(tmp_path / "maps")
    eps = _convai2.read_parlai_self_original(v)
    tasks = _convai2.official_persona_tasks(eps, _convai2.load_persona_map(maps / "valid_persona_map"), 2)
    assert sorted(t.cluster for t in tasks) == [1, 3, 4, 5]  # cluster 2 (contraction) lost with cluster 0
    by = {t.cluster: t for t in tasks}
    assert by[5].n_train_dialogues + by[5].n_heldout_dialogues == 4  # the last episode of the file is gone
    assert by[1].n_train_dialogues == 3 and by[1].n_heldout_dialogues == 2
    assert [len(t.train) for t in tasks] == sorted((len(t.train) for t in tasks), reverse=True)
    split = _convai2.build_persona_split(v, map_dir=maps, n_test=1, n_retrain=2)
    assert split.source["selection"] == "official"
    assert split.source["test_clusters"] == [tasks[0].cluster]
    assert not {t.cluster for t in split.retrain} & set(split.source["reserved_test_clusters"])
    assert not set().union(*(t.personas for t in split.retrain)) & set().union(*(t.personas for t in split.test))
    assert f"clusters [{tasks[0].cluster}]" in split.note  # the record says which clusters were used for what
    old = _convai2.build_persona_split(v, map_dir=maps, n_test=1, n_retrain=4, selection="normalized")
    assert 2 in {t.cluster for t in old.test + old.retrain}  # the normalised reading keeps cluster 2
    with pytest.raises(ValueError, match="selection"):
        _convai2.build_persona_split(v, map_dir=maps, selection="fuzzy")


def test_official_sentence_spelling():
    assert _convai2.official_persona_sentence("i like to remodel homes.") == "i like to remodel homes"
    assert _convai2.official_persona_sentence("my fav: pizza.") == "my fa"  # split(':')[1][1:-1], as the reader


@pytest.mark.skipif(not _convai2.DEFAULT_VALID_FILE.is_file(), reason="shared ConvAI2 copy not present")
def test_official_test_personas_on_the_shared_valid_file():
    """The shared data's README: the official reader yields 77 tasks, the top 10 with
    79/70/68/63/62/55/53/47/39/39 training turns."""
    eps = _convai2.read_parlai_self_original(_convai2.DEFAULT_VALID_FILE)
    pmap = _convai2.load_persona_map(_convai2.DEFAULT_MAP_DIR / "valid_persona_map")
    tasks = _convai2.official_persona_tasks(eps, pmap, 2)
    assert len(tasks) == 77
    assert [len(t.train) for t in tasks[:10]] == [79, 70, 68, 63, 62, 55, 53, 47, 39, 39]
    split = _convai2.build_persona_split()
    assert split.source["test_clusters"] == [t.cluster for t in tasks[:10]]
    assert not set(split.source["test_clusters"]) & set(split.source["retrain_clusters_used"])


def test_the_papers_persona_counts_and_text_lengths_are_the_defaults():
    """Fine-tuning on the 10 largest valid personas, retraining on 10 (the paper); 20
    candidates per turn; 128 tokens per (history, candidate) pair and head dropout 0.1 unless
    a run says otherwise (THEORY.md 9.5's ConvAI2 protocol: dropout 0.1)."""
    import inspect

    from empirics.real import _text

    split = inspect.signature(_convai2.build_persona_split).parameters
    assert (split["n_test"].default, split["n_retrain"].default) == (10, 10)
    assert _convai2.N_CANDIDATES == 20
    assert inspect.signature(_text.tokenize_turns).parameters["max_length"].default == 128
    head = [c for c in vars(_text).values() if inspect.isclass(c) and c.__module__ == _text.__name__
            and "dropout" in inspect.signature(c.__init__).parameters]
    assert head and all(inspect.signature(c.__init__).parameters["dropout"].default == 0.1 for c in head)


def test_cluster_assignment_takes_any_overlap_of_at_least_two_sentences_and_the_larger_one():
    """Overlaps of 2 and more sentences (not exactly 2) assign; the cluster sharing the most
    wins, ties going to the smaller id."""
    pmap = {3: [["a", "b", "c", "d"]], 5: [["a", "b", "x"]], 8: [["a", "b", "y"]]}
    eps = [_convai2.Episode(persona=["a.", "b.", "c.", "d.", "e."]),  # 4 with cluster 3
           _convai2.Episode(persona=["a.", "b.", "c.", "z."]),        # 3 with cluster 3, 2 with 5 and 8
           _convai2.Episode(persona=["a.", "b.", "q."])]              # 2 with 3, 5 and 8: the smallest id
    assert _convai2.MIN_SENTENCE_OVERLAP == 2
    assert _convai2.assign_clusters(eps, pmap) == [3, 3, 3]


def test_persona_tasks_are_ranked_by_training_turns_largest_first_ties_by_cluster():
    def ep(n_turns, persona):
        return _convai2.Episode(persona=[persona], turns=[("h", "r")] * n_turns)

    # per cluster: episodes (the last one held out)
    episodes = [ep(1, "p1"), ep(1, "p1"), ep(5, "p2"), ep(1, "p2"), ep(3, "p3"), ep(1, "p3"), ep(3, "p4"),
                ep(1, "p4")]
    clusters = [1, 1, 2, 2, 3, 3, 4, 4]
    tasks = _convai2.cluster_tasks(episodes, clusters, heldout_dialogues=1)
    assert [(t.cluster, len(t.train)) for t in tasks] == [(2, 5), (3, 3), (4, 3), (1, 1)]


def test_the_official_selection_refuses_xpersona_json(tmp_path):
    for name in ("valid.json", "valid.json.gz"):
        with pytest.raises(ValueError, match="the official persona selection reads ParlAI self_original files"):
            _convai2._official_split(tmp_path / name, None, tmp_path, 1, 1)


def test_a_bad_line_is_named_by_its_line_number(tmp_path):
    """The reader names a malformed line by its 1-based number in the file."""
    p = tmp_path / "bad.txt"
    p.write_text("1 your persona: i like tea.\n\nx hello\n")
    with pytest.raises(ValueError, match=r"bad.txt:3: expected 'N text'"):
        _convai2.read_parlai_self_original(p)


@pytest.mark.parametrize("n_test, ok", [(4, True), (6, False), (9, False)])
def test_the_normalised_selection_needs_as_many_clusters_as_test_personas(tmp_path, n_test, ok):
    """With the normalised reading the valid file's five persona clusters give at most five
    test personas: asking for more is refused with the count, whatever the number (four leave
    one cluster to retrain on)."""
    v = _fixtures.write_parlai_dialogues(tmp_path / "valid.txt", np.random.default_rng(4), episodes_per_persona=5)
    maps = _fixtures.write_persona_map(tmp_path / "maps")
    if ok:
        assert len(_convai2.build_persona_split(v, map_dir=maps, n_test=n_test, n_retrain=1,
                                                selection="normalized").test) == n_test
    else:
        with pytest.raises(ValueError, match=f"only 5 persona clusters, need {n_test}"):
            _convai2.build_persona_split(v, map_dir=maps, n_test=n_test, n_retrain=1, selection="normalized")


def test_tiny_bert_fixture_has_the_special_tokens_then_every_dialogue_word(tmp_path):
    """The fixture encoder's vocabulary: BERT's five special tokens and five punctuation marks
    first, then every word of the fixture dialogues once, sorted; its config's vocab_size
    matches, so each fixture word has an id of its own (none maps to [UNK])."""
    pytest.importorskip("transformers")
    from transformers import BertConfig, BertTokenizer

    folder = _fixtures.write_tiny_bert(tmp_path / "bert", hidden=8, layers=1, heads=1)
    vocab = (folder / "vocab.txt").read_text().splitlines()
    words = sorted(set(_fixtures._WORDS))
    assert vocab == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "'", ".", ",", "?", "!"] + words
    assert BertConfig.from_pretrained(str(folder)).vocab_size == len(vocab)
    tok = BertTokenizer.from_pretrained(str(folder))
    ids = tok.convert_tokens_to_ids(words)
    assert tok.unk_token_id not in ids and len(set(ids)) == len(words)


def test_a_reduced_run_reserves_the_papers_test_personas_whatever_the_retraining_order(tmp_path, monkeypatch):
    """Both selections: with 2 retraining tasks asked, the clusters a 2-test-task run tests on
    stay out of retraining when fine-tuning uses only the first, even when the retraining
    ranking would put them first (the reserve is the top min(10, clusters - n_retrain))."""
    v, maps = _valid_file_and_maps(tmp_path)
    real = _convai2.cluster_tasks
    for selection in ("official", "normalized"):
        full = _convai2.build_persona_split(v, map_dir=maps, n_test=2, n_retrain=2, selection=selection)
        reserved = {t.cluster for t in full.test}
        with monkeypatch.context() as m:  # the reserved clusters first in every retraining ranking
            m.setattr(_convai2, "cluster_tasks",
                      lambda *a, **k: sorted(real(*a, **k), key=lambda t: t.cluster not in reserved))
            small = _convai2.build_persona_split(v, map_dir=maps, n_test=1, n_retrain=2, selection=selection)
        assert len(reserved) == 2 and len(small.test) == 1 and small.retrain, selection
        assert not reserved & {t.cluster for t in small.retrain}, selection


def test_exactly_as_many_official_clusters_as_test_tasks_passes_the_count(tmp_path):
    """4 official clusters: n_test = 5 is refused for the count, n_test = 4 passes it (and
    then has none left for retraining)."""
    v, maps = _valid_file_and_maps(tmp_path)
    with pytest.raises(ValueError, match="only 4 persona clusters, need 5"):
        _convai2.build_persona_split(v, map_dir=maps, n_test=5, n_retrain=1)
    with pytest.raises(ValueError, match="no retraining persona tasks could be formed"):
        _convai2.build_persona_split(v, map_dir=maps, n_test=4, n_retrain=1)


def test_cluster_tasks_hold_out_the_last_dialogues_and_train_on_the_rest():
    """A cluster of 5 dialogues with 2 held out: the first 3 train, the last 2 are held out,
    the two disjoint; a cluster with no more dialogues than are held out is left out."""
    E = _convai2.Episode
    eps = [E(persona=[f"p{i}"], turns=[f"t{i}a", f"t{i}b"]) for i in range(5)]
    small = [E(persona=["q"], turns=["u"]) for _ in range(2)]
    (task,) = _convai2.cluster_tasks(eps + small, [7] * 5 + [8] * 2, 2)
    assert task.cluster == 7 and (task.n_train_dialogues, task.n_heldout_dialogues) == (3, 2)
    assert task.train == ["t0a", "t0b", "t1a", "t1b", "t2a", "t2b"] and task.heldout == ["t3a", "t3b", "t4a", "t4b"]
