"""The centre tree: lookups, what a scope sees, the chain up to the county."""

from __future__ import annotations

import pytest

from config import parse_config
from config.schema import CentreConfig, Level
from hub.core.centres import Centre, CentreTree
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE, topology

OTHER_VILLAGE = "410922100202"


@pytest.fixture
def tree() -> CentreTree:
    centres = [
        CentreConfig(code=OTHER_VILLAGE, name="西关村"),
        CentreConfig(code=VILLAGE, name="东关村"),
        CentreConfig(code=OTHER_TOWN, name="马庄桥镇"),
        CentreConfig(code=TOWN, name="城关镇"),
        CentreConfig(code=COUNTY, name="清丰县"),
    ]
    return CentreTree(centres)


def test_levels_parents_and_sorted_children(tree: CentreTree) -> None:
    county, town, village = tree.get(COUNTY), tree.get(TOWN), tree.get(VILLAGE)
    assert county == Centre(COUNTY, "清丰县", Level.COUNTY, None, (TOWN, OTHER_TOWN))
    assert town == Centre(TOWN, "城关镇", Level.TOWNSHIP, COUNTY, (VILLAGE, OTHER_VILLAGE))
    assert village == Centre(VILLAGE, "东关村", Level.VILLAGE, TOWN, ())
    assert tree.get(OTHER_TOWN) == Centre(OTHER_TOWN, "马庄桥镇", Level.TOWNSHIP, COUNTY, ())


def test_lookup_contains_and_len(tree: CentreTree) -> None:
    assert len(tree) == 5
    assert TOWN in tree and VILLAGE in tree
    assert "410922999" not in tree
    assert 410922 not in tree  # only codes as strings
    assert tree.get("410922999") is None


def test_to_json_names_level_as_text(tree: CentreTree) -> None:
    town = tree.get(TOWN)
    assert town is not None
    assert town.to_json() == {
        "code": TOWN,
        "name": "城关镇",
        "level": "township",
        "parent": COUNTY,
        "children": [VILLAGE, OTHER_VILLAGE],
    }


def test_visible_from_is_the_subtree_in_code_order(tree: CentreTree) -> None:
    assert [c.code for c in tree.visible_from(COUNTY)] == [
        COUNTY,
        TOWN,
        VILLAGE,
        OTHER_VILLAGE,
        OTHER_TOWN,
    ]
    assert [c.code for c in tree.visible_from(TOWN)] == [TOWN, VILLAGE, OTHER_VILLAGE]
    assert [c.code for c in tree.visible_from(OTHER_TOWN)] == [OTHER_TOWN]
    assert [c.code for c in tree.visible_from(VILLAGE)] == [VILLAGE]


def test_visible_from_an_unknown_or_foreign_scope_is_empty(tree: CentreTree) -> None:
    assert tree.visible_from("410923") == []
    assert tree.visible_from("410922102") == []


def test_chain_walks_up_to_the_county(tree: CentreTree) -> None:
    assert [c.code for c in tree.chain(VILLAGE)] == [VILLAGE, TOWN, COUNTY]
    assert [c.code for c in tree.chain(OTHER_TOWN)] == [OTHER_TOWN, COUNTY]
    assert [c.code for c in tree.chain(COUNTY)] == [COUNTY]


def test_chain_of_an_unknown_centre_is_empty(tree: CentreTree) -> None:
    assert tree.chain("410922100299") == []


def test_from_config_matches_the_configured_centres() -> None:
    tree = CentreTree.from_config(parse_config(topology()))
    assert len(tree) == 4
    county = tree.get(COUNTY)
    assert county is not None and county.children == (TOWN, OTHER_TOWN)
    assert [c.name for c in tree.chain(VILLAGE)] == ["东关村", "城关镇", "清丰县"]


def test_centre_is_frozen(tree: CentreTree) -> None:
    town = tree.get(TOWN)
    assert town is not None
    with pytest.raises(AttributeError):
        town.name = "x"  # type: ignore[misc]
