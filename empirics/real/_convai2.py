"""ConvAI2 / PersonaChat persona tasks (ParlAI ``self_original`` format or Xpersona JSON).

A *task* is a PAML persona cluster (the paper's ``*_persona_map`` pickles): all
dialogues whose bot persona falls in one cluster. Each turn is a 20-way choice of the
true reply among candidates given the dialogue history (hits@1).

Data available offline (``../shared/data/convai2/README.md``): the real ConvAI2 valid
dialogues and a small train subset, with regenerated candidates (19 random replies of
the same file + the true reply). The original ``train_self_original.txt`` is NOT
available, so by default the retraining tasks are persona clusters of the valid file
that are disjoint from the 10 test clusters (:data:`RETRAIN_SOURCE_NOTE`); a user with
the original ParlAI files passes ``train_file=`` (and ``valid_file=``) to get the
paper's split (train-file clusters 0-9 for retraining).
"""
from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._paths import SHARED_DATA
from ._safe_pickle import load_data_pickle

__all__ = [
    "CONVAI2_DIR", "Turn", "Episode", "PersonaTask", "PersonaSplit", "RETRAIN_SOURCE_NOTE",
    "read_parlai_self_original", "read_xpersona_json", "regenerate_candidates",
    "normalize_persona_sentence", "load_persona_map", "assign_clusters", "cluster_tasks",
    "build_persona_split", "official_persona_tasks", "official_persona_sentence", "PERSONA_SELECTIONS",
]

CONVAI2_DIR = SHARED_DATA / "convai2"
DEFAULT_VALID_FILE = CONVAI2_DIR / "valid_self_original.regen_cands.txt.gz"
DEFAULT_MAP_DIR = CONVAI2_DIR / "paml_persona_maps"
DEFAULT_ASSIGNMENT = CONVAI2_DIR / "persona_cluster_assignment.json"

#: Number of candidates per turn in ConvAI2 (19 distractors + the true reply).
N_CANDIDATES = 20
#: Dialogues held out per persona for evaluation: 2 for the test personas (official
#: ``lora.sh``: ``--num_valid 2``) and 3 for retraining validation (``lora-ml.sh``).
TEST_HELDOUT_DIALOGUES = 2
RETRAIN_HELDOUT_DIALOGUES = 3
#: The paper fine-tunes on the 10 largest valid personas and retrains on 10 train personas.
N_TEST_PERSONAS = 10
N_RETRAIN_PERSONAS = 10
#: Smallest overlap (in persona sentences) accepted when no exact cluster match exists
#: (the rule used to build persona_cluster_assignment.json).
MIN_SENTENCE_OVERLAP = 2

RETRAIN_SOURCE_NOTE = (
    "The original ConvAI2 train file (train_self_original.txt) is not available here: "
    "retraining uses persona clusters of the ConvAI2 valid dialogues that are DISJOINT "
    "from the test personas (the paper retrains on clusters 0-9 of the train file). "
    "Candidates are regenerated (19 random replies of the same file + the true reply), "
    "not the original ParlAI distractors."
)

_CONTRACTIONS = {
    "i'm": "i am", "i've": "i have", "i'll": "i will", "i'd": "i would", "don't": "do not",
    "doesn't": "does not", "didn't": "did not", "can't": "can not", "won't": "will not",
    "isn't": "is not", "aren't": "are not", "wasn't": "was not", "it's": "it is",
    "that's": "that is", "he's": "he is", "she's": "she is", "we're": "we are",
    "they're": "they are", "you're": "you are", "haven't": "have not", "hasn't": "has not",
    "couldn't": "could not", "wouldn't": "would not", "shouldn't": "should not",
    "there's": "there is", "let's": "let us", "what's": "what is",
}
_CONTRACTION_RE = re.compile(r"\b(" + "|".join(re.escape(k) for k in _CONTRACTIONS) + r")\b")


@dataclass(frozen=True)
class Turn:
    """One turn: the history (partner and bot utterances, oldest first, ending with the
    partner's last utterance), the candidates and the index of the true reply."""

    history: tuple
    candidates: tuple
    answer: int


