"""The per-key three-way merge (``merge.py``), table-driven: plain dicts in,
a dict or a conflict out; no store, no request."""
import pytest

from pyramid_contrib_sessions.exceptions import SessionConflictError
from pyramid_contrib_sessions.merge import changed_keys, merge

BASE = {'kept': 1, 'changed': 'old', 'removed': [1]}

CHANGED_KEYS = [
    ({}, set(BASE)),
    ({'kept': 1}, {'changed', 'removed'}),
    ({**BASE, 'changed': 'new'}, {'changed'}),
    ({**BASE, 'added': None}, {'added'}),
    ({k: v for k, v in BASE.items() if k != 'removed'}, {'removed'}),
    ({**BASE, 'kept': True}, {'kept'}),  # 1 and True are not one value
    ({**BASE, 'kept': 1.0}, {'kept'}),
    (dict(BASE), set()),
]


@pytest.mark.parametrize('ours, expected', CHANGED_KEYS)
def test_changed_keys_are_the_keys_ours_added_removed_or_changed(ours,
                                                                 expected):
    assert changed_keys(BASE, ours) == expected


MERGES = [
    pytest.param({**BASE, 'theirs': 1}, {**BASE, 'ours': 2},
                 {**BASE, 'theirs': 1, 'ours': 2}, id='both-add'),
    pytest.param({**BASE, 'changed': 'theirs'}, {**BASE, 'kept': 2},
                 {**BASE, 'changed': 'theirs', 'kept': 2}, id='both-change'),
    pytest.param({**BASE, 'theirs': 1},
                 {'kept': 1, 'changed': 'old'},
                 {'kept': 1, 'changed': 'old', 'theirs': 1},
                 id='ours-removes'),
    pytest.param({'kept': 1, 'changed': 'old'}, {**BASE, 'ours': 2},
                 {'kept': 1, 'changed': 'old', 'ours': 2},
                 id='theirs-removes'),
    pytest.param(dict(BASE), dict(BASE), dict(BASE), id='nobody-changes'),
]


@pytest.mark.parametrize('theirs, ours, merged', MERGES)
def test_changes_to_different_keys_are_all_kept(theirs, ours, merged):
    assert merge(BASE, theirs, ours, changed_keys(BASE, ours)) == merged


CONFLICTS = [
    pytest.param({**BASE, 'changed': 'theirs'}, {**BASE, 'changed': 'ours'},
                 id='both-change'),
    pytest.param({**BASE, 'changed': 'same'}, {**BASE, 'changed': 'same'},
                 id='both-change-to-equal-values'),
    pytest.param({**BASE, 'new': 1}, {**BASE, 'new': 1}, id='both-add'),
    pytest.param({'kept': 1, 'removed': [1]}, {**BASE, 'changed': 'ours'},
                 id='theirs-removes-what-ours-changes'),
]


@pytest.mark.parametrize('theirs, ours', CONFLICTS)
def test_both_sides_changing_one_key_is_a_conflict_naming_it(theirs, ours):
    keys = changed_keys(BASE, ours)
    with pytest.raises(SessionConflictError, match=repr(sorted(keys)[0])):
        merge(BASE, theirs, ours, keys)


def test_merge_changes_none_of_its_inputs():
    theirs, ours = {**BASE, 'theirs': 1}, {**BASE, 'ours': 2}
    copies = [dict(BASE), dict(theirs), dict(ours)]
    merge(BASE, theirs, ours, changed_keys(BASE, ours))
    assert [BASE, theirs, ours] == copies
