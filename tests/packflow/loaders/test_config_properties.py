"""Property tests: rules of packflow.yaml handling that hold for all inputs."""

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from packflow.loaders import PackflowConfig
from packflow.loaders.utils import inference_backend_parts

names = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,20}", fullmatch=True)
identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(
    name=names,
    version=text,
    description=text,
    maintainers=st.lists(text, max_size=3),
    module=st.lists(identifiers, min_size=1, max_size=3).map(".".join),
    attribute=identifiers,
    loader=st.sampled_from(["local", "module"]),
    env=st.dictionaries(identifiers, text, max_size=3),
    backend_config=st.dictionaries(identifiers, json_values, max_size=3),
    extra=st.dictionaries(text, json_values, max_size=3),
)
def test_write_yaml_then_read_back_gives_the_same_config(
    name: str,
    version: str,
    description: str,
    maintainers: list[str],
    module: str,
    attribute: str,
    loader: str,
    env: dict[str, str],
    backend_config: dict[str, object],
    extra: dict[str, object],
) -> None:
    config = PackflowConfig(
        name=name,
        version=version,
        description=description,
        maintainers=maintainers,
        inference_backend=f"{module}:{attribute}",
        loader=loader,
        env=env,
        backend_config=backend_config,
        extra=extra,
    )
    with tempfile.TemporaryDirectory() as folder:
        config.write_yaml(folder)
        assert PackflowConfig.from_project_path(Path(folder)) == config


@given(module=st.lists(identifiers, min_size=1, max_size=4).map(".".join), attribute=identifiers)
def test_backend_reference_splits_back_into_its_parts(module: str, attribute: str) -> None:
    assert inference_backend_parts(f"{module}:{attribute}") == [module, attribute]