@dataclass
class Episode:
    persona: list
    turns: list = field(default_factory=list)
    cluster: int | None = None


@dataclass
class PersonaTask:
    """One persona cluster: training turns and held-out evaluation turns."""

    cluster: int
    train: list
    heldout: list
    n_train_dialogues: int = 0
    n_heldout_dialogues: int = 0
    #: the (sorted) persona sentence lists of its dialogues, as the reader that formed it keys them
    personas: frozenset = frozenset()

    @property
    def name(self) -> str:
        return f"persona_{self.cluster}"


@dataclass
class PersonaSplit:
    retrain: list
    test: list
    note: str
    source: dict


def _open_text(path: Path):
    if not path.is_file():
        raise FileNotFoundError(
            f"ConvAI2 file not found: {path}. Use the ParlAI ConvAI2 files "
            "(valid_self_original.txt / train_self_original.txt, plain or .gz) or the "
            "offline copies described in ../shared/data/convai2/README.md."
        )
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_parlai_self_original(path: str | os.PathLike) -> list:
    """Read a ParlAI ConvAI2 ``self_original`` file (plain or ``.gz``).

    Each line is ``N text``; ``N == 1`` starts an episode. ``your persona: ...`` lines
    give the bot persona; dialogue lines are ``partner\\treply\\t\\tc1|...|c20``.
    ``partner's persona:`` lines (``both_*`` files) are ignored.
    """
    path = Path(path)
    episodes: list[Episode] = []
    ep, history = None, []
    with _open_text(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            num, _, text = line.partition(" ")
            if not num.isdigit():
                raise ValueError(f"{path}:{lineno}: expected 'N text', got {line[:60]!r}")
            if int(num) == 1 or ep is None:
                ep, history = Episode(persona=[]), []
                episodes.append(ep)
            if "\t" not in text:
                if text.startswith("your persona:"):
                    ep.persona.append(text[len("your persona:"):].strip())
                continue
            fields = text.split("\t")
            if len(fields) < 4:
                raise ValueError(f"{path}:{lineno}: expected 'partner\\treply\\t\\tcandidates'")
            u, r, cands = fields[0], fields[1], fields[3].split("|")
            if r not in cands:
                raise ValueError(f"{path}:{lineno}: the true reply is not among the candidates")
            history.append(u)
            ep.turns.append(Turn(tuple(history), tuple(cands), cands.index(r)))
            history.append(r)
    return episodes


def read_xpersona_json(path: str | os.PathLike) -> list:
    """Read the Xpersona/ConvAI2 JSON (``[{"persona": [...], "dialogue": [[u, r], ...]}]``).

    The JSON has no candidates: turns get ``candidates == (reply,)`` until
    :func:`regenerate_candidates` draws distractors.
    """
    path = Path(path)
    with _open_text(path) as fh:
        data = json.load(fh)
    episodes = []
    for i, item in enumerate(data):
        if "persona" not in item or "dialogue" not in item:
            raise ValueError(f"{path}: episode {i} lacks 'persona' or 'dialogue'")
        ep, history = Episode(persona=list(item["persona"])), []
        for u, r in item["dialogue"]:
            history.append(u)
            ep.turns.append(Turn(tuple(history), (r,), 0))
            history.append(r)
        episodes.append(ep)
    return episodes


def regenerate_candidates(episodes: list, rng: np.random.Generator,
                          n_candidates: int = N_CANDIDATES) -> list:
    """Give each turn ``n_candidates - 1`` distractors drawn from the episodes' own replies
    (excluding the true one) and put the true reply last, as the shared regenerated files do."""
    pool = sorted({t.candidates[t.answer] for ep in episodes for t in ep.turns})
    if len(pool) < n_candidates:
        raise ValueError(f"only {len(pool)} distinct replies; need {n_candidates}")
    out = []
    for ep in episodes:
        turns = []
        for t in ep.turns:
            true = t.candidates[t.answer]
            picks = []
            while len(picks) < n_candidates - 1:
                c = pool[int(rng.integers(len(pool)))]
                if c != true and c not in picks:
                    picks.append(c)
            turns.append(Turn(t.history, tuple(picks) + (true,), n_candidates - 1))
        out.append(Episode(list(ep.persona), turns, ep.cluster))
    return out


def normalize_persona_sentence(s: str) -> str:
    """Lower-case, expand contractions, drop the final period: the PAML maps' spelling."""
    s = s.strip().lower()
    s = _CONTRACTION_RE.sub(lambda m: _CONTRACTIONS[m.group(1)], s)
    s = s.rstrip()
    if s.endswith("."):
        s = s[:-1].rstrip()
    return s


def load_persona_map(path: str | os.PathLike) -> dict:
    """Load a PAML ``*_persona_map`` pickle: cluster id -> list of sorted persona lists."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"persona map not found: {path}. The PAML maps (train/valid/test_persona_map) "
            "come from HLTCHKUST/PAML data/ConvAI2/; see ../shared/data/convai2/README.md."
        )
    # plain data only: a crafted map under --map-dir cannot run code (UnsafePickleError, exit 2)
    raw = load_data_pickle(path, encoding="utf-8")
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a persona map (a pickled {type(raw).__name__}, expected a dict)")
    out = {}
    for k, v in raw.items():
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not isinstance(v, (list, tuple)) \
                or not all(isinstance(p, (list, tuple)) and all(isinstance(s, str) for s in p) for p in v):
            raise ValueError(f"{path}: not a persona map (cluster id -> list of persona sentence lists)")
        out[int(k)] = [list(p) for p in v]
    return out


def assign_clusters(episodes: list, persona_map: dict) -> list:
    """Cluster id of each episode: exact normalised persona match, else the cluster
    sharing the most sentences (at least :data:`MIN_SENTENCE_OVERLAP`), else ``None``."""
    exact, sentence_clusters = {}, {}
    for cid, personas in persona_map.items():
        for p in personas:
            norm = tuple(sorted(normalize_persona_sentence(s) for s in p))
            exact.setdefault(norm, cid)
            for s in norm:
                sentence_clusters.setdefault(s, set()).add(cid)
    out = []
    for ep in episodes:
        norm = tuple(sorted(normalize_persona_sentence(s) for s in ep.persona))
        if norm in exact:
            out.append(exact[norm])
            continue
        votes: dict[int, int] = {}
        for s in set(norm):
            for cid in sentence_clusters.get(s, ()):
                votes[cid] = votes.get(cid, 0) + 1
        best = max(votes.items(), key=lambda kv: (kv[1], -kv[0]), default=(None, 0))
        out.append(best[0] if best[1] >= MIN_SENTENCE_OVERLAP else None)
    return out


def cluster_tasks(episodes: list, clusters: list, heldout_dialogues: int) -> list:
    """Group episodes by cluster; the last ``heldout_dialogues`` dialogues of each cluster
    are held out. Clusters with no training dialogue left are dropped. Sorted by number
    of training turns, largest first (ties by cluster id), as the official reader ranks."""
    groups: dict[int, list] = {}
    for ep, c in zip(episodes, clusters):
        if c is not None:
            groups.setdefault(int(c), []).append(ep)
    tasks = []
    for cid, eps in groups.items():
        if len(eps) <= heldout_dialogues:
            continue
        tr, ho = eps[:-heldout_dialogues], eps[-heldout_dialogues:]
        tasks.append(PersonaTask(cid, [t for e in tr for t in e.turns], [t for e in ho for t in e.turns],
                                 len(tr), len(ho),
                                 frozenset(tuple(sorted(normalize_persona_sentence(x) for x in e.persona))
                                           for e in eps)))
    tasks.sort(key=lambda t: (-len(t.train), t.cluster))
    return tasks


def _episodes_with_clusters(path: Path, split: str, map_dir: Path, assignment: Path | None, rng):
    if path.suffix == ".json" or path.name.endswith(".json.gz"):
        episodes = regenerate_candidates(read_xpersona_json(path), rng)
        key = next((k for k in (json.loads(assignment.read_text()) if assignment and assignment.is_file() else {})
                    if k.startswith(path.name)), None)
        if key is not None:
            clusters = json.loads(assignment.read_text())[key]
            return episodes, clusters, f"{assignment.name}[{key}]"
    else:
        episodes = read_parlai_self_original(path)
    clusters = assign_clusters(episodes, load_persona_map(map_dir / f"{split}_persona_map"))
    return episodes, clusters, f"{split}_persona_map (normalised match)"


#: Persona selections of :func:`build_persona_split`.
PERSONA_SELECTIONS = ("official", "normalized")


def official_persona_sentence(text: str) -> str:
    """A persona sentence as the official reader keeps it (``conv_utils.read_langs``): the
    text between the first and second ``:`` of ``your persona: ...`` minus its first and
    last character (the space after the colon and, normally, the final period).
    ``text`` is what follows ``your persona:`` (leading space stripped, as our reader does)."""
    return (" " + text).split(":")[0][1:-1]


def official_persona_tasks(episodes: list, persona_map: dict, heldout_dialogues: int) -> list:
    """Persona tasks exactly as the official ConvAI2 reader forms and ranks them.

    ``conv_utils.file_to_dict_lists`` (official code): episodes are grouped by their
    sorted persona sentences (:func:`official_persona_sentence`); the LAST episode of the
    file is never stored (the reader flushes an episode only when the next one starts); a
    persona group joins cluster ``c`` when its sorted sentence list equals one listed for
    ``c`` in the PAML map (exact strings, no normalisation; the last matching cluster
    wins), otherwise cluster 0; clusters with at most one dialogue are dropped, and then
    cluster 0 itself (so personas written e.g. with contractions are lost); the last
    ``heldout_dialogues`` dialogues of each cluster are held out; clusters are ranked by
    their number of training turns with ``np.flip(np.argsort(...))``.
    """
    groups: dict[tuple, list] = {}
    for ep in episodes[:-1]:  # the official reader never stores the file's last episode
        key = tuple(sorted(official_persona_sentence(x) for x in ep.persona))
        groups.setdefault(key, []).append(ep)
    lookup = [(cid, [list(p) for p in personas]) for cid, personas in persona_map.items()]
    clusters: dict[int, list] = {}
    keys: dict[int, set] = {}
    for key, eps in groups.items():
        cid = 0
        for c, personas in lookup:
            if list(key) in personas:
                cid = c
        clusters.setdefault(int(cid), []).extend(eps)
        keys.setdefault(int(cid), set()).add(key)
    clusters = {c: eps for c, eps in clusters.items() if len(eps) > 1}
    clusters.pop(0, None)
    tasks = []
    for cid, eps in clusters.items():
        tr, ho = eps[:-heldout_dialogues], eps[-heldout_dialogues:]
        tasks.append(PersonaTask(cid, [t for e in tr for t in e.turns], [t for e in ho for t in e.turns],
                                 len(tr), len(ho), frozenset(keys[cid])))
    order = np.flip(np.argsort([len(t.train) for t in tasks]))
    return [tasks[i] for i in order]


def _official_split(valid_file: Path, train_file, map_dir: Path, n_test: int, n_retrain: int) -> PersonaSplit:
    if valid_file.suffix == ".json" or valid_file.name.endswith(".json.gz"):
        raise ValueError(f"{valid_file.name}: the official persona selection reads ParlAI self_original files; "
                         "use persona_selection='normalized' for Xpersona JSON")
    eps = read_parlai_self_original(valid_file)
    vmap = load_persona_map(map_dir / "valid_persona_map")
    ranked = official_persona_tasks(eps, vmap, TEST_HELDOUT_DIALOGUES)
    if len(ranked) < n_test:
        raise ValueError(f"{valid_file}: only {len(ranked)} persona clusters, need {n_test}")
    test = ranked[:n_test]
    source = {"valid_file": valid_file.name, "selection": "official",
              "valid_clusters_from": "valid_persona_map (exact strings; cluster 0 and unmatched dropped)"}
    if train_file is not None:
        teps = read_parlai_self_original(Path(train_file))
        retrain = official_persona_tasks(teps, load_persona_map(map_dir / "train_persona_map"),
                                         RETRAIN_HELDOUT_DIALOGUES)[:n_retrain]
        source.update(train_file=Path(train_file).name, retrain_ranks=f"0-{len(retrain) - 1} of the train file")
        note = (f"Retraining on train-file persona clusters {[t.cluster for t in retrain]} (official reader ranks "
                f"0-{len(retrain) - 1}, {RETRAIN_HELDOUT_DIALOGUES} dialogues held out for validation), fine-tuning "
                f"on valid-file clusters {[t.cluster for t in test]} (official reader ranks 0-{n_test - 1}).")
    else:
        # never retrain on the paper's 10 test personas, also when a reduced run tests on fewer
        reserved = max(n_test, min(N_TEST_PERSONAS, len(ranked) - n_retrain))
        retrain_ranked = official_persona_tasks(eps, vmap, RETRAIN_HELDOUT_DIALOGUES)
        reserved_ids = {t.cluster for t in ranked[:reserved]}
        retrain = [t for t in retrain_ranked if t.cluster not in reserved_ids][:n_retrain]
        source.update(train_file=None, reserved_test_clusters=sorted(reserved_ids),
                      retrain_clusters="official-reader valid-file clusters ranked after the reserved test ones")
        note = (f"Test personas: valid-file clusters {[t.cluster for t in test]} (the official reader's ranks "
                f"0-{n_test - 1}: exact persona strings, cluster 0 dropped, {TEST_HELDOUT_DIALOGUES} dialogues "
                f"held out). Retraining: valid-file clusters {[t.cluster for t in retrain]}, disjoint from the "
                f"reserved test clusters {sorted(reserved_ids)}. " + RETRAIN_SOURCE_NOTE)
    source.update(test_clusters=[t.cluster for t in test], retrain_clusters_used=[t.cluster for t in retrain])
    return PersonaSplit(retrain=retrain, test=test, note=note, source=source)


def build_persona_split(valid_file: str | os.PathLike | None = None, *,
                        train_file: str | os.PathLike | None = None,
                        map_dir: str | os.PathLike | None = None,
                        assignment: str | os.PathLike | None = None,
                        n_test: int = N_TEST_PERSONAS, n_retrain: int = N_RETRAIN_PERSONAS,
                        rng: np.random.Generator | None = None, selection: str = "official") -> PersonaSplit:
    """The retraining and test persona tasks.

    ``selection="official"`` (default) forms the tasks as the official reader does
    (:func:`official_persona_tasks`: exact persona strings, cluster 0 dropped): the test
    personas are its ranks ``0..n_test-1`` on the valid file (``lora.sh``:
    ``--persona_nums_rng 0 9 --num_valid 2``); retraining uses the train file's ranks
    ``0..n_retrain-1`` when one is given (``lora-ml.sh``), else the valid file's clusters
    ranked after the 10 reserved test clusters. Every split checks that no persona of a
    test task occurs in a retraining task, and its ``note`` and ``source`` name the
    clusters used for what. ``selection="normalized"`` is this package's earlier
    reading (normalised persona match with an overlap fallback, contractions expanded),
    which keeps more dialogues but agrees with the official test personas in 1 of 10.

    Parameters
    ----------
    valid_file : path-like, optional
        ConvAI2 valid dialogues (ParlAI ``self_original`` txt[.gz] or Xpersona JSON);
        default the shared regenerated-candidate file. Its ``n_test`` largest clusters
        are the test personas (2 dialogues each held out for evaluation).
    train_file : path-like, optional
        The original ParlAI ``train_self_original.txt``. When given, its ``n_retrain``
        largest clusters (``train_persona_map``) are the retraining tasks, as in the
        paper. When omitted, the retraining tasks are the largest ``n_retrain`` clusters of
        the valid file outside its top 10 (the paper's test personas, also when a reduced
        run fine-tunes on fewer of them), see :data:`RETRAIN_SOURCE_NOTE`.
    map_dir : path-like, optional
        Folder of the PAML ``{train,valid}_persona_map`` pickles.
    assignment : path-like, optional
        ``persona_cluster_assignment.json`` (used for the Xpersona JSON files).
    rng : numpy.random.Generator, optional
        Draws regenerated candidates for JSON input (default: a fixed ``default_rng(0)``).
    selection : {"official", "normalized"}
    """
    if selection not in PERSONA_SELECTIONS:
        raise ValueError(f"persona selection must be one of {PERSONA_SELECTIONS}, got {selection!r}")
    valid_file = Path(valid_file) if valid_file is not None else DEFAULT_VALID_FILE
    map_dir = Path(map_dir) if map_dir is not None else DEFAULT_MAP_DIR
    assignment = Path(assignment) if assignment is not None else DEFAULT_ASSIGNMENT
    if selection == "official":
        split = _official_split(valid_file, train_file, map_dir, n_test, n_retrain)
        return _checked(split, train_file)
    rng = np.random.default_rng(0) if rng is None else rng
    eps, clusters, how = _episodes_with_clusters(valid_file, "valid", map_dir, assignment, rng)
    test_ranked = cluster_tasks(eps, clusters, TEST_HELDOUT_DIALOGUES)
    if len(test_ranked) < n_test:
        raise ValueError(f"{valid_file}: only {len(test_ranked)} persona clusters, need {n_test}")
    test = test_ranked[:n_test]
    source = {"valid_file": valid_file.name, "valid_clusters_from": how}
    if train_file is not None:
        teps, tclusters, thow = _episodes_with_clusters(Path(train_file), "train", map_dir, assignment, rng)
        retrain = cluster_tasks(teps, tclusters, RETRAIN_HELDOUT_DIALOGUES)[:n_retrain]
        note = ("Retraining on persona clusters of the given train file "
                f"({Path(train_file).name}), fine-tuning on the valid file's top {n_test} clusters.")
        source.update(train_file=Path(train_file).name, train_clusters_from=thow)
    else:
        # Never retrain on the paper's test personas (the top N_TEST_PERSONAS clusters), even
        # when a reduced run fine-tunes on fewer of them; small files keep n_retrain clusters.
        reserved = max(n_test, min(N_TEST_PERSONAS, len(test_ranked) - n_retrain))
        test_ids = {t.cluster for t in test_ranked[:reserved]}
        ranked = [t for t in cluster_tasks(eps, clusters, RETRAIN_HELDOUT_DIALOGUES)
                  if t.cluster not in test_ids]
        retrain = ranked[:n_retrain]
        note = RETRAIN_SOURCE_NOTE
        source.update(train_file=None, retrain_clusters="valid-file clusters ranked after the test ones")
    source.update(selection="normalized", test_clusters=[t.cluster for t in test],
                  retrain_clusters_used=[t.cluster for t in retrain])
    note = (f"Test personas: valid-file clusters {[t.cluster for t in test]} (normalised persona match); "
            f"retraining clusters {[t.cluster for t in retrain]}. " + note)
    return _checked(PersonaSplit(retrain=retrain, test=test, note=note, source=source), train_file)


def _checked(split: PersonaSplit, train_file) -> PersonaSplit:
    """Refuse a split whose retraining tasks share a cluster or a persona with the test tasks."""
    if len(split.retrain) < 1:
        raise ValueError("no retraining persona tasks could be formed")
    if train_file is None and {t.cluster for t in split.retrain} & {t.cluster for t in split.test}:
        raise AssertionError("retraining and test personas overlap")
    shared = set().union(*(t.personas for t in split.retrain)) & set().union(*(t.personas for t in split.test))
    if shared:
        raise AssertionError(f"{len(shared)} test persona(s) also in the retraining tasks")
    return split
