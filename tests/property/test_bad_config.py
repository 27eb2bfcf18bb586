"""Bad input, generated: any text as reclaim.yaml gives Settings or a ConfigError that
names the file — never another exception, never a traceback for the admin."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reclaim.config import ConfigError, Settings, parse_settings

SOURCE = "reclaim.yaml"
KEYS = ["data_dir", "policies", "safety", "usage", "entra", "ldap", "smtp", "database", "nope"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from([*KEYS, "name", "apps", "group", "unused_days"]), inner),
    ),
    max_leaves=12,
)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=4).map(
    lambda d: yaml.safe_dump(d, allow_unicode=True)
)
raw_text = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "\ufeffdata_dir: x\n",
            "a: [1, 2\n",
            "&a [*a]\n",
            "policies: !!python/object:os.system {}\n",
            "\x00",
            "- 1\n- 2\n",
        ]
    ),
)


def check(text: str) -> None:
    error: ConfigError | None = None
    try:
        result = parse_settings(text, source=SOURCE)
    except ConfigError as exc:
        error = exc
    if error is None:
        assert isinstance(result, Settings)
        return
    assert str(error).startswith(SOURCE), str(error)
    assert error.problems and all(p.strip() for p in error.problems)
    assert "Traceback" not in str(error)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_any_yaml_document_is_settings_or_a_config_error(text: str) -> None:
    check(text)


@settings(max_examples=300, deadline=None)
@given(raw_text)
def test_any_text_is_settings_or_a_config_error(text: str) -> None:
    check(text)
