import pytest

from packflow.loaders.utils import inference_backend_parts


@pytest.mark.parametrize(
    ("reference", "parts"),
    [
        ("inference:Backend", ["inference", "Backend"]),
        ("models.scorer:Scorer", ["models.scorer", "Scorer"]),
        (" inference : Backend ", ["inference", "Backend"]),
    ],
)
def test_reference_splits_into_module_and_attribute(reference: str, parts: list[str]) -> None:
    assert inference_backend_parts(reference) == parts


@pytest.mark.parametrize("reference", ["inference", "a:b:c", ":Backend", "inference:", ""])
def test_malformed_reference_quotes_it_and_the_expected_form(reference: str) -> None:
    with pytest.raises(ValueError, match="must be in format") as caught:
        inference_backend_parts(reference)
    assert f'"{reference}"' in str(caught.value)
    assert "<module>:<attribute>" in str(caught.value)
