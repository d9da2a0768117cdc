"""k-anonymity, and the two attacks that show why removing names is not privacy.

Sweeney (2002) showed that ZIP code, date of birth and sex, *quasi-identifiers*
left in "de-identified" medical records, single out most people, and re-identified
a governor's record by joining it with a public voter roll: a *linkage attack*.
Her remedy, *k-anonymity*, generalises the quasi-identifiers (ZIP ``02139`` ->
``021**``, a birth date -> its year or decade) until every combination is shared
by at least ``k`` records. Machanavajjhala et al. (2007) showed what it still
leaks: when the ``k`` records of a group share their diagnosis (*homogeneity*),
linking a person to the group reveals it anyway.

Everything here is generated: the people, their names and their diagnoses are
invented by :func:`toy_tables` (no real person is in any table).

* :func:`toy_tables`: a hospital release without names, a voter roll with
  names, and the name of the planted person the roll re-identifies.
* :func:`generalise_table`, :func:`k_anonymity`, :func:`make_k_anonymous`
  (the smallest generalisation in the lattice that reaches ``k``).
* :func:`linkage_attack`, :func:`homogeneous_groups`.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Sequence

from .mechanisms import PrivacyError

QUASI_IDENTIFIERS = ("zip", "birth_date", "sex")
SENSITIVE = "diagnosis"
DIAGNOSES = ("asthma", "diabetes", "flu", "fracture", "healthy", "hypertension", "migraine")
# how far each quasi-identifier can be generalised: level 0 keeps it, the last level hides it
MAX_LEVEL = {"zip": 5, "birth_date": 3, "sex": 1}
PLANTED_NAME = "Avery Example"  # invented: the person the voter roll re-identifies
# invented: a resident of a small care home whose six residents share one diagnosis
CARE_HOME_NAME = "Blake Example"
_FIRST = ("Alex", "Blair", "Casey", "Dana", "Eli", "Frankie", "Gray", "Harper", "Indy", "Jules", "Kai",
          "Lee", "Morgan", "Noor", "Oakley", "Parker", "Quinn", "Reese", "Sage", "Taylor")
_LAST = ("Alder", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Ginkgo", "Hazel", "Ivy", "Juniper", "Larch",
         "Maple", "Oak", "Pine", "Rowan", "Spruce", "Teak", "Willow", "Yew")

Table = list[dict]


def toy_tables(size: int = 300, roll_size: int = 120, seed: int = 0) -> tuple[Table, Table, str]:
    """An invented hospital release (no names), a voter roll (names), and the planted person's name.

    Both tables draw from one invented population: ZIP codes in a few towns
    (``021xx``, ``024xx``, ``027xx``), birth dates 1940-2005, sex, and a diagnosis
    the hospital holds. The roll lists ``roll_size`` people with their name and
    quasi-identifiers, always including :data:`PLANTED_NAME`, whose ZIP, birth
    date and sex are unique in the release (as most people's are), and
    :data:`CARE_HOME_NAME`, one of six care-home residents with the same diagnosis.

    Example:
        >>> release, roll, name = toy_tables(seed=0)
        >>> sorted(release[0]), sorted(roll[0])
        (['birth_date', 'diagnosis', 'sex', 'zip'], ['birth_date', 'name', 'sex', 'zip'])
    """
    if not isinstance(size, int) or not isinstance(roll_size, int) or not 2 <= roll_size <= size - 6:
        raise PrivacyError(f"need integers 2 <= roll_size <= size - 6, got roll_size={roll_size!r}, size={size!r}")
    rng = random.Random(seed)
    people = []
    for index in range(size - 1):
        people.append({
            "name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}-{index}",
            "zip": rng.choice(("021", "024", "027")) + f"{rng.randrange(100):02d}",
            "birth_date": f"{rng.randrange(1940, 2006)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            "sex": rng.choice("FM"),
            "diagnosis": rng.choice(DIAGNOSES),
        })
    planted = {"name": PLANTED_NAME, "zip": "02138", "birth_date": "1945-07-31", "sex": "M",
               "diagnosis": "hypertension"}
    people.insert(rng.randrange(len(people) + 1), planted)
    # a small care home (ZIP 029xx, all born in the 1930s): k-anonymous groups can keep its
    # residents together, and they share one diagnosis, the homogeneity that k-anonymity misses
    home = [{"name": CARE_HOME_NAME if index == 0 else f"Resident {index}", "zip": f"0290{index}",
             "birth_date": f"193{index}-0{index + 1}-1{index}", "sex": "F", "diagnosis": "dementia"}
            for index in range(6)]
    people = [person for person in people[:size - len(home)]] + home
    if planted not in people:
        people[0] = planted
    release = [{key: person[key] for key in (*QUASI_IDENTIFIERS, SENSITIVE)} for person in people]
    others = [person for person in people if person is not planted and person is not home[0]]
    on_roll = rng.sample(others, roll_size - 2) + [planted, home[0]]
    rng.shuffle(on_roll)
    roll = [{key: person[key] for key in ("name", *QUASI_IDENTIFIERS)} for person in on_roll]
    return release, roll, PLANTED_NAME


def generalise_value(attribute: str, value: str, level: int) -> str:
    """One quasi-identifier at generalisation ``level`` (0 keeps it; the top level is ``*``).

    ZIP: mask the last ``level`` digits. Birth date: 1 -> year, 2 -> decade, 3 -> ``*``.
    Sex: 1 -> ``*``.

    Example:
        >>> generalise_value("zip", "02139", 2), generalise_value("birth_date", "1945-07-31", 2)
        ('021**', '194*')
    """
    if attribute not in MAX_LEVEL:
        raise PrivacyError(f"unknown quasi-identifier {attribute!r}; known: {', '.join(MAX_LEVEL)}")
    if not isinstance(level, int) or not 0 <= level <= MAX_LEVEL[attribute]:
        raise PrivacyError(f"level of {attribute} must be an integer in [0, {MAX_LEVEL[attribute]}], got {level!r}")
    if level == 0:
        return value
    if attribute == "zip":
        return value[:len(value) - level] + "*" * level
    if attribute == "birth_date":
        return {1: value[:4], 2: value[:3] + "*", 3: "*"}[level]
    return "*"


def generalise_table(table: Table, levels: dict[str, int]) -> Table:
    """A copy of ``table`` with each quasi-identifier generalised to ``levels[attribute]`` (default 0)."""
    unknown = set(levels) - set(MAX_LEVEL)
    if unknown:
        raise PrivacyError(f"unknown quasi-identifiers {sorted(unknown)}; known: {', '.join(MAX_LEVEL)}")
    return [{key: generalise_value(key, value, levels.get(key, 0)) if key in MAX_LEVEL else value
             for key, value in row.items()} for row in table]


def _groups(table: Table, quasi_identifiers: Sequence[str]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in table:
        groups[tuple(row[key] for key in quasi_identifiers)].append(row)
    return groups


def k_anonymity(table: Table, quasi_identifiers: Sequence[str] = QUASI_IDENTIFIERS) -> int:
    """The largest ``k`` for which ``table`` is k-anonymous: the size of its smallest group.

    Example:
        >>> k_anonymity([{"zip": "1"}, {"zip": "1"}, {"zip": "2"}], ["zip"])
        1
    """
    if not table:
        raise PrivacyError("the table is empty")
    return min(len(rows) for rows in _groups(table, quasi_identifiers).values())


def make_k_anonymous(table: Table, k: int, quasi_identifiers: Sequence[str] = QUASI_IDENTIFIERS
                     ) -> tuple[Table, dict[str, int]]:
    """The least generalisation of ``table`` that is k-anonymous, and its levels.

    Searches the whole lattice of levels (6 x 4 x 2 = 48 nodes for the toy table)
    in order of total generalisation, the idea of Samarati (2001) without
    suppression; ties go to the node that keeps more distinct groups.

    Example:
        >>> release, _, _ = toy_tables(seed=0)
        >>> anonymous, levels = make_k_anonymous(release, k=5)
        >>> k_anonymity(anonymous) >= 5
        True
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(table):
        raise PrivacyError(f"k must be an integer in [1, {len(table)}] (the table's size), got {k!r}")
    nodes = itertools.product(*(range(MAX_LEVEL[key] + 1) for key in quasi_identifiers))
    best = None
    for node in sorted(nodes, key=sum):
        if best is not None and sum(node) > sum(best[1].values()):
            break
        levels = dict(zip(quasi_identifiers, node))
        generalised = generalise_table(table, levels)
        if k_anonymity(generalised, quasi_identifiers) >= k:
            groups = len(_groups(generalised, quasi_identifiers))
            if best is None or groups > best[2]:
                best = (generalised, levels, groups)
    assert best is not None  # the top of the lattice hides everything: one group of len(table) >= k
    return best[0], best[1]


def linkage_attack(release: Table, auxiliary: Table, levels: dict[str, int] | None = None,
                   quasi_identifiers: Sequence[str] = QUASI_IDENTIFIERS) -> dict[str, list[dict]]:
    """Join ``auxiliary`` (with names) to ``release`` on the quasi-identifiers: name -> matching rows.

    When the release was generalised with ``levels``, the attacker generalises the
    auxiliary table the same way first (the levels are public: they are visible in
    the release). A name with exactly one matching row is re-identified.

    Example:
        >>> release, roll, name = toy_tables(seed=0)
        >>> [row["diagnosis"] for row in linkage_attack(release, roll)[name]]
        ['hypertension']
    """
    index = _groups(release, quasi_identifiers)
    auxiliary = generalise_table(auxiliary, levels or {})
    return {row["name"]: index.get(tuple(row[key] for key in quasi_identifiers), []) for row in auxiliary}


def reidentified(matches: dict[str, list[dict]]) -> list[str]:
    """The names that match exactly one released row."""
    return [name for name, rows in matches.items() if len(rows) == 1]


def homogeneous_groups(table: Table, quasi_identifiers: Sequence[str] = QUASI_IDENTIFIERS,
                       sensitive: str = SENSITIVE) -> list[tuple]:
    """Groups of equal quasi-identifiers whose rows all share one ``sensitive`` value (l-diversity 1).

    Linking a person to such a group reveals their diagnosis although the table is k-anonymous.

    Example:
        >>> homogeneous_groups([{"zip": "1", "diagnosis": "flu"}] * 3, ["zip"])
        [('1',)]
    """
    return [key for key, rows in _groups(table, quasi_identifiers).items()
            if len(Counter(row[sensitive] for row in rows)) == 1]
